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
import type { ChunkRef, ChunkStore, PackWriter } from '../chunks/index.js';
import { APPEND_WINDOW_MS, CommitGuard } from './gcguard.js';
import type { Journal, PendingOp } from './journal.js';
import {
  type CommitResult,
  type VolumeLog,
  type CommitRecord,
  FORMAT_VERSION,
  type Op,
  keys,
  changedPaths,
  isHiddenName,
  isWithin,
  currentAuthor,
  readFloor,
} from '../format/index.js';
import type { Staging } from './staging.js';
import { entryData } from './entry.js';
import { type ContentSource, WHOLE_READ_MAX, contentEncoder } from './content.js';
import { bootstrap, rebootstrap } from './snapshot.js';
import { Checkpointer, type CheckpointJob } from './checkpoints.js';

function overlaps(a: string, b: string): boolean {
  return isWithin(a, b) || isWithin(b, a);
}

/** Where a reload or catch-up moved the view, and the paths the records it applied touched. */
export interface MoveResult {
  from: number;
  seq: number;
  /** Paths of other writers' records. */
  paths: string[];
  /** Paths of every applied record; undefined after a re-bootstrap (anything may have changed). */
  changed?: string[];
  /** Set when the view was below the pruned floor and started again from the newest checkpoint. */
  rebootstrapped?: { floor: number; checkpoint: number };
}

export interface SyncerOptions {
  /** The volume's name, for messages. */
  volumeName?: string;
  /** Checkpoints are written by the job this starts (a child process) instead of in this process. */
  checkpointJob?: (seq: number) => CheckpointJob;
}

export class Syncer {
  /** Paths other writers' records changed after the view's seq, as learned by our commits. */
  private readonly foreignSince = new Set<string>();
  private readonly queue = new SerialQueue();
  /** Packs found condemned or gone by GC: never reused by dedup again in this process. */
  private readonly avoidPacks = new Set<string>();
  private readonly guard: CommitGuard;
  private readonly checkpoints: Checkpointer;
  private readonly volumeName: string;

  /** @example const sync = new Syncer(journal, log, chunks, staging, sessionId, { volumeName: 'data' }); */
  constructor(
    private readonly journal: Journal,
    private readonly log: VolumeLog,
    private readonly chunks: ChunkStore,
    private readonly staging: Staging,
    private readonly sessionId: string,
    options: SyncerOptions = {},
  ) {
    this.guard = new CommitGuard(log.store, log.volumeId);
    this.checkpoints = new Checkpointer(journal, log, options.checkpointJob);
    this.volumeName = options.volumeName ?? log.volumeId;
  }

  get seq(): number {
    return this.journal.seq;
  }

  get logHead(): number {
    return this.journal.logHead;
  }

  private isOurs(r: CommitRecord): boolean {
    return r.commitId.startsWith(`${this.sessionId}.`);
  }

  /** Runs commit/reload one at a time. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    return this.queue.run(fn);
  }

  /** Fills an empty journal with the snapshot at `upTo` (default: the newest): ./snapshot.ts. */
  bootstrap(upTo = Infinity): Promise<void> {
    return bootstrap(this.journal, this.log, upTo, this.volumeName);
  }

  // ---- commit --------------------------------------------------------------------------------

  commit(): Promise<CommitResult> {
    return this.serial(() => this.commitNow());
  }

  private async commitNow(): Promise<CommitResult> {
    // An earlier commit that failed may have landed (its reply lost): finish it, never publish it twice.
    if (this.journal.inflight) await this.recover();
    const pending = this.journal.fencePending();
    if (pending.length === 0) return { seq: this.seq, committed: false, paths: [], overwrote: [], bytesUploaded: 0 };
    const fence = this.journal.fence;
    // A deleted volume takes no commits (its record would sit where nothing reads it): one HEAD
    // of its metadata, in parallel with the pack upload.
    const exists = this.log.store.head(keys.meta(this.log.volumeId));
    exists.catch(() => undefined);
    // A seq below the pruned floor may be free again (GC deleted its record): never append there,
    // where no reader looks. One LIST, in parallel with the upload too.
    const floorNow = readFloor(this.log.store, this.log.volumeId);
    floorNow.catch(() => undefined);
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
      this.journal.inflight = { commitId, fence, from: base };
      const floor = await floorNow;
      // Records a GC pruned lie between the view and the seq taken: others changed what we cannot know.
      let skipped = this.logHead < floor;
      let target = Math.max(this.logHead + 1, floor);
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
        const { records: newer, pruned } = await this.recordsSince(target - 1);
        if (pruned) skipped = true;
        const mine = newer.findIndex((r) => r.commitId === commitId);
        for (const r of mine < 0 ? newer : newer.slice(0, mine)) if (!this.isOurs(r)) foreign.push(r);
        if (mine >= 0) {
          record = newer[mine]!;
          break;
        }
        target = (newer.length ? newer[newer.length - 1]!.seq : target) + 1;
      }
      for (const r of foreign) for (const op of r.ops) if (op.op !== 'times') this.foreignSince.add(op.path);
      const viewWasHead = this.logHead === base && foreign.length === 0 && !skipped;
      this.journal.landCommit(record, fence, published, viewWasHead);
      // A directory's times changed by its entries are published, not reported as a change of its own.
      const paths = changedPaths(ops);
      const overwrote = paths.filter((p) => [...this.foreignSince].some((q) => overlaps(p, q)));
      await this.afterChange();
      return { seq: record.seq, committed: true, paths, overwrote, bytesUploaded };
    } finally {
      this.journal.unfence();
    }
  }

  /**
   * The records after `seq`; for a seq below the pruned floor (a GC deleted the records after
   * it), those from the floor on, `pruned` set (the paths of the records pruned are unknown).
   */
  private async recordsSince(seq: number): Promise<{ records: CommitRecord[]; pruned: boolean }> {
    for (let attempt = 1; ; attempt++) {
      try {
        return { records: await this.log.recordsAfter(seq), pruned: false };
      } catch (err) {
        if (!isCairnError(err, 'PRUNED') || attempt >= 5) throw err;
        const floor = await readFloor(this.log.store, this.log.volumeId);
        if (floor > seq + 1) {
          try {
            return { records: await this.log.recordsAfter(floor - 1), pruned: true };
          } catch (again) {
            if (!isCairnError(again, 'PRUNED') || attempt >= 5) throw again; // the floor rose again
          }
        }
      }
    }
  }

  /** NOT_FOUND for a commit to a volume that was deleted; the pending changes stay. */
  private deletedError(pending: number): CairnError {
    const name = this.volumeName;
    const what = `volume ${name} (${this.log.volumeId}) no longer exists`;
    return new CairnError('NOT_FOUND', `${what}: it was deleted, and nothing was committed`, {
      volume: name,
      volumeId: this.log.volumeId,
      pending,
      hint:
        `the ${pending} pending change(s) are kept in this session: copy the files out ` +
        '(for a mount, `cp -a DIR/. SAVE/`), then put them in another volume ' +
        '(`cairn volume create NEW && cairn volume put NEW SAVE /`)',
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
        this.journal.addChunks(done.newChunks);
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
        throw new CairnError(
          'CORRUPT',
          `the data of /${path} was reclaimed by gc: nothing was committed`,
          {
            path: `/${path}`,
            volume: this.volumeName,
            hint: "this session's view is older than the volume's retention: " + 'reload it (or write the file again) and commit',
          },
          { cause: err },
        );
      }
      out.push(...(await writer.write(bytes)));
    }
    return out;
  }

  /** Turns pending ops into record ops, chunking and uploading staged files (./content.ts). */
  private async buildOps(pending: PendingOp[]) {
    const writer = this.chunks.writer({ known: (h) => this.reusable(h) });
    const ops: Op[] = [];
    const published = new Map<string, string>();
    const stagedAt = (i: number): ContentSource | undefined => {
      const e = pending[i]!.op === 'put' ? this.journal.get(pending[i]!.path) : undefined;
      return e?.type === 'file' && e.staged ? this.stagedSource(e.staged) : undefined;
    };
    const encode = contentEncoder(writer, pending.length, stagedAt);
    try {
      for (const [i, p] of pending.entries()) {
        if (p.op === 'delete') {
          ops.push({ op: 'delete', path: p.path });
          continue;
        }
        const e = this.journal.get(p.path);
        // libfuse keeps unlinked-but-open files as .fuse_hidden*: local until their last close.
        if (!e || isHiddenName(p.path)) continue;
        if (p.op === 'times') {
          ops.push({ op: 'times', path: p.path, mtimeMs: e.mtimeMs, ctimeMs: e.ctimeMs ?? e.mtimeMs });
          continue;
        }
        const entry = entryData(e);
        if (e.type === 'file' && e.staged) {
          delete entry.chunks;
          delete entry.inline;
          Object.assign(entry, await encode(i, this.stagedSource(e.staged)));
          published.set(p.path, e.staged);
        }
        ops.push({ op: 'put', path: p.path, entry });
      }
      const done = await writer.finish();
      this.journal.addChunks(done.newChunks);
      const uploaded = new Set(done.newChunks.map((r) => r.pack));
      return { ops, published, bytesUploaded: done.bytesUploaded, uploaded };
    } catch (err) {
      writer.abort();
      throw err;
    }
  }

  /** A staging file as a content source: read whole when it holds at most WHOLE_READ_MAX. */
  private stagedSource(name: string): ContentSource {
    return {
      key: name,
      readWhole: async () => {
        const size = (await this.staging.size(name))?.size ?? 0;
        return size <= WHOLE_READ_MAX ? this.staging.read(name, 0, size) : undefined;
      },
      streamed: () => this.staging.pathOf(name),
    };
  }

  /**
   * After a restart, or a commit that failed: finishes a commit whose record landed (wherever it
   * is in the log after the view it started from) before the process died or its reply was lost.
   */
  async recover(): Promise<void> {
    const inflight = this.journal.inflight;
    if (!inflight) return;
    const { commitId, fence, from } = inflight;
    const records = await this.log.recordsAfter(Math.min(from ?? this.seq, this.seq));
    const i = records.findIndex((r) => r.commitId === commitId);
    if (i < 0) {
      this.journal.inflight = undefined; // it never landed: the pending ops are still there
      return;
    }
    if (records[i]!.seq <= this.seq) {
      // A reload applied it already (as someone else's): its ops are no longer pending.
      this.journal.forgetCommit(fence);
      return;
    }
    const viewWasHead = records.slice(0, i).every((r) => this.isOurs(r));
    const published = new Map<string, string>();
    for (const op of records[i]!.ops) {
      const staged = op.op === 'put' ? this.journal.get(op.path)?.staged : undefined;
      if (staged) published.set(op.path, staged);
    }
    this.journal.landCommit(records[i]!, fence, published, viewWasHead);
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
      let records: CommitRecord[];
      try {
        records = await this.log.recordsAfter(from);
      } catch (err) {
        if (!isCairnError(err, 'PRUNED')) throw err;
        // A GC pruned the records after the view: start again from the newest checkpoint, the
        // pending ops on top. What others changed is unknown: no paths, anything may have changed.
        const rebootstrapped = await rebootstrap(this.journal, this.log);
        this.foreignSince.clear();
        await this.afterChange();
        return { from, seq: this.seq, paths: [], rebootstrapped };
      }
      const foreign = records.filter((r) => !this.isOurs(r));
      this.journal.applyRecords(records);
      if (!rememberForeign) this.foreignSince.clear();
      else for (const r of foreign) for (const op of r.ops) if (op.op !== 'times') this.foreignSince.add(op.path);
      await this.afterChange();
      // `changed`: every path the applied records touched (what a kernel cache must drop);
      // `paths`: those of other writers' records only (what really changed under this view).
      const paths = changedPaths(foreign.flatMap((r) => r.ops));
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
    await this.checkpoints.afterChange();
  }

  /** Stops a checkpoint job in progress (before the journal closes) and waits for it to end. */
  stop(): Promise<void> {
    return this.checkpoints.stop();
  }
}
