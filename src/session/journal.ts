/**
 * The per-session SQLite journal (better-sqlite3): the entries of the session's view (its
 * snapshot with its own pending changes applied), the ordered pending ops, the chunk index used
 * for dedup, and small metadata (volume id, seq, in-flight commit).
 *
 * Invariants:
 * - `entries` always holds a tree: every entry's parent exists and is a directory; the root is
 *   the row with path ''.
 * - A pending `put P` means "at commit, P's state is its current entry"; a pending `delete P`
 *   removes P's subtree. Compaction keeps one `put` per path and drops ops a later `delete`
 *   covers, so the op list is always the shortest equivalent one.
 * - Every multi-row change runs in one transaction; the journal survives SIGKILL (WAL).
 */
import Database from 'better-sqlite3';
import type BetterSqlite3 from 'better-sqlite3';
import type { ChunkRef } from '../chunks/types.js';
import type { EntryData, Op } from '../format/records.js';
import { ancestors, parentOf } from '../format/paths.js';
import { migrate } from './schema.js';

/** An entry as the journal stores it: the committed data, or a staging file for written data. */
export interface JournalEntry extends EntryData {
  path: string;
  /** Name of the staging file holding this file's data, when it was written in this session. */
  staged?: string;
}

interface Row {
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
}

const ROOT_PARENT = '/';
/** Entries memoised by `get` (cleared on every change). */
const MEMO_ENTRIES = 4096;
const DIR_MODE = 0o755;

function fromRow(r: Row): JournalEntry {
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
  return e;
}

/** The exclusive upper bound of paths inside `dir` ('/' + 1 is '0'). */
function subtreeEnd(dir: string): string {
  return `${dir}0`;
}

export class Journal {
  readonly db: BetterSqlite3.Database;
  private readonly st: ReturnType<Journal['prepare']>;
  private readonly memo = new Map<string, JournalEntry>();

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    migrate(this.db);
    this.st = this.prepare();
    if (!this.get('')) this.st.insert.run(this.toRow('', { type: 'directory', mode: DIR_MODE, mtimeMs: Date.now(), size: 0 }));
  }

  private prepare() {
    const db = this.db;
    return {
      get: db.prepare<[string], Row>('SELECT * FROM entries WHERE path = ?'),
      insert: db.prepare<[Row]>(
        'INSERT OR REPLACE INTO entries (path, parent, type, mode, mtime, size, chunks, inline, target, staged) VALUES (@path, @parent, @type, @mode, @mtime, @size, @chunks, @inline, @target, @staged)',
      ),
      children: db.prepare<[string], Row>('SELECT * FROM entries WHERE parent = ? ORDER BY path'),
      hasChild: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM entries WHERE parent = ? LIMIT 1'),
      subtree: db.prepare<[string, string], Row>('SELECT * FROM entries WHERE path > ? AND path < ? ORDER BY path'),
      all: db.prepare<[], Row>("SELECT * FROM entries WHERE path != '' ORDER BY path"),
      deleteOne: db.prepare<[string]>('DELETE FROM entries WHERE path = ?'),
      deleteSubtree: db.prepare<[string, string]>('DELETE FROM entries WHERE path > ? AND path < ?'),
      stagedInSubtree: db.prepare<[string, string], { staged: string }>(
        'SELECT staged FROM entries WHERE staged IS NOT NULL AND path > ? AND path < ?',
      ),
      allStaged: db.prepare<[], { path: string; staged: string }>('SELECT path, staged FROM entries WHERE staged IS NOT NULL'),
      metaGet: db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
      metaSet: db.prepare<[string, string]>('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)'),
      metaDel: db.prepare<[string]>('DELETE FROM meta WHERE key = ?'),
      pendingAll: db.prepare<[], { id: number; op: 'put' | 'delete'; path: string }>('SELECT * FROM pending ORDER BY id'),
      pendingCount: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM pending'),
      pendingInsert: db.prepare<[string, string]>('INSERT INTO pending (op, path) VALUES (?, ?)'),
      pendingHasPut: db.prepare<[string, number], { one: number }>("SELECT 1 AS one FROM pending WHERE op = 'put' AND path = ? AND id > ? LIMIT 1"),
      pendingDropPut: db.prepare<[string]>("DELETE FROM pending WHERE op = 'put' AND path = ?"),
      pendingDropUnder: db.prepare<[string, string, string]>('DELETE FROM pending WHERE path = ? OR (path > ? AND path < ?)'),
      pendingClear: db.prepare<[number]>('DELETE FROM pending WHERE id <= ?'),
      chunkGet: db.prepare<[string], { hash: string; pack: string; off: number; len: number }>('SELECT * FROM chunks WHERE hash = ?'),
      chunkPut: db.prepare<[string, string, number, number]>('INSERT OR IGNORE INTO chunks (hash, pack, off, len) VALUES (?, ?, ?, ?)'),
    };
  }

  private toRow(path: string, e: EntryData & { staged?: string }): Row {
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
    };
  }

  // ---- metadata ------------------------------------------------------------------------------

  getMeta(key: string): string | undefined {
    return this.st.metaGet.get(key)?.value;
  }

  setMeta(key: string, value: string | undefined): void {
    if (value === undefined) this.st.metaDel.run(key);
    else this.st.metaSet.run(key, value);
  }

  get seq(): number {
    return Number(this.getMeta('seq') ?? 0);
  }

  set seq(value: number) {
    this.setMeta('seq', String(value));
  }

  // ---- entries -------------------------------------------------------------------------------

  /**
   * One entry, or undefined. Entries are memoised until the next change to any entry (reads of
   * a big file would otherwise parse its chunk list on every FUSE read); they are frozen, so
   * callers copy (`{ ...e, … }`) to change one.
   */
  get(path: string): JournalEntry | undefined {
    const hit = this.memo.get(path);
    if (hit) return hit;
    const r = this.st.get.get(path);
    if (!r) return undefined;
    const e = Object.freeze(fromRow(r));
    if (this.memo.size >= MEMO_ENTRIES) this.memo.clear();
    this.memo.set(path, e);
    return e;
  }

  children(dir: string): JournalEntry[] {
    return this.st.children.all(dir).map(fromRow);
  }

  hasChildren(dir: string): boolean {
    return this.st.hasChild.get(dir) !== undefined;
  }

  /** Every entry strictly inside `dir`, in path order. */
  descendants(dir: string): JournalEntry[] {
    return dir === '' ? this.st.all.all().map(fromRow) : this.st.subtree.all(`${dir}/`, subtreeEnd(dir)).map(fromRow);
  }

  /** Every entry but the root, in path order, without loading them all at once. */
  *iterateAll(): Generator<JournalEntry> {
    for (const r of this.st.all.iterate()) yield fromRow(r as Row);
  }

  /** Replaces (or creates) one entry, with no tree checks: callers keep the tree invariant. */
  putRaw(path: string, e: EntryData & { staged?: string }): void {
    this.memo.clear();
    this.st.insert.run(this.toRow(path, e));
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
   * Applies one state-independent op to the entries: `put` creates missing parents (and
   * replaces non-directory parents by directories), replaces a non-directory or, when the new
   * entry is not a directory, a whole subtree; a directory put over a directory only updates its
   * metadata. `delete` removes the subtree. Returns nothing; run inside a transaction.
   */
  applyOp(op: Op | { op: 'put'; path: string; entry: EntryData & { staged?: string } }): void {
    const path = op.path;
    this.memo.clear();
    if (op.op === 'delete') {
      if (path === '') {
        this.st.deleteSubtree.run('', '\uffff');
        this.putRaw('', { type: 'directory', mode: DIR_MODE, mtimeMs: Date.now(), size: 0 });
        return;
      }
      this.st.deleteOne.run(path);
      this.st.deleteSubtree.run(`${path}/`, subtreeEnd(path));
      return;
    }
    for (const dir of ancestors(path)) {
      const cur = this.st.get.get(dir);
      if (cur && cur.type === 'directory') continue;
      this.putRaw(dir, { type: 'directory', mode: DIR_MODE, mtimeMs: op.entry.mtimeMs, size: 0 });
    }
    const cur = this.st.get.get(path);
    if (cur && cur.type === 'directory' && op.entry.type !== 'directory') {
      this.st.deleteSubtree.run(`${path}/`, subtreeEnd(path));
    }
    this.putRaw(path, op.entry);
  }

  /** Replaces the whole state by a checkpoint's entries at `seq`. */
  loadState(seq: number, entries: Iterable<[string, EntryData]>): void {
    this.memo.clear();
    this.db.transaction(() => {
      this.st.deleteSubtree.run('', '\uffff');
      this.st.deleteOne.run('');
      this.putRaw('', { type: 'directory', mode: DIR_MODE, mtimeMs: Date.now(), size: 0 });
      for (const [path, e] of entries) {
        this.putRaw(path, e);
        if (e.chunks) this.addChunks(e.chunks);
      }
      this.seq = seq;
    })();
  }

  // ---- pending ops ---------------------------------------------------------------------------

  /**
   * Records a pending op, compacting: see the module invariants. `fence` is the last op of a commit
   * in flight (ops up to it are being published). Run inside a transaction.
   */
  addPending(op: 'put' | 'delete', path: string, fence = 0): void {
    if (op === 'put') {
      // A put means "the path's state at commit": one above the in-flight commit's fence is enough.
      if (this.st.pendingHasPut.get(path, fence)) return;
      this.st.pendingDropPut.run(path);
    } else {
      this.st.pendingDropUnder.run(path, `${path}/`, subtreeEnd(path));
    }
    this.st.pendingInsert.run(op, path);
  }

  pending(): { id: number; op: 'put' | 'delete'; path: string }[] {
    return this.st.pendingAll.all();
  }

  pendingCount(): number {
    return this.st.pendingCount.get()!.n;
  }

  /** Drops pending ops up to and including `id` (those a commit has published). */
  clearPending(upToId: number): void {
    this.st.pendingClear.run(upToId);
  }

  // ---- chunk index ---------------------------------------------------------------------------

  knownChunk(hash: string): ChunkRef | undefined {
    const r = this.st.chunkGet.get(hash);
    return r ? { hash: r.hash, pack: r.pack, offset: r.off, length: r.len } : undefined;
  }

  addChunks(refs: ChunkRef[]): void {
    for (const r of refs) this.st.chunkPut.run(r.hash, r.pack, r.offset, r.length);
  }

  /** Runs `fn` in one transaction (nested ones are savepoints); a rollback drops the memo too. */
  transaction<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn)();
    } catch (err) {
      this.memo.clear();
      throw err;
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
