/**
 * Commit, reload, bootstrap and crash recovery of a session against its volume's log.
 *
 * Invariants:
 * - The journal's view is always "snapshot `seq` + pending ops". A commit publishes the pending
 *   ops up to a fence as one record at the first free seq after the log head it knows (`ifAbsent`
 *   is the only coordination); losing the race only moves it to the next seq, data is never
 *   re-uploaded. Ops written while a commit runs stay pending for the next one.
 * - A commit is published at most once: a taken seq holding our own commitId is our record (an
 *   attempt whose reply was lost), and a commit that failed is looked up (`recover`) before the
 *   next one starts.
 * - Others' commits enter the view only on reload (or bootstrap); after a commit the view moves
 *   to the new seq only when no other writer's record lies between (otherwise it stays at its
 *   base, and reload re-applies every record after it, ours included, in log order: last writer
 *   wins per path).
 * - Every record is applied in one journal transaction. A commit in flight is noted in the
 *   journal first, so a session killed after its record landed recognises it on restart.
 */
import crypto from 'node:crypto';
import { SerialQueue } from '../util/serial.js';
import { CairnError, isCairnError } from '../errors.js';
import type { ChunkRef } from '../chunks/types.js';
import type { PackWriter } from '../chunks/pack.js';
import { APPEND_WINDOW_MS, CommitGuard } from './gcguard.js';
import { prunedError, readFloor } from '../format/retention.js';
import type { ChunkStore } from '../chunks/index.js';
import type { Journal, JournalEntry } from './journal.js';
import type { CommitResult } from '../format/types.js';
import type { VolumeLog } from '../format/log.js';
import { type CommitRecord, type EntryData, FORMAT_VERSION, type Op, keys } from '../format/records.js';
import type { Staging } from './staging.js';
import { baseName, isWithin } from '../format/paths.js';
import { currentAuthor } from '../format/catalog.js';

/** Files up to this size are stored inside their entry instead of in a pack. */
export const INLINE_MAX = 4096;
/**
 * Files up to this size are read whole, up to READ_AHEAD files ahead of the chunker (commits and
 * batch uploads); bigger ones stream. One by one, the reads of many small files would dominate.
 */
export const WHOLE_READ_MAX = 1 << 20;
export const READ_AHEAD = 16;
/** A session whose view is the log head writes a checkpoint every this many seqs. */
export const CHECKPOINT_EVERY = 100;

type PendingRow = { id: number; op: 'put' | 'delete'; path: string };

/** Strips session-local fields: what a record or checkpoint stores of an entry. */
export function entryData(e: JournalEntry): EntryData {
  const d: EntryData = { type: e.type, mode: e.mode, mtimeMs: e.mtimeMs, size: e.size };
  if (e.chunks) d.chunks = e.chunks;
  if (e.inline) d.inline = e.inline;
  if (e.target !== undefined) d.target = e.target;
  return d;
}

function sameContent(a: EntryData, b: EntryData): boolean {
  if (a.type !== b.type || a.size !== b.size) return false;
  if (a.inline || b.inline) return !!a.inline && !!b.inline && a.inline.equals(b.inline);
  const ca = a.chunks ?? [];
  const cb = b.chunks ?? [];
  return ca.length === cb.length && ca.every((r, i) => r.hash === cb[i]!.hash);
}

/** Whether the journal's entry `cur` already holds exactly `e` (as the journal stores it: whole ms). */
function sameEntry(cur: JournalEntry, e: EntryData): boolean {
  if (cur.staged || cur.type !== e.type || cur.mode !== e.mode || cur.mtimeMs !== Math.round(e.mtimeMs) || cur.size !== e.size) return false;
  if (cur.target !== e.target || !cur.inline !== !e.inline || (cur.inline && !cur.inline.equals(e.inline!))) return false;
  const a = cur.chunks ?? [];
  const b = e.chunks ?? [];
  return a.length === b.length && a.every((r, i) => r.hash === b[i]!.hash && r.pack === b[i]!.pack && r.offset === b[i]!.offset && r.length === b[i]!.length);
}

function overlaps(a: string, b: string): boolean {
  return isWithin(a, b) || isWithin(b, a);
}

/** Where a reload or catch-up moved the view, and the paths the records it applied touched. */
export interface MoveResult {
  from: number;
  seq: number;
  /** Paths of other writers' records. */
  paths: string[];
  /** Paths of every applied record. */
  changed: string[];
}

/** A checkpoint written by someone else (a child process: ./offload.ts). */
export interface CheckpointJob {
  /** `written <seq>` (the snapshot written), or `stale` when the view had pending ops. */
  readonly done: Promise<string>;
  kill(): void;
}

export class Syncer {
  /**
   * When set, periodic checkpoints are written by the job this starts (not awaited by the commit
   * that triggers it; one at a time) instead of in this process.
   */
  checkpointJob?: (seq: number) => CheckpointJob;
  private checkpointing: CheckpointJob | undefined;
  private stopped = false;
  /** Paths other writers' records changed after the view's seq, as learned by our commits. */
  private readonly foreignSince = new Set<string>();
  /** The fence of the commit in flight: pending ops above it are not part of it. */
  fence = 0;
  private readonly queue = new SerialQueue();
  /** The volume's name, for messages (set by the session). */
  volumeName?: string;
  /** Packs found condemned or gone by GC: never reused by dedup again in this process. */
  private readonly avoidPacks = new Set<string>();
  private readonly guard: CommitGuard;

  constructor(
    private readonly journal: Journal,
    private readonly log: VolumeLog,
    private readonly chunks: ChunkStore,
    private readonly staging: Staging,
    private readonly sessionId: string,
  ) {
    this.guard = new CommitGuard(log.store, log.volumeId);
  }

  get seq(): number {
    return this.journal.seq;
  }

  get logHead(): number {
    return Math.max(this.journal.seq, Number(this.journal.getMeta('logHead') ?? 0));
  }

  private isOurs(r: CommitRecord): boolean {
    return r.commitId.startsWith(`${this.sessionId}.`);
  }

  /** Runs commit/reload one at a time. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    return this.queue.run(fn);
  }

  // ---- bootstrap -----------------------------------------------------------------------------

  /** Fills an empty journal with the snapshot at `upTo` (default: the newest). */
  async bootstrap(upTo = Infinity): Promise<void> {
    if (upTo !== Infinity) {
      const floor = await readFloor(this.log.store, this.log.volumeId);
      if (upTo < floor) throw prunedError(this.volumeName ?? this.log.volumeId, upTo, floor);
    }
    let cp: number | undefined;
    let state: [string, EntryData][] | undefined;
    let records: CommitRecord[];
    for (let attempt = 1; ; attempt++) {
      try {
        cp = await this.log.latestCheckpoint(upTo);
        state = cp !== undefined ? (await this.log.readCheckpoint(cp)).entries : undefined;
        records = await this.log.recordsAfter(cp ?? 0, upTo);
        break;
      } catch (err) {
        // A GC pruned past the checkpoint picked (it wrote a newer one first): pick again.
        const raced = isCairnError(err, 'PRUNED') || isCairnError(err, 'CORRUPT') || isCairnError(err, 'NOT_FOUND');
        if (!raced || attempt >= 5 || (await readFloor(this.log.store, this.log.volumeId)) <= (cp ?? 0)) throw err;
      }
    }
    if (cp !== undefined) {
      this.journal.loadState(cp, state!);
      this.journal.setMeta('checkpoint', String(cp));
    }
    if (upTo !== Infinity && upTo > 0 && (records.length ? records[records.length - 1]!.seq : (cp ?? 0)) !== upTo) {
      throw new CairnError('NOT_FOUND', `snapshot ${upTo} does not exist`, { hint: 'see vol.history() for the seqs there are' });
    }
    this.applyRecords(records);
  }

  // ---- applying records ----------------------------------------------------------------------

  /**
   * Applies records to the view in order, each in one transaction, keeping pending ops above
   * `fence` on top (their entries are saved and re-applied). `published` names the staging files
   * that stay attached to the paths a just-landed commit of ours published.
   */
  private applyRecords(records: CommitRecord[], fence = 0, published?: Map<string, string>): void {
    for (const r of records) {
      this.journal.transaction(() => {
        const later = this.journal.pending().filter((p) => p.id > fence);
        const saved = new Map<string, JournalEntry | undefined>();
        for (const p of later) if (p.op === 'put' && !saved.has(p.path)) saved.set(p.path, this.journal.get(p.path));
        for (const op of r.ops) this.applyOp(op, published);
        for (const p of later) {
          if (p.op === 'delete') this.journal.applyOp({ op: 'delete', path: p.path });
          else {
            const e = saved.get(p.path);
            if (e) this.journal.applyOp({ op: 'put', path: p.path, entry: e });
          }
        }
        this.journal.seq = Math.max(this.journal.seq, r.seq);
        this.journal.setMeta('logHead', String(Math.max(this.logHead, r.seq)));
      });
    }
  }

  private applyOp(op: Op, published?: Map<string, string>): void {
    if (op.op === 'delete') {
      this.journal.applyOp(op);
      return;
    }
    if (op.entry.chunks) this.journal.addChunks(op.entry.chunks);
    const cur = this.journal.get(op.path);
    let staged = published?.get(op.path);
    // Our own record landing on the view it came from (batch uploads): nothing to change.
    if (!staged && cur && sameEntry(cur, op.entry)) return;
    if (!staged && cur?.staged && sameContent(cur, op.entry)) staged = cur.staged;
    this.journal.applyOp({ op: 'put', path: op.path, entry: staged ? { ...op.entry, staged } : op.entry });
  }

  // ---- commit --------------------------------------------------------------------------------

  commit(): Promise<CommitResult> {
    return this.serial(() => this.commitNow());
  }

  private async commitNow(): Promise<CommitResult> {
    // An earlier commit that failed may have landed (its reply lost): finish it, never publish it twice.
    if (this.journal.getMeta('inflight')) await this.recover();
    const pending = this.journal.pending();
    if (pending.length === 0) return { seq: this.seq, committed: false, paths: [], overwrote: [], bytesUploaded: 0 };
    const fence = pending[pending.length - 1]!.id;
    this.fence = fence;
    // A deleted volume takes no commits (its record would sit where nothing reads it): one HEAD
    // of its metadata, in parallel with the pack upload.
    const exists = this.log.store.head(keys.meta(this.log.volumeId));
    exists.catch(() => undefined);
    try {
      const uploadStart = performance.now();
      const built = await this.buildOps(pending);
      const { published } = built;
      let { ops, bytesUploaded } = built;
      if (!(await exists)) throw this.deletedError(pending.length);
      // GC: no condemned or deleted pack in the record, checked right before the append (gcguard.ts).
      let checked = await this.guardOps(ops, built.uploaded, uploadStart);
      ops = checked.ops;
      bytesUploaded += checked.bytesUploaded;
      const commitId = `${this.sessionId}.${Date.now().toString(36)}.${crypto.randomBytes(4).toString('hex')}`;
      const base = this.seq;
      this.journal.setMeta('inflight', JSON.stringify({ commitId, fence, from: base }));
      let target = this.logHead + 1;
      const foreign: CommitRecord[] = [];
      let record: CommitRecord;
      for (;;) {
        if (performance.now() - checked.at > APPEND_WINDOW_MS) {
          checked = await this.guardOps(ops, checked.uploaded, checked.uploadStart);
          ops = checked.ops;
          bytesUploaded += checked.bytesUploaded;
        }
        record = { version: FORMAT_VERSION, seq: target, base, time: Date.now(), author: currentAuthor(), commitId, ops };
        if (await this.log.tryAppend(record)) break;
        // Taken: by another writer, or by this very record (an attempt whose reply was lost landed).
        const newer = await this.log.recordsAfter(target - 1);
        const mine = newer.findIndex((r) => r.commitId === commitId);
        for (const r of mine < 0 ? newer : newer.slice(0, mine)) if (!this.isOurs(r)) foreign.push(r);
        if (mine >= 0) {
          record = newer[mine]!;
          break;
        }
        target = (newer.length ? newer[newer.length - 1]!.seq : target) + 1;
      }
      for (const r of foreign) for (const op of r.ops) this.foreignSince.add(op.path);
      const viewWasHead = this.logHead === base && foreign.length === 0;
      this.finishCommit(record, fence, published, viewWasHead);
      const paths = ops.map((o) => o.path);
      const overwrote = paths.filter((p) => [...this.foreignSince].some((q) => overlaps(p, q)));
      await this.afterChange();
      return { seq: record.seq, committed: true, paths, overwrote, bytesUploaded };
    } finally {
      this.fence = 0;
    }
  }

  /** NOT_FOUND for a commit to a volume that was deleted; the pending changes stay. */
  private deletedError(pending: number): CairnError {
    const name = this.volumeName ?? this.log.volumeId;
    const what = `volume ${name} (${this.log.volumeId}) no longer exists`;
    return new CairnError('NOT_FOUND', `${what}: it was deleted, and nothing was committed`, {
      volume: name,
      volumeId: this.log.volumeId,
      pending,
      hint: `the ${pending} pending change(s) are kept in this session: copy the files out `
        + '(for a mount, `cp -a DIR/. SAVE/`), then put them in another volume '
        + '(`cairn volume create NEW && cairn volume put NEW SAVE /`)',
    });
  }

  /** A known chunk to reuse, unless its pack was found condemned or gone (then it is uploaded again). */
  private reusable(hash: string): ChunkRef | undefined {
    const r = this.journal.knownChunk(hash);
    return r && !this.avoidPacks.has(r.pack) ? r : undefined;
  }

  /**
   * Checks `ops` against GC (gcguard.ts) and, while some pack they reference is condemned or
   * gone, rewrites the entries using it (`rewrite`) and checks again. CORRUPT when the bytes are
   * gone (the view is older than the volume's retention and GC reclaimed them).
   */
  private async guardOps(ops: Op[], uploaded: ReadonlySet<string>, uploadStart: number) {
    let bytesUploaded = 0;
    let fresh = new Set(uploaded);
    let start = uploadStart;
    for (;;) {
      const { at, bad } = await this.guard.check(ops, fresh, start);
      if (bad.size === 0) return { at, ops, bytesUploaded, uploaded: fresh, uploadStart: start };
      for (const p of bad) this.avoidPacks.add(p);
      start = performance.now();
      const writer = this.chunks.writer({ known: (h) => this.reusable(h) });
      try {
        const out: Op[] = [];
        for (const op of ops) {
          if (op.op !== 'put' || !op.entry.chunks?.some((r) => bad.has(r.pack))) {
            out.push(op);
            continue;
          }
          const chunks = await this.rewrite(op.path, op.entry.chunks, bad, writer);
          out.push({ op: 'put', path: op.path, entry: { ...op.entry, chunks } });
        }
        const done = await writer.finish();
        this.journal.transaction(() => this.journal.addChunks(done.newChunks));
        bytesUploaded += done.bytesUploaded;
        fresh = new Set(done.newChunks.map((r) => r.pack));
        ops = out;
      } catch (err) {
        writer.abort();
        throw err;
      }
    }
  }

  /**
   * `refs` with those into `bad` packs written again into `writer`: copied (the exact bytes, from
   * the pack or the chunk cache) or, when the pack is gone, chunked again from the path's staging
   * file if that still holds exactly those chunks; CORRUPT when the bytes are nowhere.
   */
  private async rewrite(path: string, refs: ChunkRef[], bad: Set<string>, writer: PackWriter): Promise<ChunkRef[]> {
    const out: ChunkRef[] = [];
    for (const r of refs) {
      if (!bad.has(r.pack)) {
        out.push(r);
        continue;
      }
      let bytes: Buffer;
      try {
        bytes = await this.chunks.read([r], 0, r.length);
      } catch (err) {
        if (!isCairnError(err, 'NOT_FOUND')) throw err;
        const staged = this.journal.get(path)?.staged;
        if (staged) {
          const again = await writer.writeFile(this.staging.pathOf(staged));
          if (again.length === refs.length && again.every((x, i) => x.hash === refs[i]!.hash)) return again;
        }
        throw new CairnError('CORRUPT', `the data of /${path} was reclaimed by gc: nothing was committed`, {
          path: `/${path}`,
          volume: this.volumeName ?? this.log.volumeId,
          hint: "this session's view is older than the volume's retention: "
            + 'reload it (or write the file again) and commit',
        }, { cause: err });
      }
      out.push(...(await writer.write(bytes)));
    }
    return out;
  }

  /** Turns pending ops into record ops, chunking and uploading staged files. */
  private async buildOps(pending: PendingRow[]) {
    const writer = this.chunks.writer({ known: (h) => this.reusable(h) });
    const ops: Op[] = [];
    const published = new Map<string, string>();
    // Staged files' sizes (and small files' bytes), READ_AHEAD pending ops ahead, by staging name:
    // a file restaged meanwhile is read again below.
    const ahead = new Map<number, { staged: string; read: Promise<Buffer | undefined> }>();
    const readAhead = (from: number): void => {
      for (let j = from; j < Math.min(pending.length, from + READ_AHEAD); j++) {
        const e = pending[j]!.op === 'put' && !ahead.has(j) ? this.journal.get(pending[j]!.path) : undefined;
        if (e?.type !== 'file' || !e.staged) continue;
        const read = this.readStaged(e.staged);
        read.catch(() => {});
        ahead.set(j, { staged: e.staged, read });
      }
    };
    try {
      for (const [i, p] of pending.entries()) {
        if (p.op === 'delete') {
          ops.push({ op: 'delete', path: p.path });
          continue;
        }
        readAhead(i);
        const pre = ahead.get(i);
        ahead.delete(i);
        const e = this.journal.get(p.path);
        // libfuse keeps unlinked-but-open files as .fuse_hidden*: local until their last close.
        if (!e || baseName(p.path).startsWith('.fuse_hidden')) continue;
        const entry = entryData(e);
        if (e.type === 'file' && e.staged) {
          const bytes = await (pre?.staged === e.staged ? pre.read : this.readStaged(e.staged));
          delete entry.chunks;
          delete entry.inline;
          if (bytes && bytes.length <= INLINE_MAX) {
            entry.inline = bytes;
            entry.size = bytes.length;
          } else if (bytes) {
            entry.chunks = await writer.write(bytes);
            entry.size = bytes.length;
          } else {
            entry.chunks = await writer.writeFile(this.staging.pathOf(e.staged));
            entry.size = entry.chunks.reduce((n, r) => n + r.length, 0);
          }
          published.set(p.path, e.staged);
        }
        ops.push({ op: 'put', path: p.path, entry });
      }
      const done = await writer.finish();
      this.journal.transaction(() => this.journal.addChunks(done.newChunks));
      const uploaded = new Set(done.newChunks.map((r) => r.pack));
      return { ops, published, bytesUploaded: done.bytesUploaded, uploaded };
    } catch (err) {
      writer.abort();
      throw err;
    }
  }

  /** A staging file's bytes when it holds at most WHOLE_READ_MAX (else undefined: stream it). */
  private async readStaged(name: string): Promise<Buffer | undefined> {
    const size = (await this.staging.size(name))?.size ?? 0;
    return size <= WHOLE_READ_MAX ? this.staging.read(name, 0, size) : undefined;
  }

  private finishCommit(record: CommitRecord, fence: number, published: Map<string, string>, viewWasHead: boolean): void {
    const before = this.journal.seq;
    this.journal.transaction(() => {
      this.applyRecords([record], fence, published);
      this.journal.clearPending(fence);
      this.journal.setMeta('inflight', undefined);
      this.journal.seq = viewWasHead ? record.seq : before;
      this.journal.setMeta('logHead', String(record.seq));
    });
  }

  /**
   * After a restart, or a commit that failed: finishes a commit whose record landed (wherever it
   * is in the log after the view it started from) before the process died or its reply was lost.
   */
  async recover(): Promise<void> {
    const raw = this.journal.getMeta('inflight');
    if (!raw) return;
    const { commitId, fence, from } = JSON.parse(raw) as { commitId: string; fence: number; from?: number };
    const records = await this.log.recordsAfter(Math.min(from ?? this.seq, this.seq));
    const i = records.findIndex((r) => r.commitId === commitId);
    if (i < 0) {
      this.journal.setMeta('inflight', undefined); // it never landed: the pending ops are still there
      return;
    }
    if (records[i]!.seq <= this.seq) {
      // A reload applied it already (as someone else's): its ops are no longer pending.
      this.journal.transaction(() => {
        this.journal.clearPending(fence);
        this.journal.setMeta('inflight', undefined);
      });
      return;
    }
    const viewWasHead = records.slice(0, i).every((r) => this.isOurs(r));
    const published = new Map<string, string>();
    for (const op of records[i]!.ops) {
      const staged = op.op === 'put' ? this.journal.get(op.path)?.staged : undefined;
      if (staged) published.set(op.path, staged);
    }
    this.finishCommit(records[i]!, fence, published, viewWasHead);
  }

  // ---- reload --------------------------------------------------------------------------------

  /**
   * Applies every record after the view's seq. Pending ops stay on top (their entries are
   * re-applied after each record): Session.reload commits first, but a write may land while
   * the log is read, and the view must keep it for the next commit. Forgets which paths others
   * changed (the view shows them now).
   */
  reload(): Promise<MoveResult> {
    return this.moveToHead(false);
  }

  /**
   * Moves the view of a reopened session to the newest snapshot, as `reload`, but its pending ops
   * (recovered, to be committed) count the paths others changed meanwhile as overwritten.
   */
  catchUp(): Promise<MoveResult> {
    return this.moveToHead(true);
  }

  private moveToHead(rememberForeign: boolean): Promise<MoveResult> {
    return this.serial(async () => {
      const from = this.seq;
      const records = await this.log.recordsAfter(from);
      const foreign = records.filter((r) => !this.isOurs(r));
      this.applyRecords(records);
      if (!rememberForeign) this.foreignSince.clear();
      else for (const r of foreign) for (const op of r.ops) this.foreignSince.add(op.path);
      await this.afterChange();
      // `changed`: every path the applied records touched (what a kernel cache must drop);
      // `paths`: those of other writers' records only (what really changed under this view).
      const paths = foreign.flatMap((r) => r.ops.map((o) => o.path));
      const changed = new Set<string>();
      for (const r of records) for (const op of r.ops) changed.add(op.path);
      return { from, seq: this.seq, paths, changed: [...changed] };
    });
  }

  /** Housekeeping after the view changed: unreferenced staging files, periodic checkpoints. */
  private async afterChange(): Promise<void> {
    const referenced = new Set<string>();
    await this.staging.sweep((name) => {
      if (referenced.size === 0) for (const s of this.journal.allStaged()) referenced.add(s.staged);
      return referenced.has(name);
    });
    const seq = this.seq;
    const last = Number(this.journal.getMeta('checkpoint') ?? 0);
    if (seq === this.logHead && seq - last >= CHECKPOINT_EVERY && this.journal.pendingCount() === 0) {
      if (this.checkpointJob) return this.startCheckpointJob(seq);
      const entries: [string, EntryData][] = [];
      for (const e of this.journal.iterateAll()) entries.push([e.path, entryData(e)]);
      await this.log.writeCheckpoint(seq, entries);
      this.journal.setMeta('checkpoint', String(seq));
    }
  }

  /** Starts a checkpoint job for `seq` unless one runs; records it once written. */
  private startCheckpointJob(seq: number): void {
    if (this.checkpointing || this.stopped) return;
    const job = this.checkpointJob!(seq);
    this.checkpointing = job;
    void job.done
      .then(
        (result) => {
          const written = /^written (\d+)$/.exec(result);
          if (written && !this.stopped && Number(written[1]) > Number(this.journal.getMeta('checkpoint') ?? 0)) {
            this.journal.setMeta('checkpoint', written[1]!);
          }
        },
        () => undefined, // a later commit starts another
      )
      .finally(() => {
        if (this.checkpointing === job) this.checkpointing = undefined;
      });
  }

  /** Stops a checkpoint job in progress (before the journal closes) and waits for it to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    const job = this.checkpointing;
    if (!job) return;
    job.kill();
    await job.done.catch(() => undefined);
  }
}
