/**
 * Native fetches: a cold read's range GETs received by the addon's fetch threads (native/nfetch.c,
 * libcurl), each chunk verified with the addon's BLAKE3 as its bytes arrive and written to the host
 * cache there, and handed to the event loop as a view of the body the thread filled: no JavaScript
 * on the bytes' path, no copy. The default for a plain S3 store on the lean read path (./s3get.ts
 * signs each GET for curl) when the addon was built with libcurl; `CAIRN_NATIVE_FETCH=0` turns
 * them off. Same contract as the fetch workers (./fetchpool.ts, `RunPool`).
 *
 * Invariants:
 * - integrity is the addon's: `chunk(i)` comes only once the BLAKE3 of chunk i's bytes, as they
 *   are in the body handed over, equalled its name (`bad(i)` with the CORRUPT error otherwise);
 *   a chunk is cached only after that;
 * - any failure of a GET (an HTTP status other than 206, a reset, a stall past the store's idle
 *   limit, a short body) rejects the run with WorkerLost(next): the caller fetches the rest itself,
 *   through the store (its retries, its error table, the forwarder of packs GC moved), so no
 *   failure reaches a reader from here and none is hidden either;
 * - after FAILS_TO_STOP failures without a success ever (a TLS set-up curl does not share with
 *   Node, say), the pool stops being `ready()`: every run then goes through the store, as before.
 *   The CAs of `$NODE_EXTRA_CA_CERTS` are given to curl (beside the system's, /etc/ssl/certs), so a
 *   store behind a private CA Node was told to trust is fetched natively too.
 */
import { CairnError } from '../errors.js';
import type { SignedGet } from '../store/s3get.js';
import type { ByteRange, ObjectStore } from '../store/types.js';
import { loadAddon, tuneMalloc } from '../util/addon.js';
import type { ChunkCache } from './cache.js';
import { plainS3, WorkerLost, type RunCallbacks, type RunPool } from './fetchpool.js';
import { isChunkHash, verifyChunk } from './hash.js';
import type { ChunkRef } from './types.js';

/** The addon's fetch exports (native/nfetch.c). */
interface NfetchAddon {
  nfetchStart?(onEvent: (id: number, kind: number, i: number, detail: number | string | undefined) => void): boolean;
  nfetchRun?(
    url: string,
    headers: string[],
    length: number,
    names: Buffer,
    offsets: Float64Array,
    cacheDir: string | null,
    stream: boolean,
    allow200: boolean,
    connectMs: number,
    idleMs: number,
    caFile: string | null,
  ): [number, ArrayBuffer];
}

/** A store that signs GETs for another client (S3Store on the lean path). */
interface Signer {
  readonly url: string;
  signedGet(key: string, range: ByteRange): Promise<SignedGet> | undefined;
}

const CHUNK = 0;
const BAD = 1;
const CACHED = 2;
/** Failures in a row, with no success ever, after which a pool stops taking runs. */
export const FAILS_TO_STOP = 3;

interface Job {
  pool: NativeFetchPool;
  key: string;
  refs: readonly ChunkRef[];
  offsets: Float64Array;
  body: ArrayBuffer;
  cb: RunCallbacks;
  next: number;
  resolve(): void;
  reject(e: WorkerLost): void;
}

const jobs = new Map<number, Job>();
let addon: NfetchAddon | undefined | null;

/** The addon's fetch threads, started once per process; null when there are none. */
function started(): NfetchAddon | null {
  if (addon !== undefined) return addon;
  const a = loadAddon() as NfetchAddon | undefined;
  addon = a?.nfetchStart && a.nfetchRun && a.nfetchStart(onEvent) ? a : null;
  if (addon) tuneMalloc(); // every byte fetched lands in a fresh body: keep freed ones (util/addon.ts)
  return addon;
}

function onEvent(id: number, kind: number, i: number, detail: number | string | undefined): void {
  const job = jobs.get(id);
  if (!job) return;
  const at = job.offsets[i];
  const len = job.offsets[i + 1] - at;
  if (kind === CHUNK) {
    job.next = Math.max(job.next, i + 1);
    job.cb.chunk(i, Buffer.from(job.body, at, len));
  } else if (kind === BAD) {
    job.next = Math.max(job.next, i + 1);
    job.cb.bad(i, corrupt(job, i, Buffer.from(job.body, at, len)));
  } else if (kind === CACHED) {
    if (detail === 1) void job.pool.cache?.written(len, true);
    job.cb.cached(i);
  } else {
    jobs.delete(id);
    job.pool.ended(detail === undefined ? undefined : String(detail));
    if (detail === undefined) job.resolve();
    else job.reject(new WorkerLost(job.next));
  }
}

/** The CORRUPT error of a chunk the addon found damaged, as the chunk layer words it. */
function corrupt(job: Job, i: number, bytes: Buffer): Error {
  const ref = job.refs[i];
  const context = { key: job.key, pack: ref.pack, offset: ref.offset, store: job.pool.store.url };
  try {
    verifyChunk(bytes, ref.hash, ref.length, context);
  } catch (err) {
    return err as Error;
  }
  return new CairnError('CORRUPT', `chunk ${ref.hash} does not match its hash (native BLAKE3)`, { ...context, hash: ref.hash });
}

/** Figures of the native fetches of this process (for `cairn status`, the bench and tests). */
export const nativeFetchStats = { runs: 0, bytes: 0, failures: 0, lastError: undefined as string | undefined };

/**
 * The addon's fetch threads for runs of `store`'s packs.
 *
 * @example const pool = NativeFetchPool.for(store, cache); if (pool?.ready()) await pool.run(key, refs, true, cb);
 */
export class NativeFetchPool implements RunPool {
  jobs = 0;
  private ok = 0;
  private failsInRow = 0;

  private constructor(
    readonly store: Signer,
    readonly cache: ChunkCache | null,
    private readonly addon: NfetchAddon,
  ) {}

  /** A pool for `store` when native fetches apply (a plain S3 store on the lean path, the addon has them, not turned off); else null. */
  static for(store: ObjectStore, cache: ChunkCache | null): NativeFetchPool | null {
    if (process.env.CAIRN_NATIVE_FETCH === '0' || !plainS3(store)) return null;
    const signer = store as unknown as Signer & { readPath?: string };
    if (signer.readPath !== 'lean' || typeof signer.signedGet !== 'function') return null;
    const a = started();
    return a ? new NativeFetchPool(signer, cache, a) : null;
  }

  ready(): boolean {
    return this.ok > 0 || this.failsInRow < FAILS_TO_STOP;
  }

  /** Called by the event handler when a run of this pool ended (`error`: why its GET failed). */
  ended(error: string | undefined): void {
    if (error === undefined) {
      this.ok++;
      this.failsInRow = 0;
      return;
    }
    this.failsInRow++;
    nativeFetchStats.failures++;
    nativeFetchStats.lastError = error;
  }

  /**
   * Bytes `range` of `key`, one range GET on a fetch thread, unchecked (the caller checks them:
   * partial-chunk blocks against their CVs); rejects with WorkerLost when the GET failed or could
   * not be made here (the caller then asks the store, whose error says why).
   */
  async get(key: string, range: ByteRange): Promise<Buffer> {
    let body: ArrayBuffer | undefined;
    await this.start(key, range, [], Float64Array.of(0), false, (b) => (body = b), {
      chunk: () => undefined,
      bad: () => undefined,
      cached: () => undefined,
    });
    return Buffer.from(body!, 0, range.length);
  }

  /**
   * One range GET of `refs` (adjacent chunks of one pack, in pack order) on a fetch thread:
   * resolves after the last event (every chunk handed over and cached); rejects with WorkerLost
   * (`next`: the chunks before it were handed over or found bad) when the GET failed or could
   * not be made here.
   */
  async run(key: string, refs: readonly ChunkRef[], stream: boolean, cb: RunCallbacks): Promise<void> {
    const first = refs[0];
    const last = refs[refs.length - 1];
    const length = last.offset + last.length - first.offset;
    const offsets = new Float64Array(refs.length + 1);
    for (let i = 0; i < refs.length; i++) {
      offsets[i] = refs[i].offset - first.offset;
      if (!isChunkHash(refs[i].hash) || !(refs[i].length > 0) || (i > 0 && offsets[i] !== offsets[i - 1] + refs[i - 1].length)) {
        throw new WorkerLost(0); // not a run the addon can check: the caller fetches it
      }
    }
    offsets[refs.length] = length;
    return this.start(key, { offset: first.offset, length }, refs, offsets, stream, () => undefined, cb);
  }

  /** Signs and queues the GET of `range` for the chunks `refs` at `offsets` of its body (handed to `got`). */
  private async start(
    key: string,
    range: ByteRange,
    refs: readonly ChunkRef[],
    offsets: Float64Array,
    stream: boolean,
    got: (body: ArrayBuffer) => void,
    cb: RunCallbacks,
  ): Promise<void> {
    // A store that cannot sign (closed, say) rejects as WorkerLost too: the store's own GET then says why.
    let signed: SignedGet | undefined;
    try {
      signed = await this.store.signedGet(key, range);
    } catch {
      signed = undefined;
    }
    if (!signed) throw new WorkerLost(0);
    const names = Buffer.from(refs.map((r) => r.hash).join(''), 'hex');
    let id: number;
    let body: ArrayBuffer;
    try {
      [id, body] = this.addon.nfetchRun!(
        signed.url,
        signed.headers,
        range.length,
        names,
        offsets,
        refs.length ? (this.cache?.dir ?? null) : null,
        stream,
        range.offset === 0,
        signed.connectMs,
        signed.idleMs,
        // Node trusts these CAs besides its own; curl then trusts them besides the system's.
        process.env.NODE_EXTRA_CA_CERTS || null,
      );
    } catch {
      throw new WorkerLost(0);
    }
    got(body);
    this.jobs++;
    nativeFetchStats.runs++;
    nativeFetchStats.bytes += range.length;
    return new Promise<void>((resolve, reject) => {
      jobs.set(id, { pool: this, key, refs, offsets, body, cb, next: 0, resolve, reject });
    });
  }
}
