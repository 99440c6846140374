/**
 * Fetch workers: the cold read's per-byte work — receiving S3 bodies, BLAKE3 verification, host
 * cache writes — on worker threads (./fetchworker.ts), so that the event loop, which also answers
 * FUSE requests, only receives verified chunks (views of a run's body, transferred: no copy).
 * Off by default (`fetchThreads`): measured on Ceph RGW here, they cost more CPU in all than they
 * take off the event loop (docs/CHUNKS.md, "Fetch workers").
 *
 * Invariants:
 * - integrity is the worker's (fetchworker.ts): a chunk reaches `onChunk` only verified, and is
 *   written to the cache only after it was verified;
 * - a job never hangs: a worker that exits or fails rejects its jobs with `WorkerLost` (the caller
 *   then fetches inline), and a worker whose store would not open is dropped the same way;
 * - until a worker has opened its store (`ready`), `acquire()` returns undefined and callers fetch
 *   inline, so starting the workers never delays a first read;
 * - workers are unref'd while idle (they never keep a process alive) and ref'd while they owe a job;
 *   after IDLE_MS without a job they are stopped (their connections closed: a server being shut down
 *   is not kept waiting), and started again by the next `ready()`.
 */
import { Worker } from 'node:worker_threads';
import type { ObjectStore } from '../store/types.js';
import type { ChunkRef } from './types.js';
import { workerExecArgv } from '../util/worker.js';
import { FETCH_WORKER_ROLE, fromWire, type FetchWorkerData, type FetchWorkerMessage, type RunJob } from './fetchworker.js';

/** What a job's owner is told: `bad` as soon as a chunk fails, `cached` after each cache write, `chunk` for the good ones at the end. */
export interface RunCallbacks {
  /** Chunk `i` of the job, verified: a view of the run's body (transferred from the worker). */
  chunk(i: number, bytes: Buffer): void;
  /** Chunk `i` did not verify (the CORRUPT error). */
  bad(i: number, err: Error): void;
  /** Chunk `i`'s cache write finished (or failed). */
  cached(i: number): void;
}

/** A job's rejection when its worker died: chunks from `next` on were not handed over. */
export class WorkerLost extends Error {
  readonly error = undefined;
  constructor(readonly next: number) {
    super('fetch worker lost');
  }
}

/** A job's rejection when its GET failed: chunks from `next` on were not handed over. */
export interface RunFailure {
  error: Error;
  next: number;
}

/** Workers idle this long are stopped. */
export const IDLE_MS = 3000;

interface Pending {
  job: Omit<RunJob, 'id'>;
  cb: RunCallbacks;
  next: number;
  resolve(): void;
  reject(e: RunFailure | WorkerLost): void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  jobs: Map<number, Pending>;
}

/**
 * Worker threads for `store`: `$CAIRN_FETCH_THREADS` (at most 8) for a plain S3 store (the
 * `S3Store` itself, not a wrapper of it: tests wrap stores to count or break GETs); else 0, the
 * default: on this 2-core machine the workers cost more CPU per GiB in all than the event loop
 * (a second isolate receiving, its own GC), and a cold read is bound by the machine's CPU, not by
 * the event loop's (docs/CHUNKS.md, "Fetch workers").
 */
export function fetchThreads(store: ObjectStore): number {
  const v = Number(process.env.CAIRN_FETCH_THREADS);
  return plainS3(store) && Number.isInteger(v) && v > 0 ? Math.min(v, 8) : 0;
}

/** Whether `store` is an `S3Store` itself (not a wrapper of one: tests wrap stores to count or break GETs). */
export function plainS3(store: ObjectStore): boolean {
  return Object.prototype.hasOwnProperty.call(store, 'url') && store.constructor?.name === 'S3Store' && store.url.startsWith('s3://');
}

/** What receives runs off the event loop: these workers, or the addon's fetch threads (./nativefetch.ts). */
export interface RunPool {
  /** Runs handed to it so far (for tests and stats). */
  jobs: number;
  /** Whether it takes a run now. */
  ready(): boolean;
  /** One range GET of `refs` (adjacent chunks of one pack); rejects with a RunFailure or WorkerLost (then fetch the rest inline). */
  run(key: string, refs: readonly ChunkRef[], stream: boolean, cb: RunCallbacks): Promise<void>;
}

/**
 * Worker threads fetching runs of chunks of `storeUrl`.
 *
 * @example
 * const pool = new FetchPool(2, store.url, cache?.dir, cache?.maxBytes);
 * const slot = pool.acquire(); // undefined until a worker is ready: fetch inline then
 */
export class FetchPool implements RunPool {
  private readonly slots: Slot[] = [];
  private nextId = 0;
  private started = false;
  /** Jobs run by the workers of every pool of this process (for tests and stats). */
  static jobs = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  /** Jobs run by workers so far (for tests and stats). */
  jobs = 0;

  constructor(
    readonly size: number,
    private readonly storeUrl: string,
    private readonly cacheDir?: string,
    private readonly cacheBytes?: number,
  ) {}

  /** Whether a worker is ready for a job now; starts the workers on first call. */
  ready(): boolean {
    this.start();
    return this.slots.some((s) => s.ready);
  }

  /**
   * Runs one range GET of `refs` (adjacent chunks of one pack, in pack order) on the least busy ready worker: resolves after its last message (every chunk
   * handed over and cached); rejects with a RunFailure (the store's error) or WorkerLost.
   * Call only when `ready()`.
   */
  run(key: string, refs: readonly ChunkRef[], stream: boolean, cb: RunCallbacks): Promise<void> {
    const first = refs[0];
    const last = refs[refs.length - 1];
    const chunks = refs.map((r) => ({ hash: r.hash, offset: r.offset, length: r.length }));
    const job: Omit<RunJob, 'id'> = {
      key,
      pack: first.pack,
      offset: first.offset,
      length: last.offset + last.length - first.offset,
      chunks,
      stream,
    };
    let slot: Slot | undefined;
    for (const s of this.slots) if (s.ready && (!slot || s.jobs.size < slot.jobs.size)) slot = s;
    if (!slot) return Promise.reject(new WorkerLost(0));
    const id = this.nextId++;
    const s = slot;
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    return new Promise<void>((resolve, reject) => {
      s.jobs.set(id, { job, cb, next: 0, resolve, reject });
      if (s.jobs.size === 1) s.worker.ref();
      this.jobs++;
      FetchPool.jobs++;
      s.worker.postMessage({ ...job, id });
    });
  }

  /** Stops the workers once none has had a job for IDLE_MS. */
  private idleLater(): void {
    if (this.idleTimer || this.slots.some((s) => s.jobs.size > 0)) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.slots.some((s) => s.jobs.size > 0)) return;
      const slots = this.slots.splice(0);
      this.started = false;
      for (const s of slots) void s.worker.terminate();
    }, IDLE_MS);
    this.idleTimer.unref();
  }

  private start(): void {
    if (this.started) return;
    this.started = true;
    for (let k = 0; k < this.size; k++) {
      try {
        this.spawn();
      } catch {
        return; // no workers here: callers fetch inline
      }
    }
  }

  private spawn(): void {
    const data: FetchWorkerData = {
      role: FETCH_WORKER_ROLE,
      storeUrl: this.storeUrl,
      cacheDir: this.cacheDir,
      cacheBytes: this.cacheBytes,
    };
    const worker = new Worker(new URL('./fetchworker.js', import.meta.url), { workerData: data, execArgv: workerExecArgv() });
    worker.unref();
    const slot: Slot = { worker, ready: false, jobs: new Map() };
    this.slots.push(slot);
    const drop = (): void => {
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      slot.ready = false;
      for (const p of slot.jobs.values()) p.reject(new WorkerLost(p.next));
      slot.jobs.clear();
      worker.unref();
      void worker.terminate();
    };
    worker.on('message', (m: FetchWorkerMessage) => {
      if (m.t === 'ready') {
        if (m.error) drop();
        else {
          slot.ready = true;
          this.idleLater();
        }
        return;
      }
      const p = slot.jobs.get(m.id);
      if (!p) return;
      if (m.t === 'body') {
        for (const i of m.good) {
          const c = p.job.chunks[i];
          p.next = Math.max(p.next, i + 1);
          p.cb.chunk(i, Buffer.from(m.bytes, c.offset - m.at, c.length));
        }
      } else if (m.t === 'bad') {
        p.next = m.i + 1;
        p.cb.bad(m.i, fromWire(m.error));
      } else if (m.t === 'cached') p.cb.cached(m.i);
      else {
        slot.jobs.delete(m.id);
        if (slot.jobs.size === 0) {
          worker.unref();
          this.idleLater();
        }
        if (m.error) p.reject({ error: fromWire(m.error), next: m.next });
        else p.resolve();
      }
    });
    worker.on('error', drop);
    worker.on('exit', drop);
  }
}
