/**
 * Chunk naming: every chunk is named by the BLAKE3 hash of its bytes (32 bytes, lowercase hex).
 *
 * Invariants: `hashChunk` is a pure function of the bytes; a name is always 64 lowercase hex
 * characters (`isChunkHash`); `verifyChunk` is the one place the read path checks bytes against
 * their name, and it throws CORRUPT rather than ever returning bytes that do not match.
 *
 * Implementation: the native `@napi-rs/blake-hash` (Rust `blake3` crate, SIMD, prebuilt N-API
 * binary inside the registry package; ~1.8-3.2 GiB/s per thread here) via `blake3-native.ts`, checked
 * against test vectors at load. If it is missing or fails, or `$CAIRN_BLAKE3=wasm`, the
 * WebAssembly build of the `blake3` package is used instead (~350-550 MiB/s; its own native path
 * needs a download from GitHub and only exists for Node <= 17). Same digests either way;
 * `hashImplementation()` says which one is active.
 *
 * `hashChunkAsync` / `verifyChunkAsync` can hash big chunks on a small pool of worker threads
 * (this same module, started with a marker in workerData), to keep the event loop free (the FUSE
 * daemon serves the kernel from it). `$CAIRN_HASH_THREADS` sizes the pool (0 = hash inline).
 * Default: inline with the native hash (copying a chunk to a worker costs the main thread as much
 * as hashing it: measured in docs/CHUNKS.md); the number of CPUs, at most 4, with the WASM one.
 * Workers are unref'd while idle, so they never keep a process alive, and ref'd while they owe a
 * result, so none is lost.
 */
import os from 'node:os';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { CairnError, type ErrorContext } from '../errors.js';
import { loadNativeBlake3, type Blake3Fn } from './blake3-native.js';
import { blockCv, chunkOutboard } from './outboard.js';
import { loadAddon } from '../util/addon.js';
import { workerExecArgv } from '../util/worker.js';

/** Length of a chunk name in hex characters. */
export const HASH_HEX_LENGTH = 64;
/** Length of a chunk hash in bytes. */
export const HASH_BYTES = 32;

const HEX_RE = /^[0-9a-f]{64}$/;

/** Which BLAKE3 this process hashes with: the native addon, or the WebAssembly fallback. */
export type HashImplementation = 'native' | 'wasm';

function loadWasmBlake3(): Blake3Fn {
  const { hash } = createRequire(import.meta.url)('blake3') as { hash(data: Uint8Array): Buffer };
  return (data) => hash(data);
}

function selectImplementation(): [HashImplementation, Blake3Fn] {
  if (process.env.CAIRN_BLAKE3 !== 'wasm') {
    const native = loadNativeBlake3();
    if (native) return ['native', native];
  }
  return ['wasm', loadWasmBlake3()];
}

const [implementation, blake3] = selectImplementation();

/**
 * The BLAKE3 in use: 'native' (`@napi-rs/blake-hash`, SIMD, ~1.8-3.2 GiB/s here) unless it failed
 * to load or `$CAIRN_BLAKE3=wasm` forces the WebAssembly `blake3` package (~350-550 MiB/s).
 * Both give identical digests; the choice is made once, when this module loads.
 */
export function hashImplementation(): HashImplementation {
  return implementation;
}

/**
 * BLAKE3 of `data`, as 64 lowercase hex characters.
 *
 * @example hashChunk(new Uint8Array(0)) === 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262'
 */
export function hashChunk(data: Uint8Array): string {
  return blake3(data).toString('hex');
}

/** BLAKE3 of `data` as 32 raw bytes (used by the binary pack index). */
export function hashChunkBytes(data: Uint8Array): Buffer {
  return blake3(data);
}

/** Whether `s` is a well-formed chunk name (64 lowercase hex characters). */
export function isChunkHash(s: unknown): s is string {
  return typeof s === 'string' && HEX_RE.test(s);
}

function checkLength(data: Uint8Array, expected: string, expectedLength: number | undefined, context: ErrorContext): void {
  if (expectedLength !== undefined && data.length !== expectedLength) {
    throw new CairnError('CORRUPT', `chunk ${expected} has ${data.length} bytes, expected ${expectedLength}`, {
      ...context,
      hash: expected,
      hint: 'the stored object is truncated or damaged; restore it from a replica or re-upload the file',
    });
  }
}

function checkHash(actual: string, expected: string, context: ErrorContext): void {
  if (actual !== expected) {
    throw new CairnError('CORRUPT', `chunk ${expected} does not match its hash (got ${actual})`, {
      ...context,
      hash: expected,
      actual,
      hint: 'the stored object is damaged; restore it from a replica or re-upload the file',
    });
  }
}

/**
 * Throws CairnError('CORRUPT') unless `data` hashes to `expected` (and, when given, has
 * `expectedLength` bytes). Returns `data` for chaining.
 *
 * @example const bytes = verifyChunk(await store.get(key, range), ref.hash, ref.length, { key });
 */
export function verifyChunk<T extends Uint8Array>(data: T, expected: string, expectedLength?: number, context: ErrorContext = {}): T {
  checkLength(data, expected, expectedLength, context);
  checkHash(hashChunk(data), expected, context);
  return data;
}

/** Like `verifyChunk`, hashing on the worker pool (see `hashChunkAsync`). */
export async function verifyChunkAsync<T extends Uint8Array>(
  data: T,
  expected: string,
  expectedLength?: number,
  context: ErrorContext = {},
): Promise<T> {
  checkLength(data, expected, expectedLength, context);
  checkHash(await hashChunkAsync(data), expected, context);
  return data;
}

// ---- worker pool ----------------------------------------------------------------------------

const WORKER_ROLE = 'cairn-blake3-worker';
/** Chunks smaller than this are hashed inline: a round trip to a worker costs more. */
export const ASYNC_HASH_MIN_BYTES = 128 * 1024;

interface Job {
  /** Computes the result inline (when the worker fails). */
  inline(): unknown;
  resolve(result: unknown): void;
  slot: Slot;
}

interface Slot {
  worker: Worker;
  pending: number;
}

/** A few worker threads running BLAKE3; jobs go to the least busy one. */
class HashPool {
  private readonly slots: Slot[] = [];
  private readonly jobs = new Map<number, Job>();
  private nextId = 0;
  private broken = false;
  /** Jobs hashed by workers so far. */
  done = 0;

  get threads(): number {
    return this.slots.length;
  }

  constructor(readonly size: number) {}

  /** Hashes a copy of `data` on a worker; if the worker dies, hashes `data` inline instead. */
  hash(data: Uint8Array): Promise<string> {
    return this.run(data, undefined, () => hashChunk(data)) as Promise<string>;
  }

  /** The outboard of a copy of `data` (./outboard.ts) on a worker; inline if the worker dies. */
  outboard(data: Uint8Array, blockBytes: number): Promise<Uint8Array> {
    return this.run(data, blockBytes, () => chunkOutboard(data, blockBytes)) as Promise<Uint8Array>;
  }

  private run(data: Uint8Array, blockBytes: number | undefined, inline: () => unknown): Promise<unknown> {
    const slot = this.broken ? undefined : this.pick();
    if (!slot) return Promise.resolve(inline());
    const id = this.nextId++;
    const copy = new Uint8Array(data); // only the view's bytes, never a whole backing slab
    return new Promise<unknown>((resolve) => {
      this.jobs.set(id, { inline, resolve, slot });
      if (slot.pending++ === 0) slot.worker.ref();
      slot.worker.postMessage({ id, data: copy, blockBytes }, [copy.buffer]);
    });
  }

  private pick(): Slot | undefined {
    let best = this.slots[0];
    for (const s of this.slots) if (s.pending < best.pending) best = s;
    if ((!best || best.pending > 0) && this.slots.length < this.size) {
      try {
        return this.spawn();
      } catch {
        this.broken = true; // no workers here: hash inline from now on
        return undefined;
      }
    }
    return best;
  }

  private spawn(): Slot {
    const worker = new Worker(new URL(import.meta.url), { workerData: { role: WORKER_ROLE }, execArgv: workerExecArgv() });
    worker.unref();
    const slot: Slot = { worker, pending: 0 };
    worker.on('message', (m: { id: number; result?: unknown; error?: string }) => {
      const job = this.jobs.get(m.id);
      if (!job) return;
      this.jobs.delete(m.id);
      if (--slot.pending === 0) worker.unref();
      if (m.result !== undefined) this.done++;
      job.resolve(m.result ?? job.inline());
    });
    // A worker that fails (or cannot start) is dropped; its jobs are hashed inline. One that never
    // answered anything marks the pool broken: this process hashes inline from then on.
    let answered = false;
    worker.once('message', () => (answered = true));
    const fail = (): void => {
      const i = this.slots.indexOf(slot);
      if (i < 0) return;
      this.slots.splice(i, 1);
      if (!answered) this.broken = true;
      for (const [id, job] of this.jobs) {
        if (job.slot !== slot) continue;
        this.jobs.delete(id);
        job.resolve(job.inline());
      }
    };
    worker.on('error', fail);
    worker.on('exit', fail);
    this.slots.push(slot);
    return slot;
  }
}

let pool: HashPool | undefined;

/** Worker threads started and jobs they hashed, in this process (for tests and benchmarks). */
export function hashPoolStats(): { threads: number; jobs: number } {
  return { threads: pool?.threads ?? 0, jobs: pool?.done ?? 0 };
}

/**
 * Pool size: `$CAIRN_HASH_THREADS` when set; else 0 (inline) with the native BLAKE3, which hashes
 * faster than the pool can copy a chunk to a worker (docs/CHUNKS.md, "Inline or pool"); else the
 * number of CPUs, at most 4.
 */
function hashThreads(): number {
  const v = Number(process.env.CAIRN_HASH_THREADS);
  if (process.env.CAIRN_HASH_THREADS !== undefined && Number.isInteger(v) && v >= 0) return v;
  if (implementation === 'native') return 0;
  return Math.min(4, typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length);
}

/**
 * BLAKE3 of `data` (hex), computed on a worker thread when the chunk is big enough to be worth
 * it and a pool is configured (by default only with the WebAssembly fallback: the native hash
 * runs inline, ~0.3-0.5 ms per MiB, ~1.3-2.5 ms for a 4 MiB chunk); same result as `hashChunk`.
 * Do not modify `data` until the promise settles. Never rejects: if workers fail, it hashes
 * inline.
 *
 * @example const hashes = await Promise.all(chunks.map((c) => hashChunkAsync(c)));
 */
export function hashChunkAsync(data: Uint8Array): Promise<string> {
  if (data.length < ASYNC_HASH_MIN_BYTES || !isMainThread) return Promise.resolve(hashChunk(data));
  pool ??= new HashPool(hashThreads());
  if (pool.size === 0) return Promise.resolve(hashChunk(data));
  return pool.hash(data);
}

let outboardPool: HashPool | undefined;
/** Chunks up to this size get their outboard inline (~1-1.5 ms in JavaScript here). */
const OUTBOARD_INLINE_BYTES = 192 * 1024;

/**
 * Pool size for outboards without the addon: `$CAIRN_OUTBOARD_THREADS` when set (0 = inline); else
 * the number of CPUs, at most 4. Block CVs are then hashed in JavaScript (./outboard.ts, ~150-250
 * MiB/s, 15× slower than the addon's 0.14 ms per MiB), so a commit computes them beside its main thread.
 */
function outboardThreads(): number {
  const v = Number(process.env.CAIRN_OUTBOARD_THREADS);
  if (process.env.CAIRN_OUTBOARD_THREADS !== undefined && Number.isInteger(v) && v >= 0) return v;
  return Math.min(4, typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length);
}

/** The addon's BLAKE3 tree (native/ntree.c, exported by native/ncache.c); each null when it lacks it. */
interface TreeAddon {
  ntreeOutboard: ((data: Buffer, blockBytes: number) => Buffer | null) | null;
  ntreeBlockCv: ((data: Buffer, index: number, blockBytes: number) => Buffer | null) | null;
}
let tree: TreeAddon | null | undefined;

/** The addon's tree functions, on the main thread only (the addon is loaded once per process). */
function treeAddon(): TreeAddon | null {
  if (!isMainThread) return null;
  if (tree === undefined) {
    const a = loadAddon() as Partial<TreeAddon> | undefined;
    const fn = <K extends keyof TreeAddon>(k: K): TreeAddon[K] => (typeof a?.[k] === 'function' ? (a[k] as TreeAddon[K]) : null);
    tree = a ? { ntreeOutboard: fn('ntreeOutboard'), ntreeBlockCv: fn('ntreeBlockCv') } : null;
  }
  return tree;
}

const asBuffer = (d: Uint8Array): Buffer => (Buffer.isBuffer(d) ? d : Buffer.from(d.buffer, d.byteOffset, d.byteLength));

/**
 * The outboard from the project's addon (native/ntree.c: the C BLAKE3's tree, 15× the JavaScript
 * one and one pass), or undefined without it (not built, its BLAKE3 failed its self-test) or off
 * the main thread. Same bytes as `chunkOutboard`.
 */
function nativeOutboard(data: Uint8Array, blockBytes: number): Uint8Array | undefined {
  return treeAddon()?.ntreeOutboard?.(asBuffer(data), blockBytes) ?? undefined;
}

/**
 * The CV of block `index` of a chunk (`bytes`: exactly that block's bytes), as ./outboard.ts
 * `blockCv` computes it: from the addon when it is there (the C BLAKE3, ~15× faster), else in
 * JavaScript.
 *
 * @example const ok = Buffer.from(blockCvOf(bytes, 3, 32768)).equals(cvs.subarray(96, 128));
 */
export function blockCvOf(bytes: Uint8Array, index: number, blockBytes: number): Uint8Array {
  return treeAddon()?.ntreeBlockCv?.(asBuffer(bytes), index, blockBytes) ?? blockCv(bytes, index, blockBytes);
}

/**
 * The outboard of a chunk (./outboard.ts `chunkOutboard`): from the addon when it is there, else
 * computed on a worker thread (see
 * `outboardThreads`); same result as inline. Never rejects.
 *
 * @example builder.add(hash, chunk, outboardAsync(chunk, 65536));
 */
export function outboardAsync(data: Uint8Array, blockBytes: number): Promise<Uint8Array> {
  const native = nativeOutboard(data, blockBytes);
  if (native) return Promise.resolve(native);
  // Small chunks (small files: a commit of one is latency-bound) inline: ~1 ms, less than a worker's start.
  if (!isMainThread || data.length <= Math.max(blockBytes, OUTBOARD_INLINE_BYTES)) return Promise.resolve(chunkOutboard(data, blockBytes));
  outboardPool ??= new HashPool(outboardThreads());
  if (outboardPool.size === 0) return Promise.resolve(chunkOutboard(data, blockBytes));
  return outboardPool.outboard(data, blockBytes);
}

// When this module is a pool worker, serve hash jobs.
if (!isMainThread && (workerData as { role?: string } | null)?.role === WORKER_ROLE) {
  parentPort!.on('message', (m: { id: number; data: Uint8Array; blockBytes?: number }) => {
    try {
      if (m.blockBytes === undefined) parentPort!.postMessage({ id: m.id, result: hashChunk(m.data) });
      else {
        const ob = chunkOutboard(m.data, m.blockBytes);
        parentPort!.postMessage({ id: m.id, result: ob }, [ob.buffer as ArrayBuffer]);
      }
    } catch (err) {
      parentPort!.postMessage({ id: m.id, error: err instanceof Error ? err.message : String(err) });
    }
  });
}
