/**
 * The journal's SQLite schema and its migrations.
 *
 * Invariant: `PRAGMA user_version` is the number of migrations applied; migrations only ever
 * append to this list, so an old journal opens under a newer Cairn and is brought up to date
 * in one transaction.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { CairnError } from '../errors.js';

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
