/**
 * The per-session SQLite journal (better-sqlite3): the session's view (its snapshot with its own
 * pending changes applied), the ordered pending ops and the fence of a commit in flight, the
 * chunk index used for dedup, and typed metadata (volume id, seq, log head, in-flight commit).
 *
 * Invariants:
 * - The view (`entries`, ./view.ts) always holds a tree: every entry's parent exists and is a
 *   directory; the root is the row with path ''.
 * - A pending `put P` means "at commit, P's state is its current entry"; a pending `delete P`
 *   removes P's subtree. Compaction keeps one `put` per path above the fence and drops ops a
 *   later `delete` covers, so the op list is always the shortest equivalent one.
 * - Every change to the view that the next commit must publish (put, update, remove, move) records
 *   its pending op in the same transaction; every record lands in one transaction, with the
 *   pending ops above the fence re-applied on top of it. A write to a file already pending only
 *   changes its row, which the view may keep in memory for a while (./view.ts `setLater`).
 * - The names of a hard-linked file hold one entry (./view.ts); a change through one pends a put of each.
 * - The journal survives SIGKILL (WAL).
 */
import Database from 'better-sqlite3';
import type BetterSqlite3 from 'better-sqlite3';
import type { ChunkRef } from '../chunks/index.js';
import { type CommitRecord, type EntryData, type Op, ancestors } from '../format/index.js';
import { entryData, type JournalEntry, sameContent, sameEntry } from './entry.js';
import { type DirTouch, migrate, type PendingOp, subtreeEnd } from './schema.js';
import { JournalMeta } from './journalmeta.js';
import { type EntryIn, EntryTable } from './view.js';
import { ChunkIndex } from './chunkindex.js';
import { BACKSTOP_PAGES, WalCheckpointer } from './walcheckpoint.js';
import type { Staging } from './staging.js';

export type { JournalEntry } from './entry.js';
export type { DirTouch, PendingOp } from './schema.js';
export type { Inflight } from './journalmeta.js';

function prepare(db: BetterSqlite3.Database) {
  return {
    pendingAll: db.prepare<[], PendingOp>('SELECT * FROM pending ORDER BY id'),
    pendingCount: db.prepare<[], { n: number }>("SELECT COUNT(*) AS n FROM pending WHERE op != 'times'"),
    pendingAny: db.prepare<[], { one: number }>('SELECT 1 AS one FROM pending LIMIT 1'),
    pendingInsert: db.prepare<[string, string]>('INSERT INTO pending (op, path) VALUES (?, ?)'),
    pendingHasPut: db.prepare<[string, number], { one: number }>(
      "SELECT 1 AS one FROM pending WHERE op = 'put' AND path = ? AND id > ? LIMIT 1",
    ),
    pendingHasTimes: db.prepare<[string, number], { one: number }>(
      "SELECT 1 AS one FROM pending WHERE op IN ('put', 'times') AND path = ? AND id > ? LIMIT 1",
    ),
    pendingDropPut: db.prepare<[string]>("DELETE FROM pending WHERE op IN ('put', 'times') AND path = ?"),
    pendingDropUnder: db.prepare<[string, string, string]>('DELETE FROM pending WHERE path = ? OR (path > ? AND path < ?)'),
    pendingClear: db.prepare<[number]>('DELETE FROM pending WHERE id <= ?'),
  };
}

export class Journal extends JournalMeta {
  private readonly st: ReturnType<typeof prepare>;
  /** The entries of the view (./view.ts). */
  private readonly view: EntryTable;
  private readonly chunkIndex: ChunkIndex;
  private readonly wal: WalCheckpointer;
  private fenceId = 0;
  /** One wrapper for every transaction (`db.transaction(fn)` builds four functions per call: ~15% of a create). */
  private readonly runInTransaction: (fn: () => unknown) => unknown;

  /** @example const j = new Journal('/tmp/s1/journal.db'); */
  constructor(file: string) {
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    // Checkpoints (a copy and two fsyncs) run on a worker thread (./walcheckpoint.ts); this one is its backstop.
    db.pragma(`wal_autocheckpoint = ${BACKSTOP_PAGES}`);
    migrate(db);
    super(db);
    this.st = prepare(this.db);
    this.view = new EntryTable(this.db);
    this.chunkIndex = new ChunkIndex(this.db);
    this.wal = new WalCheckpointer(file);
    this.runInTransaction = this.db.transaction((fn: () => unknown) => fn());
  }

  // ---- reading the view (./view.ts) --------------------------------------------------------

  /** One entry, or undefined; memoised and frozen (copy it to change it). */
  get(path: string): JournalEntry | undefined {
    return this.view.get(path);
  }

  children = (dir: string): JournalEntry[] => this.view.children(dir);
  hasChildren = (dir: string): boolean => this.view.hasChildren(dir);
  /** Whether some entry has extended attribute `name` (a scan of the view: not per request). */
  hasXattr = (name: string): boolean => this.view.hasXattr(name);

  /** Every entry strictly inside `dir`, in path order. */
  descendants = (dir: string): JournalEntry[] => this.view.descendants(dir);
  /** Every entry but the root, in path order, without loading them all at once. */
  iterateAll = (): Generator<JournalEntry> => this.view.iterateAll();
  /** Staging files referenced by the subtree at `path` (including `path`). */
  stagedUnder = (path: string): string[] => this.view.stagedUnder(path);
  allStaged = (): { path: string; staged: string }[] => this.view.allStaged();

  /**
   * `encode(seq, entries)` of the whole view, read one entry at a time in one read transaction,
   * when it is exactly snapshot `seq` (no pending ops) and `seq ≥ minSeq`; otherwise undefined.
   * @example const snap = journal.cleanSnapshot(0, encodeCheckpointSync); if (snap) await log.putCheckpoint(snap.seq, snap.body);
   */
  cleanSnapshot<T>(
    minSeq: number,
    encode: (seq: number, entries: Iterable<[string, EntryData]>) => T,
  ): { seq: number; body: T } | undefined {
    return this.transaction(() => {
      const seq = this.seq;
      if (seq < minSeq || this.hasPending()) return undefined;
      return {
        seq,
        body: encode(
          seq,
          (function* (j: Journal) {
            // The root first: its owner, mode, times and xattrs are part of the snapshot.
            yield ['', entryData(j.get('')!)] as [string, EntryData];
            for (const e of j.iterateAll()) yield [e.path, entryData(e)] as [string, EntryData];
          })(this),
        ),
      };
    });
  }

  // ---- changing the view: whole operations ---------------------------------------------------

  /**
   * Sets `path` to `entry`, creating missing parents (see `place`), and records a pending put.
   * @example journal.put('dir/a.txt', { type: 'file', mode: 0o644, mtimeMs: Date.now(), size: 0, staged });
   */
  put(path: string, entry: EntryIn, touch?: DirTouch): void {
    this.putAll([[path, entry]], touch);
  }

  /** `put` of every item in order, in one transaction: all land or none does. */
  putAll(items: Iterable<readonly [string, EntryIn]>, touch?: DirTouch): void {
    this.transaction(() => {
      for (const [path, entry] of items) {
        this.view.place(path, entry);
        this.addPending('put', path);
        this.pendNames(entry);
      }
      this.touchDirs(touch);
    });
  }

  /** Sets the mtime and ctime of existing `dirs` and records pending `times` ops (inside a transaction). */
  private touchDirs(touch: DirTouch | undefined): void {
    for (const dir of touch?.dirs ?? []) {
      const e = this.get(dir);
      if (!e) continue;
      this.view.set(dir, { ...e, mtimeMs: touch!.now, ctimeMs: touch!.now });
      this.addPending('times', dir);
    }
  }

  /** The number of directories directly inside `dir` (its link count is 2 more). */
  subdirCount(dir: string): number {
    return this.view.subdirCount(dir);
  }

  /**
   * Replaces the entry of an existing path (no tree changes: its parent stays) and records a pending put. `written`: a write
   * changed only its size and times; in a staged file whose put is pending above the fence, the view then keeps the row (`setLater`).
   */
  update(path: string, entry: EntryIn, written = false): void {
    const pendingPut = (): boolean => this.st.pendingHasPut.get(path, this.fenceId) !== undefined;
    if (written && !this.db.inTransaction && this.view.keepWrite(path, entry, pendingPut)) return;
    this.transaction(() => {
      this.view.set(path, entry);
      this.addPending('put', path);
      this.pendNames(entry);
    });
  }

  /** Writes the rows `update(…, true)` kept (an fsync; also before every transaction). */
  flushWrites = (): void => this.view.flush();

  /**
   * Removes `path` and its subtree and records a pending delete. With `touch`, the names left of a
   * hard-linked file take ctime `touch.now` (its link count changed) and pend puts.
   */
  remove(path: string, touch?: DirTouch): void {
    this.transaction(() => {
      const ino = touch && this.get(path)?.ino;
      this.view.drop(path);
      this.addPending('delete', path);
      const left = ino ? this.view.names(ino)[0] : undefined;
      if (left !== undefined) this.update(left, { ...this.get(left)!, ctimeMs: touch!.now });
      this.touchDirs(touch);
    });
  }

  /**
   * Moves `src` (and its subtree) to `dst`, replacing what is at `dst` (callers checked it may
   * be replaced): pending deletes of both, pending puts of every moved path, one transaction.
   * With `touch`, the moved entry's ctime becomes `touch.now` too.
   */
  move(src: string, dst: string, touch?: DirTouch): void {
    this.transaction(() => {
      const e = this.get(src);
      if (!e) return;
      const moved = [e, ...(e.type === 'directory' ? this.descendants(src) : [])];
      this.remove(src);
      if (this.get(dst)) this.remove(dst, touch && { dirs: [], now: touch.now });
      for (const m of moved) {
        const np = dst + m.path.slice(src.length);
        const ctime = touch && m.path === src ? { ctimeMs: touch.now } : {};
        this.view.set(np, { ...m, path: np, ...ctime } as JournalEntry);
        this.addPending('put', np);
        this.pendNames(m);
      }
      this.touchDirs(touch);
    });
  }

  /**
   * Gives a committed file its staging file (its first write), unless it has one by now; a
   * session-local change, with no pending op (the write that follows records one). Returns the
   * file's staging name.
   */
  attachStaged(path: string, name: string): string {
    const now = this.get(path);
    if (now && now.type === 'file' && !now.staged) this.view.set(path, { ...now, staged: name });
    return this.get(path)?.staged ?? name;
  }

  /** After a crash: every staged entry takes its size from its staging file (the truth). */
  reconcileStaged = (staging: Staging): Promise<void> => this.view.reconcileStaged(staging);

  // ---- pending ops and the fence -------------------------------------------------------------

  /** The names of the file with inode id `ino` (hard links: ./links.ts), in path order. */
  names = (ino: string): string[] => this.view.names(ino);
  /** A pending put of every name of a hard-linked `entry`'s file (inside a transaction). */
  private pendNames = (e: EntryIn): void => void (e.ino !== undefined && this.view.names(e.ino).forEach((p) => this.addPending('put', p)));

  /** Records a pending op, compacting (see the module invariants). Runs inside a transaction. */
  private addPending(op: PendingOp['op'], path: string): void {
    if (op === 'times') {
      // A put or times above the fence publishes the entry's times already.
      if (this.st.pendingHasTimes.get(path, this.fenceId)) return;
    } else if (op === 'put') {
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

  /** Whether any op is pending (`times` included): the view is then not exactly its snapshot. */
  hasPending(): boolean {
    return this.st.pendingAny.get() !== undefined;
  }

  /** Pending ops but `times` (which only ever come with a put or delete of an entry inside the directory). */
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
    this.view.flush(); // (a kept row's put may now be below the fence: see `keepWrite`)
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
      this.view.drop(op.path);
      return;
    }
    if (op.op === 'times') {
      const cur = this.get(op.path);
      if (cur) this.view.set(op.path, { ...cur, mtimeMs: op.mtimeMs, ctimeMs: op.ctimeMs });
      return;
    }
    if (op.entry.chunks) this.chunkIndex.add(op.entry.chunks);
    const cur = this.get(op.path);
    let staged = published?.get(op.path);
    // Our own record landing on the view it came from (batch uploads): nothing to change.
    if (!staged && cur && sameEntry(cur, op.entry)) return;
    if (!staged && cur?.staged && sameContent(cur, op.entry)) staged = cur.staged;
    this.view.place(op.path, staged ? { ...op.entry, staged } : op.entry);
  }

  /** Applies one record, in one transaction, under the pending ops above `fence`; seq and log head move to it. */
  private applyRecord(r: CommitRecord, fence: number, published?: ReadonlyMap<string, string>): void {
    this.transaction(() => {
      this.underPending(fence, () => {
        for (const op of r.ops) this.applyOp(op, published);
      });
      this.setMeta('seq', String(Math.max(this.seq, r.seq)));
      this.setMeta('logHead', String(Math.max(this.logHead, r.seq)));
    });
  }

  /** Runs `change` (in the caller's transaction) with the pending ops above `fence` kept on top of it. */
  private underPending(fence: number, change: () => void): void {
    const later = this.pending().filter((p) => p.id > fence);
    const saved = new Map<string, JournalEntry | undefined>();
    for (const p of later) if (p.op !== 'delete' && !saved.has(p.path)) saved.set(p.path, this.get(p.path));
    change();
    for (const p of later) {
      if (p.op === 'delete') this.view.drop(p.path);
      else if (p.op === 'times') {
        const e = saved.get(p.path);
        const cur = this.get(p.path);
        if (e && cur) this.view.set(p.path, { ...cur, mtimeMs: e.mtimeMs, ctimeMs: e.ctimeMs ?? e.mtimeMs });
      } else {
        const e = saved.get(p.path);
        if (!e) continue;
        // Parents the change replaced or removed come back as directories, published by the next
        // commit: the view stays "snapshot + pending ops" even once this put is dropped.
        const made = ancestors(p.path).filter((a) => this.view.get(a)?.type !== 'directory');
        this.view.place(p.path, e);
        for (const a of made) this.addPending('put', a);
      }
    }
  }

  /** Applies records in log order (last writer wins per path), one transaction each, pending ops on top. */
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

  /** The view replaced by that of journal `file` (snapshot `seq`), pending ops on top: snapshot.ts's rebootstrap. */
  adopt(file: string, seq: number): void {
    this.db.prepare('ATTACH DATABASE ? AS other').run(file);
    try {
      this.transaction(() => {
        this.underPending(0, () => this.view.copyFrom('other'));
        this.db.exec('INSERT OR IGNORE INTO chunks SELECT * FROM other.chunks');
        this.setBase(seq);
      });
    } finally {
      this.db.exec('DETACH DATABASE other');
    }
  }

  /** Adds a checkpoint's entries to the view (first emptying it when `fresh`), in one transaction. */
  loadEntries(entries: Iterable<[string, EntryData]>, fresh = false): void {
    this.transaction(() => {
      if (fresh) this.view.clear();
      for (const [path, e] of entries) {
        this.view.load(path, e);
        if (e.chunks) this.chunkIndex.add(e.chunks);
      }
    });
  }

  /** The view is snapshot `seq`, loaded from its checkpoint. */
  setBase(seq: number): void {
    this.setMeta('seq', String(seq));
    this.setMeta('logHead', String(Math.max(this.logHead, seq)));
    this.checkpoint = seq;
  }

  /** Entries in the view, the root aside. */
  entryCount(): number {
    return this.view.count();
  }

  // ---- chunk index (./chunkindex.ts) ---------------------------------------------------------

  knownChunk = (hash: string): ChunkRef | undefined => this.chunkIndex.known(hash);
  /** Adds chunk locations to the dedup index (one transaction). */
  addChunks = (refs: readonly ChunkRef[]): void => this.transaction(() => this.chunkIndex.add(refs));

  /** Told when a transaction finds the disk full: true when it freed space (./reserve.ts), to run it again. */
  onFull?: () => boolean;

  /** Runs `fn` in one transaction (nested ones are savepoints); a rollback drops the memo too. */
  private transaction<T>(fn: () => T): T {
    try {
      // Rows the view kept (`update`) land first, in a transaction of their own: a rollback of this one keeps them.
      const outer = !this.db.inTransaction;
      if (outer) this.view.flush();
      const out = this.runInTransaction(fn) as T;
      if (outer) this.wal.tick();
      return out;
    } catch (err) {
      this.view.forget();
      // (only the outermost transaction tries again: it was rolled back whole)
      if ((err as { code?: unknown }).code === 'SQLITE_FULL' && !this.db.inTransaction && this.onFull?.()) return this.transaction(fn);
      throw err;
    }
  }

  close(): void {
    if (this.db.open) {
      this.view.flush();
      this.wal.close();
      this.db.close();
    }
  }
}
