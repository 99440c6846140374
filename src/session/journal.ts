/**
 * The per-session SQLite journal (better-sqlite3): the session's view (its snapshot with its own
 * pending changes applied), the ordered pending ops and the fence of a commit in flight, the
 * chunk index used for dedup, and typed metadata (volume id, seq, log head, in-flight commit).
 *
 * Invariants:
 * - `entries` always holds a tree: every entry's parent exists and is a directory; the root is
 *   the row with path ''.
 * - A pending `put P` means "at commit, P's state is its current entry"; a pending `delete P`
 *   removes P's subtree. Compaction keeps one `put` per path above the fence and drops ops a
 *   later `delete` covers, so the op list is always the shortest equivalent one.
 * - Every change to the view that the next commit must publish (put, update, remove, move) records
 *   its pending op in the same transaction; every record lands in one transaction, with the
 *   pending ops above the fence re-applied on top of it.
 * - The journal survives SIGKILL (WAL).
 */
import Database from 'better-sqlite3';
import type BetterSqlite3 from 'better-sqlite3';
import type { ChunkRef } from '../chunks/index.js';
import { type CommitRecord, type EntryData, type Op, ancestors } from '../format/index.js';
import { entryData, type JournalEntry, sameContent, sameEntry } from './entry.js';
import { fromRow, migrate, type PendingOp, type Row, subtreeEnd, toRow } from './schema.js';
import type { Staging } from './staging.js';

export type { JournalEntry } from './entry.js';
export type { PendingOp } from './schema.js';

/** A commit noted before its record is appended, so that a restarted session recognises it. */
export interface Inflight {
  commitId: string;
  /** The last pending op the commit publishes. */
  fence: number;
  /** The view's seq when the commit started. */
  from?: number;
}

/** Every statement the journal runs, prepared once. */
function prepareStatements(db: BetterSqlite3.Database) {
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
    pendingAll: db.prepare<[], PendingOp>('SELECT * FROM pending ORDER BY id'),
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

/** Entries memoised by `get` (cleared on every change). */
const MEMO_ENTRIES = 4096;
const DIR_MODE = 0o755;

type EntryIn = EntryData & { staged?: string };

export class Journal {
  private readonly db: BetterSqlite3.Database;
  private readonly st: ReturnType<typeof prepareStatements>;
  private readonly memo = new Map<string, JournalEntry>();
  private fenceId = 0;

  /** @example const j = new Journal('/tmp/s1/journal.db'); */
  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    migrate(this.db);
    this.st = prepareStatements(this.db);
    if (!this.get('')) this.st.insert.run(toRow('', { type: 'directory', mode: DIR_MODE, mtimeMs: Date.now(), size: 0 }));
  }

  // ---- metadata ------------------------------------------------------------------------------

  private getMeta(key: string): string | undefined {
    return this.st.metaGet.get(key)?.value;
  }

  private setMeta(key: string, value: string | undefined): void {
    if (value === undefined) this.st.metaDel.run(key);
    else this.st.metaSet.run(key, value);
  }

  /** The volume this journal holds a view of; undefined until a bootstrap completed. */
  get volumeId(): string | undefined {
    return this.getMeta('volumeId');
  }

  /** Marks the journal complete (a bootstrap sets it last) and owned by `volumeId`. */
  claim(volumeId: string): void {
    this.setMeta('volumeId', volumeId);
  }

  /** This session's id (prefix of its commit ids), created on first use. */
  sessionId(make: () => string): string {
    let id = this.getMeta('sessionId');
    if (!id) this.setMeta('sessionId', (id = make()));
    return id;
  }

  /** The session id when one was made, without making one. */
  get knownSessionId(): string | undefined {
    return this.getMeta('sessionId');
  }

  /** The snapshot the view is based on. */
  get seq(): number {
    return Number(this.getMeta('seq') ?? 0);
  }

  /** The newest log seq this session has seen (≥ seq). */
  get logHead(): number {
    return Math.max(this.seq, Number(this.getMeta('logHead') ?? 0));
  }

  /** The newest checkpoint written or loaded by this session (0: none). */
  get checkpoint(): number {
    return Number(this.getMeta('checkpoint') ?? 0);
  }

  set checkpoint(seq: number) {
    this.setMeta('checkpoint', String(seq));
  }

  /** The commit in flight, if one was started and not finished. */
  get inflight(): Inflight | undefined {
    const raw = this.getMeta('inflight');
    return raw ? (JSON.parse(raw) as Inflight) : undefined;
  }

  set inflight(value: Inflight | undefined) {
    this.setMeta('inflight', value && JSON.stringify(value));
  }

  // ---- reading the view ----------------------------------------------------------------------

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
   * The whole view as a checkpoint stores it, read in one transaction, when it is exactly
   * snapshot `seq` (no pending ops) and `seq ≥ minSeq`; otherwise undefined.
   * @example const snap = journal.cleanSnapshot(); if (snap) await log.writeCheckpoint(snap.seq, snap.entries);
   */
  cleanSnapshot(minSeq = 0): { seq: number; entries: [string, EntryData][] } | undefined {
    return this.transaction(() => {
      const seq = this.seq;
      if (seq < minSeq || this.pendingCount() > 0) return undefined;
      const entries: [string, EntryData][] = [];
      for (const e of this.iterateAll()) entries.push([e.path, entryData(e)]);
      return { seq, entries };
    });
  }

  // ---- changing the view: whole operations ---------------------------------------------------

  /**
   * Sets `path` to `entry`, creating missing parents (see `place`), and records a pending put.
   * @example journal.put('dir/a.txt', { type: 'file', mode: 0o644, mtimeMs: Date.now(), size: 0, staged });
   */
  put(path: string, entry: EntryIn): void {
    this.putAll([[path, entry]]);
  }

  /** `put` of every item in order, in one transaction: all land or none does. */
  putAll(items: Iterable<readonly [string, EntryIn]>): void {
    this.transaction(() => {
      for (const [path, entry] of items) {
        this.place(path, entry);
        this.addPending('put', path);
      }
    });
  }

  /** Replaces the entry of an existing path (no tree changes: its parent stays) and records a pending put. */
  update(path: string, entry: EntryIn): void {
    this.transaction(() => {
      this.putRaw(path, entry);
      this.addPending('put', path);
    });
  }

  /** Removes `path` and its subtree and records a pending delete. */
  remove(path: string): void {
    this.transaction(() => {
      this.drop(path);
      this.addPending('delete', path);
    });
  }

  /**
   * Moves `src` (and its subtree) to `dst`, replacing what is at `dst` (callers checked it may
   * be replaced): pending deletes of both, pending puts of every moved path, one transaction.
   */
  move(src: string, dst: string): void {
    this.transaction(() => {
      const e = this.get(src);
      if (!e) return;
      const moved = [e, ...(e.type === 'directory' ? this.descendants(src) : [])];
      this.remove(src);
      if (this.get(dst)) this.remove(dst);
      for (const m of moved) {
        const np = dst + m.path.slice(src.length);
        this.putRaw(np, { ...m, path: np } as JournalEntry);
        this.addPending('put', np);
      }
    });
  }

  /**
   * Gives a committed file its staging file (its first write), unless it has one by now; a
   * session-local change, with no pending op (the write that follows records one). Returns the
   * file's staging name.
   */
  attachStaged(path: string, name: string): string {
    const now = this.get(path);
    if (now && now.type === 'file' && !now.staged) this.putRaw(path, { ...now, staged: name });
    return this.get(path)?.staged ?? name;
  }

  /** After a crash: every staged entry takes its size from its staging file (the truth). */
  async reconcileStaged(staging: Staging): Promise<void> {
    for (const { path, staged } of this.allStaged()) {
      const st = await staging.size(staged);
      const e = this.get(path);
      if (!e) continue;
      if (!st) this.putRaw(path, { ...e, staged: undefined, size: 0 } as JournalEntry);
      else if (st.size !== e.size) this.putRaw(path, { ...e, size: st.size });
    }
  }

  // ---- view primitives -----------------------------------------------------------------------

  /** Replaces (or creates) one entry, with no tree checks: callers keep the tree invariant. */
  private putRaw(path: string, e: EntryIn): void {
    this.memo.clear();
    this.st.insert.run(toRow(path, e));
  }

  /**
   * Sets one entry, keeping the tree: creates missing parents (and replaces non-directory
   * parents by directories), replaces a non-directory or, when the new entry is not a directory,
   * a whole subtree; a directory over a directory only updates its metadata.
   */
  private place(path: string, entry: EntryIn): void {
    this.memo.clear();
    for (const dir of ancestors(path)) {
      const cur = this.st.get.get(dir);
      if (cur && cur.type === 'directory') continue;
      this.putRaw(dir, { type: 'directory', mode: DIR_MODE, mtimeMs: entry.mtimeMs, size: 0 });
    }
    const cur = this.st.get.get(path);
    if (cur && cur.type === 'directory' && entry.type !== 'directory') {
      this.st.deleteSubtree.run(`${path}/`, subtreeEnd(path));
    }
    this.putRaw(path, entry);
  }

  /** Removes a subtree (the root: everything under it, the root stays). */
  private drop(path: string): void {
    this.memo.clear();
    if (path === '') {
      this.st.deleteSubtree.run('', '\uffff');
      this.putRaw('', { type: 'directory', mode: DIR_MODE, mtimeMs: Date.now(), size: 0 });
      return;
    }
    this.st.deleteOne.run(path);
    this.st.deleteSubtree.run(`${path}/`, subtreeEnd(path));
  }

  // ---- pending ops and the fence -------------------------------------------------------------

  /** Records a pending op, compacting (see the module invariants). Runs inside a transaction. */
  private addPending(op: 'put' | 'delete', path: string): void {
    if (op === 'put') {
      // A put means "the path's state at commit": one above the in-flight commit's fence is enough.
      if (this.st.pendingHasPut.get(path, this.fenceId)) return;
      this.st.pendingDropPut.run(path);
    } else {
      this.st.pendingDropUnder.run(path, `${path}/`, subtreeEnd(path));
    }
    this.st.pendingInsert.run(op, path);
  }

  pending(): PendingOp[] {
    return this.st.pendingAll.all();
  }

  pendingCount(): number {
    return this.st.pendingCount.get()!.n;
  }

  /** The last pending op of the commit in flight (0: none runs). Ops above it belong to the next commit. */
  get fence(): number {
    return this.fenceId;
  }

  /**
   * Fences the pending ops for a commit: returns them; ops recorded from now on are above the
   * fence (a put of a fenced path is recorded again). `unfence` when the commit ends.
   */
  fencePending(): PendingOp[] {
    const ops = this.pending();
    this.fenceId = ops.length ? ops[ops.length - 1]!.id : 0;
    return ops;
  }

  unfence(): void {
    this.fenceId = 0;
  }

  // ---- records -------------------------------------------------------------------------------

  /**
   * Applies one record op to the view (the only meaning of "apply an op" here): a delete removes
   * the subtree; a put sets the entry, keeping the staging file of a path that a just-landed
   * commit of ours published (`published`) or whose staged bytes the entry holds, and changes
   * nothing when the view already holds exactly that entry.
   */
  private applyOp(op: Op, published?: ReadonlyMap<string, string>): void {
    if (op.op === 'delete') {
      this.drop(op.path);
      return;
    }
    if (op.entry.chunks) this.indexChunks(op.entry.chunks);
    const cur = this.get(op.path);
    let staged = published?.get(op.path);
    // Our own record landing on the view it came from (batch uploads): nothing to change.
    if (!staged && cur && sameEntry(cur, op.entry)) return;
    if (!staged && cur?.staged && sameContent(cur, op.entry)) staged = cur.staged;
    this.place(op.path, staged ? { ...op.entry, staged } : op.entry);
  }

  /**
   * Applies one record, in one transaction, keeping the pending ops above `fence` on top (their
   * entries are saved and set again after it), and moves seq and log head to it.
   */
  private applyRecord(r: CommitRecord, fence: number, published?: ReadonlyMap<string, string>): void {
    this.transaction(() => {
      const later = this.pending().filter((p) => p.id > fence);
      const saved = new Map<string, JournalEntry | undefined>();
      for (const p of later) if (p.op === 'put' && !saved.has(p.path)) saved.set(p.path, this.get(p.path));
      for (const op of r.ops) this.applyOp(op, published);
      for (const p of later) {
        if (p.op === 'delete') this.drop(p.path);
        else {
          const e = saved.get(p.path);
          if (e) this.place(p.path, e);
        }
      }
      this.setMeta('seq', String(Math.max(this.seq, r.seq)));
      this.setMeta('logHead', String(Math.max(this.logHead, r.seq)));
    });
  }

  /**
   * Applies records in log order (others' and ours alike: last writer wins per path), one
   * transaction each, every pending op staying on top. How reload and bootstrap move the view.
   */
  applyRecords(records: readonly CommitRecord[]): void {
    for (const r of records) this.applyRecord(r, 0);
  }

  /**
   * Lands our commit's `record` (ops up to `fence`), in one transaction: applies it under the
   * later pending ops, drops the published ones, clears the in-flight note, and moves the view
   * to the record's seq only when `viewWasHead` (no other writer's record lies between).
   */
  landCommit(record: CommitRecord, fence: number, published: ReadonlyMap<string, string>, viewWasHead: boolean): void {
    const before = this.seq;
    this.transaction(() => {
      this.applyRecord(record, fence, published);
      this.st.pendingClear.run(fence);
      this.inflight = undefined;
      this.setMeta('seq', String(viewWasHead ? record.seq : before));
      this.setMeta('logHead', String(record.seq));
    });
  }

  /** A commit a reload already applied (as someone else's): its ops up to `fence` are no longer pending. */
  forgetCommit(fence: number): void {
    this.transaction(() => {
      this.st.pendingClear.run(fence);
      this.inflight = undefined;
    });
  }

  /** Replaces the whole view by a checkpoint's entries at `seq` (no pending ops may exist). */
  loadState(seq: number, entries: Iterable<[string, EntryData]>): void {
    this.transaction(() => {
      this.st.deleteSubtree.run('', '\uffff');
      this.st.deleteOne.run('');
      this.putRaw('', { type: 'directory', mode: DIR_MODE, mtimeMs: Date.now(), size: 0 });
      for (const [path, e] of entries) {
        this.putRaw(path, e);
        if (e.chunks) this.indexChunks(e.chunks);
      }
      this.setMeta('seq', String(seq));
      this.checkpoint = seq;
    });
  }

  // ---- chunk index ---------------------------------------------------------------------------

  knownChunk(hash: string): ChunkRef | undefined {
    const r = this.st.chunkGet.get(hash);
    return r ? { hash: r.hash, pack: r.pack, offset: r.off, length: r.len } : undefined;
  }

  /** Adds chunk locations to the dedup index (one transaction). */
  addChunks(refs: readonly ChunkRef[]): void {
    this.transaction(() => this.indexChunks(refs));
  }

  private indexChunks(refs: readonly ChunkRef[]): void {
    for (const r of refs) this.st.chunkPut.run(r.hash, r.pack, r.offset, r.length);
  }

  /** Runs `fn` in one transaction (nested ones are savepoints); a rollback drops the memo too. */
  private transaction<T>(fn: () => T): T {
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
