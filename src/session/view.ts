/**
 * The session's view as a table: every entry of its snapshot with its pending changes applied,
 * indexed by path and by parent (`stat` and `readdir` are one indexed query each, whatever the
 * volume's size). The journal (./journal.ts) owns it and runs every change inside its
 * transactions.
 *
 * Invariants: `place` and `drop` keep the tree (every entry's parent exists and is a directory;
 * the root is the row with path ''); `set` does not, and its callers keep it. Rows with the same
 * inode id (hard links) hold the same entry but for their path: `set` copies one to the others.
 * Entries returned by `get` are memoised and frozen until the next change to that entry (or to a
 * subtree holding it, or to any name of a linked file); so is a path's absence, until it is set.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { type EntryData, ancestors } from '../format/index.js';
import type { JournalEntry } from './entry.js';
import { fromRow, ROW_COLUMNS, type Row, subtreeEnd, toRow } from './schema.js';
import type { Staging } from './staging.js';

/** Entries memoised by `get` (each dropped when it changes; all of them when a subtree goes). */
const MEMO_ENTRIES = 4096;
const DIR_MODE = 0o755;

/** The longest a row `setLater` kept waits to be written (a crash loses at most this much of a file's times). */
export const WRITES_LATER_MS = 1000;

/** Columns some index covers (besides the primary key): a change to them rewrites index entries. */
const INDEXED = ['path', 'parent', 'type', 'staged'];

/** An entry to store: committed data, and the staging file of data written in this session. */
export type EntryIn = EntryData & { staged?: string };

function prepare(db: BetterSqlite3.Database) {
  return {
    get: db.prepare<[string], Row>('SELECT * FROM entries WHERE path = ?'),
    insert: db.prepare<[Row]>(
      `INSERT OR REPLACE INTO entries (${ROW_COLUMNS.join(', ')}) VALUES (${ROW_COLUMNS.map((c) => `@${c}`).join(', ')})`,
    ),
    // The row of a path whose indexed columns (parent, type, staged) stay: no index is written.
    update: db.prepare<[Row]>(
      `UPDATE entries SET ${ROW_COLUMNS.filter((c) => !INDEXED.includes(c))
        .map((c) => `${c} = @${c}`)
        .join(', ')} WHERE path = @path AND type = @type AND staged IS @staged`,
    ),
    // The same, for a row that moves to a staging file (a file's first write past INLINE_MAX): one index entry written.
    restage: db.prepare<[Row]>(
      `UPDATE entries SET ${ROW_COLUMNS.filter((c) => !INDEXED.includes(c) || c === 'staged')
        .map((c) => `${c} = @${c}`)
        .join(', ')} WHERE path = @path AND type = @type`,
    ),
    // A listing (stat of each child) leaves out the bytes: a file's inline data and chunk list were
    // ~2/3 of the cost of a row (a Buffer and a JSON.parse each; ls -R of 1,000,000 files).
    children: db.prepare<[string], Row>(
      'SELECT path, parent, type, mode, mtime, size, NULL AS chunks, NULL AS inline, target, staged, uid, gid, atime, ctime, rdev, NULL AS xattrs, ino FROM entries WHERE parent = ? ORDER BY path',
    ),
    subdirCount: db.prepare<[string], { n: number }>("SELECT COUNT(*) AS n FROM entries WHERE parent = ? AND type = 'directory'"),
    hasChild: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM entries WHERE parent = ? LIMIT 1'),
    subtree: db.prepare<[string, string], Row>('SELECT * FROM entries WHERE path > ? AND path < ? ORDER BY path'),
    all: db.prepare<[], Row>("SELECT * FROM entries WHERE path != '' ORDER BY path"),
    deleteOne: db.prepare<[string]>('DELETE FROM entries WHERE path = ?'),
    deleteSubtree: db.prepare<[string, string]>('DELETE FROM entries WHERE path > ? AND path < ?'),
    stagedInSubtree: db.prepare<[string, string], { staged: string }>(
      'SELECT staged FROM entries WHERE staged IS NOT NULL AND path > ? AND path < ?',
    ),
    count: db.prepare<[], { n: number }>("SELECT COUNT(*) AS n FROM entries WHERE path != ''"),
    allStaged: db.prepare<[], { path: string; staged: string }>('SELECT path, staged FROM entries WHERE staged IS NOT NULL'),
    names: db.prepare<[string], { path: string }>('SELECT path FROM entries WHERE ino = ? ORDER BY path'),
    // xattrs is the JSON of name -> base64 value: `"name":` occurs only as that attribute's key.
    withXattr: db.prepare<[string], { one: number }>(
      'SELECT 1 AS one FROM entries WHERE xattrs IS NOT NULL AND instr(xattrs, ?) > 0 LIMIT 1',
    ),
    // Every name of one file holds the same entry (hard links: ./links.ts).
    share: db.prepare<[Row]>(
      `UPDATE entries SET ${ROW_COLUMNS.filter((c) => c !== 'path' && c !== 'parent' && c !== 'ino')
        .map((c) => `${c} = @${c}`)
        .join(', ')} WHERE ino = @ino AND path != @path`,
    ),
  };
}

export class EntryTable {
  private readonly st: ReturnType<typeof prepare>;
  /** Memoised entries; `null`: known to be absent (a LOOKUP of a new name, then its create). */
  private readonly memo = new Map<string, JournalEntry | null>();
  /** Rows `setLater` keeps until `flush` (writes to files already pending), by path. */
  private readonly later = new Map<string, Row>();
  private readonly writeLater: () => void;
  private laterTimer: NodeJS.Timeout | undefined;

  /** @example const view = new EntryTable(db); view.get(''); */
  constructor(private readonly db: BetterSqlite3.Database) {
    this.st = prepare(db);
    // The row stays where a write found it (every change to it flushes first): an in-place UPDATE.
    const write = db.transaction((rows: Row[]) => rows.forEach((row) => this.st.update.run(row)));
    this.writeLater = () => {
      write([...this.later.values()]);
      this.later.clear();
    };
    if (!this.get('')) this.set('', { type: 'directory', mode: DIR_MODE, mtimeMs: Date.now(), size: 0 });
  }

  /**
   * One entry, or undefined. Entries are memoised until they change (reads of a big file would
   * otherwise parse its chunk list on every FUSE read, a create re-read its parent); they are frozen, so
   * callers copy (`{ ...e, … }`) to change one.
   */
  get(path: string): JournalEntry | undefined {
    const hit = this.memo.get(path);
    if (hit !== undefined) return hit ?? undefined;
    const r = this.later.get(path) ?? this.st.get.get(path);
    if (!r) {
      this.remember(path, null);
      return undefined;
    }
    const e = Object.freeze(fromRow(r));
    this.remember(path, e);
    return e;
  }

  /** The entries in `dir`, in path order, without their bytes (no chunks, inline data or xattrs): what a listing needs. */
  children(dir: string): JournalEntry[] {
    this.flush();
    return this.st.children.all(dir).map(fromRow);
  }

  subdirCount(dir: string): number {
    return this.st.subdirCount.get(dir)!.n;
  }

  hasChildren(dir: string): boolean {
    return this.st.hasChild.get(dir) !== undefined;
  }

  /** Every entry strictly inside `dir`, in path order. */
  descendants(dir: string): JournalEntry[] {
    this.flush();
    return dir === '' ? this.st.all.all().map(fromRow) : this.st.subtree.all(`${dir}/`, subtreeEnd(dir)).map(fromRow);
  }

  /** Every entry but the root, in path order, without loading them all at once. */
  *iterateAll(): Generator<JournalEntry> {
    this.flush();
    for (const r of this.st.all.iterate()) yield fromRow(r as Row);
  }

  /** Staging files referenced by the subtree at `path` (including `path`). */
  stagedUnder(path: string): string[] {
    const own = this.get(path)?.staged;
    const inner = path === '' ? this.st.allStaged.all() : this.st.stagedInSubtree.all(`${path}/`, subtreeEnd(path));
    return [...(own ? [own] : []), ...inner.map((r) => r.staged)];
  }

  allStaged(): { path: string; staged: string }[] {
    return this.st.allStaged.all();
  }

  /**
   * Replaces (or creates) one entry, with no tree checks: callers keep the tree invariant. An
   * entry with an inode id is copied to every other name of that file too (hard links: every
   * name of one file holds the same entry, whichever name was changed).
   */
  set(path: string, e: EntryIn): void {
    this.flush();
    const row = toRow(path, e);
    // Most changes (a write's size and times, chmod, a directory's times) keep the indexed
    // columns: an in-place UPDATE writes the row's page only (about half the cost of a replace,
    // which deletes and re-inserts every index entry).
    // A path known to be absent (a create) goes straight to the insert.
    const updated = this.memo.get(path) !== null && (this.st.update.run(row).changes > 0 || this.st.restage.run(row).changes > 0);
    if (!updated) this.st.insert.run(row);
    // The file's other names changed too (none when it has one name left): their memos go.
    if (row.ino !== null && this.st.share.run(row).changes > 0) for (const p of this.names(row.ino)) if (p !== path) this.memo.delete(p);
    // One row changed: its memo is the row as `get` would read it back (the stat that answers
    // the request needs no query); callers that change more (place, drop) clear the memo.
    this.remember(path, Object.freeze(fromRow(row)));
  }

  /**
   * `set` of a row that differs from the table's only in what a write changes (size, mtime,
   * ctime), kept in memory: `get` answers with it, and `flush` writes it, before any other read of
   * rows or change (the journal flushes before each transaction), or within WRITES_LATER_MS. The
   * caller checked that the row's other columns stay and that a pending op publishes it. A crash
   * loses only the kept times: the size comes back from the staging file (`reconcileStaged`).
   */
  private setLater(path: string, e: EntryIn): void {
    const row = toRow(path, e);
    this.later.set(path, row);
    this.remember(path, Object.freeze(fromRow(row)));
    this.laterTimer ??= setTimeout(() => {
      try {
        this.flush();
      } catch {
        // A full disk: the rows stay kept, for the next transaction.
      }
    }, WRITES_LATER_MS).unref();
  }

  /**
   * `setLater` of a write's change (size, mtime, ctime) to a staged file's row whose other columns
   * stay, when a pending put publishes it: `pendingPut()`, asked only for a row not kept already
   * (the journal flushes the kept rows before every transaction and when the fence moves, so a kept
   * row's put is still pending above it). False when the row must be written now (`set`).
   */
  keepWrite(path: string, e: EntryIn, pendingPut: () => boolean): boolean {
    const cur = this.get(path);
    if (e.ino || cur?.type !== 'file' || !cur.staged || cur.staged !== e.staged || cur.mode !== e.mode) return false;
    if (!this.later.has(path) && !pendingPut()) return false;
    this.setLater(path, e);
    return true;
  }

  /** Writes the rows `setLater` kept, in one transaction (a savepoint inside the caller's). */
  flush(): void {
    clearTimeout(this.laterTimer);
    this.laterTimer = undefined;
    if (this.later.size > 0) this.writeLater();
  }

  /** After a crash: every staged entry takes its size from its staging file (the truth: kept rows were lost). */
  async reconcileStaged(staging: Staging): Promise<void> {
    for (const { path, staged } of this.allStaged()) {
      const st = await staging.size(staged);
      const e = this.get(path);
      if (!e) continue;
      if (!st) this.set(path, { ...e, staged: undefined, size: 0 } as JournalEntry);
      else if (st.size !== e.size) this.set(path, { ...e, size: st.size });
    }
  }

  /** Whether some entry has the extended attribute `name` (one scan of the table). */
  hasXattr(name: string): boolean {
    return this.st.withXattr.get(`${JSON.stringify(name)}:`) !== undefined;
  }

  /** The names of the file with inode id `ino`, in path order. */
  names(ino: string): string[] {
    return this.st.names.all(ino).map((r) => r.path);
  }

  private remember(path: string, e: JournalEntry | null): void {
    if (this.memo.size >= MEMO_ENTRIES) this.memo.clear();
    this.memo.set(path, e);
  }

  /** `set` of a row a bulk load (a checkpoint's entries) writes whole: a replace, no update first. */
  load(path: string, e: EntryIn): void {
    this.flush();
    this.memo.delete(path);
    this.st.insert.run(toRow(path, e));
  }

  /**
   * Sets one entry, keeping the tree: creates missing parents (and replaces non-directory
   * parents by directories), replaces a non-directory or, when the new entry is not a directory,
   * a whole subtree; a directory over a directory only updates its metadata.
   */
  place(path: string, entry: EntryIn): void {
    for (const dir of ancestors(path)) {
      const cur = this.get(dir);
      if (cur && cur.type === 'directory') continue;
      this.set(dir, { type: 'directory', mode: DIR_MODE, mtimeMs: entry.mtimeMs, size: 0 });
    }
    const cur = this.get(path);
    if (cur && cur.type === 'directory' && entry.type !== 'directory') {
      this.memo.clear();
      this.st.deleteSubtree.run(`${path}/`, subtreeEnd(path));
    }
    this.set(path, entry);
  }

  /** Removes a subtree (the root: everything under it, the root stays). */
  drop(path: string): void {
    this.flush();
    const cur = path === '' ? undefined : this.get(path);
    if (cur && cur.type !== 'directory') {
      // One row, no subtree: the other memos stay (an unlink or a rename need not re-read the parents).
      this.st.deleteOne.run(path);
      this.remember(path, null);
      return;
    }
    this.memo.clear();
    if (path === '') {
      this.st.deleteSubtree.run('', '\uffff');
      this.set('', { type: 'directory', mode: DIR_MODE, mtimeMs: Date.now(), size: 0 });
      return;
    }
    this.st.deleteOne.run(path);
    this.st.deleteSubtree.run(`${path}/`, subtreeEnd(path));
  }

  /** Empties the table but for a fresh root (before a checkpoint's entries are loaded). */
  clear(): void {
    this.flush();
    this.memo.clear();
    this.st.deleteSubtree.run('', '\uffff');
    this.st.deleteOne.run('');
    this.set('', { type: 'directory', mode: DIR_MODE, mtimeMs: Date.now(), size: 0 });
  }

  /** Replaces every entry by those of the attached database `schema`'s table (its root aside). */
  copyFrom(schema: string): void {
    this.clear();
    this.db.exec(`INSERT OR REPLACE INTO entries SELECT * FROM ${schema}.entries WHERE path != ''`);
  }

  /** Entries but the root. */
  count(): number {
    return this.st.count.get()!.n;
  }

  /** Drops the memo (after a rolled-back transaction). */
  forget(): void {
    this.memo.clear();
  }
}
