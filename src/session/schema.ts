/**
 * The journal's SQLite schema, its migrations, its rows and the statements the journal runs.
 *
 * Invariant: `PRAGMA user_version` is the number of migrations applied; migrations only ever
 * append to this list, so an old journal opens under a newer Cairn and is brought up to date
 * in one transaction.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { CairnError } from '../errors.js';
import { type EntryData, decodeXattrs, encodeXattrs, parentOf } from '../format/index.js';
import type { JournalEntry } from './entry.js';

const MIGRATIONS: string[] = [
  // 1: snapshot entries (plus this session's applied pending changes), pending ops, chunk index.
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
  CREATE TABLE entries (
    path   TEXT PRIMARY KEY,
    parent TEXT NOT NULL,
    type   TEXT NOT NULL,
    mode   INTEGER NOT NULL,
    mtime  INTEGER NOT NULL,
    size   INTEGER NOT NULL,
    chunks TEXT,
    inline BLOB,
    target TEXT,
    staged TEXT
  ) WITHOUT ROWID;
  CREATE INDEX entries_parent ON entries(parent, path);
  CREATE INDEX entries_staged ON entries(staged) WHERE staged IS NOT NULL;
  CREATE TABLE pending (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    op   TEXT NOT NULL CHECK (op IN ('put', 'delete')),
    path TEXT NOT NULL
  );
  CREATE INDEX pending_path ON pending(path);
  CREATE TABLE chunks (
    hash TEXT PRIMARY KEY,
    pack TEXT NOT NULL,
    off  INTEGER NOT NULL,
    len  INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
  // 2: format 3's POSIX metadata (NULL: not stored; see EntryData).
  `
  ALTER TABLE entries ADD COLUMN uid INTEGER;
  ALTER TABLE entries ADD COLUMN gid INTEGER;
  ALTER TABLE entries ADD COLUMN atime INTEGER;
  ALTER TABLE entries ADD COLUMN ctime INTEGER;
  ALTER TABLE entries ADD COLUMN rdev INTEGER;
  ALTER TABLE entries ADD COLUMN xattrs TEXT;
  CREATE INDEX entries_subdirs ON entries(parent) WHERE type = 'directory';
  `,
  // 3: pending 'times' ops (a directory's mtime/ctime changed by its entries).
  `
  CREATE TABLE pending_new (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    op   TEXT NOT NULL CHECK (op IN ('put', 'delete', 'times')),
    path TEXT NOT NULL
  );
  INSERT INTO pending_new (id, op, path) SELECT id, op, path FROM pending;
  DROP TABLE pending;
  ALTER TABLE pending_new RENAME TO pending;
  CREATE INDEX pending_path ON pending(path);
  `,
  // 4: format 4's inode identity (hard links: every row with the same ino is one file).
  `
  ALTER TABLE entries ADD COLUMN ino TEXT;
  CREATE INDEX entries_ino ON entries(ino) WHERE ino IS NOT NULL;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export function migrate(db: BetterSqlite3.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > SCHEMA_VERSION) {
    throw new CairnError('UNSUPPORTED', `journal schema version ${current} is newer than this cairn (${SCHEMA_VERSION})`, {
      hint: 'upgrade cairn, or remove the session directory to start a fresh session',
    });
  }
  if (current === SCHEMA_VERSION) return;
  db.transaction(() => {
    for (let v = current; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]!);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  })();
}

/** One `entries` row. */
export interface Row {
  path: string;
  parent: string;
  type: string;
  mode: number;
  mtime: number;
  size: number;
  chunks: string | null;
  inline: Buffer | null;
  target: string | null;
  staged: string | null;
  uid: number | null;
  gid: number | null;
  atime: number | null;
  ctime: number | null;
  rdev: number | null;
  /** JSON of name -> base64 (the stored form). */
  xattrs: string | null;
  /** Inode identity (format 4): rows with the same one are names of one file. */
  ino: string | null;
}

/** The columns of a row, in the order of the insert statement. */
export const ROW_COLUMNS = [
  'path',
  'parent',
  'type',
  'mode',
  'mtime',
  'size',
  'chunks',
  'inline',
  'target',
  'staged',
  'uid',
  'gid',
  'atime',
  'ctime',
  'rdev',
  'xattrs',
  'ino',
];

/** One `pending` row: an op not yet committed, in the order it was recorded. */
export interface PendingOp {
  id: number;
  /** `times`: only the entry's mtime and ctime changed (see Op in ../format/entries.ts). */
  op: 'put' | 'delete' | 'times';
  path: string;
}

/** Directories whose mtime and ctime become `now` with an operation (entries created or removed in them). */
export interface DirTouch {
  dirs: readonly string[];
  now: number;
}

/** The `parent` of the root row. */
export const ROOT_PARENT = '/';

/** The exclusive upper bound of paths inside `dir` ('/' + 1 is '0'). */
export function subtreeEnd(dir: string): string {
  return `${dir}0`;
}

export function fromRow(r: Row): JournalEntry {
  const e: JournalEntry = { path: r.path, type: r.type as EntryData['type'], mode: r.mode, mtimeMs: r.mtime, size: r.size };
  if (r.chunks !== null) {
    e.chunks = (JSON.parse(r.chunks) as [string, string, number, number][]).map(([hash, pack, offset, length]) => ({
      hash,
      pack,
      offset,
      length,
    }));
  }
  if (r.inline !== null) e.inline = r.inline;
  if (r.target !== null) e.target = r.target;
  if (r.staged !== null) e.staged = r.staged;
  if (r.uid !== null) e.uid = r.uid;
  if (r.gid !== null) e.gid = r.gid;
  if (r.atime !== null) e.atimeMs = r.atime;
  if (r.ctime !== null) e.ctimeMs = r.ctime;
  if (r.rdev !== null) e.rdev = r.rdev;
  if (r.xattrs !== null) {
    const x = decodeXattrs(JSON.parse(r.xattrs));
    if (x) e.xattrs = x;
  }
  if (r.ino !== null) e.ino = r.ino;
  return e;
}

export function toRow(path: string, e: EntryData & { staged?: string }): Row {
  return {
    path,
    parent: path === '' ? ROOT_PARENT : parentOf(path),
    type: e.type,
    mode: e.mode,
    mtime: Math.round(e.mtimeMs),
    size: e.size,
    chunks: e.chunks ? JSON.stringify(e.chunks.map((r) => [r.hash, r.pack, r.offset, r.length])) : null,
    inline: e.inline ?? null,
    target: e.target ?? null,
    staged: e.staged ?? null,
    uid: e.uid ?? null,
    gid: e.gid ?? null,
    atime: e.atimeMs === undefined ? null : Math.round(e.atimeMs),
    ctime: e.ctimeMs === undefined ? null : Math.round(e.ctimeMs),
    rdev: e.rdev ?? null,
    xattrs: e.xattrs && Object.keys(e.xattrs).length ? JSON.stringify(encodeXattrs(e.xattrs)) : null,
    ino: e.ino ?? null,
  };
}
