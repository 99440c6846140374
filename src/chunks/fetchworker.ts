/**
 * The worker side of ./fetchpool.ts: a worker thread that receives range GETs of chunk runs,
 * verifies each chunk, hands it to the main thread and writes it to the host cache.
 *
 * Started by FetchPool with `workerData = { role, storeUrl, cacheDir, cacheBytes }`; opens its own
 * store (`openStore(storeUrl)`: its own S3 client and connections) and, with a cache directory,
 * its own `ChunkCache` over the host cache (entries are named by content: any number of writers
 * may share it, as processes do).
 *
 * Invariants, per job (a run of adjacent chunks of one pack, in pack order):
 * - each chunk is verified (BLAKE3 and length) as soon as its bytes of the body have arrived; one
 *   that fails is posted at once as `bad` with the CORRUPT error;
 * - a chunk is written to the host cache only after it was verified, and `cached` follows its
 *   cache write (done or failed: the cache is an optimisation);
 * - at the end, after the job's cache writes, the whole body goes to the main thread in one
 *   transferred buffer (`body`, no copy: measured, a copy per chunk cost ~1 CPU s per GiB more)
 *   with the list of chunks verified in exactly those bytes (a chunk verified in an earlier,
 *   retried attempt's buffer is verified again);
 * - `end` is the job's last message; with `error` (the store's error, serialised) when the GET
 *   failed: then no body is posted and `next` is 0.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { CairnError, isCairnError } from '../errors.js';
import { openStore } from '../store/open.js';
import type { ObjectStore } from '../store/types.js';
import { ChunkCache } from './cache.js';
import { verifyChunk } from './hash.js';

export const FETCH_WORKER_ROLE = 'cairn-fetch-worker';

/** What FetchPool passes to each worker. */
export interface FetchWorkerData {
  role: typeof FETCH_WORKER_ROLE;
  storeUrl: string;
  cacheDir?: string;
  cacheBytes?: number;
}

/** One range GET of a run of adjacent chunks of one pack (offsets in the pack). */
export interface RunJob {
  id: number;
  key: string;
  /** The pack id (for error context). */
  pack: string;
  offset: number;
  length: number;
  chunks: { hash: string; offset: number; length: number }[];
  /** Hand chunks over as their bytes arrive (else after the whole body). */
  stream: boolean;
}

/** An error as it crosses the thread boundary. */
export interface WireError {
  code?: string;
  message: string;
  context?: Record<string, unknown>;
}

/** Messages from a worker. `ready` once its store is open (`error` if it could not be opened). */
export type FetchWorkerMessage =
  | { t: 'ready'; error?: WireError }
  | { t: 'body'; id: number; bytes: ArrayBuffer; at: number; good: number[] }
  | { t: 'bad'; id: number; i: number; error: WireError }
  | { t: 'cached'; id: number; i: number }
  | { t: 'end'; id: number; next: number; error?: WireError };

/** A CairnError (code, message, context) or any error (message) as plain data. */
export function toWire(err: unknown): WireError {
  if (isCairnError(err)) return { code: err.code, message: err.message, context: { ...err.context } };
  return { message: err instanceof Error ? err.message : String(err) };
}

/** The error a WireError describes: a CairnError with its code, else UNAVAILABLE (retryable). */
export function fromWire(w: WireError): CairnError {
  const code = (w.code ?? 'UNAVAILABLE') as ConstructorParameters<typeof CairnError>[0];
  return new CairnError(code, w.message, (w.context ?? {}) as ConstructorParameters<typeof CairnError>[2]);
}

async function runJob(store: ObjectStore, cache: ChunkCache | null, job: RunJob, post: (m: FetchWorkerMessage, t?: ArrayBuffer[]) => void) {
  const writes: Promise<void>[] = [];
  /** The buffer each good chunk was verified in (a retried GET starts a new one). */
  const verifiedIn = new Map<number, Buffer>();
  let next = 0;
  const handOver = (body: Buffer, received: number): void => {
    while (next < job.chunks.length && job.chunks[next].offset + job.chunks[next].length - job.offset <= received) {
      const i = next++;
      const c = job.chunks[i];
      const start = c.offset - job.offset;
      const view = body.subarray(start, Math.min(body.length, start + c.length));
      try {
        verifyChunk(view, c.hash, c.length, { key: job.key, pack: job.pack, offset: c.offset, store: store.url });
      } catch (err) {
        post({ t: 'bad', id: job.id, i, error: toWire(err) });
        continue;
      }
      verifiedIn.set(i, body);
      if (cache) {
        writes.push(
          cache
            .put(c.hash, view, { evictLater: true }) // the body waits for the write, not for a scan
            .catch(() => {})
            .then(() => post({ t: 'cached', id: job.id, i })),
        );
      }
    }
  };
  let error: WireError | undefined;
  let body: Buffer | undefined;
  try {
    body = await store.get(job.key, { offset: job.offset, length: job.length }, job.stream ? { onProgress: handOver } : undefined);
    if (body.length > job.length) body = body.subarray(0, job.length);
    handOver(body, Infinity);
  } catch (err) {
    error = toWire(err);
  }
  await Promise.all(writes);
  // Nothing good was handed over before the body: a failed GET fails the chunks not found bad.
  if (error) next = 0;
  if (body && !error && verifiedIn.size > 0) {
    const good: number[] = [];
    for (const [i, b] of verifiedIn) {
      const c = job.chunks[i];
      const start = c.offset - job.offset;
      // Verified in an earlier attempt's buffer (a retried GET): verify these bytes too.
      const err = b === body ? undefined : check(body, start, c, job, store);
      if (err) post({ t: 'bad', id: job.id, i, error: toWire(err) });
      else good.push(i);
    }
    const whole = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength ? body : Buffer.from(body);
    post({ t: 'body', id: job.id, bytes: whole.buffer as ArrayBuffer, at: job.offset, good }, [whole.buffer as ArrayBuffer]);
  }
  post({ t: 'end', id: job.id, next, ...(error ? { error } : {}) });
}

/** The CORRUPT error of chunk `c` at `start` in `body`, or undefined when it verifies. */
function check(body: Buffer, start: number, c: RunJob['chunks'][number], job: RunJob, store: ObjectStore): unknown {
  try {
    verifyChunk(body.subarray(start, start + c.length), c.hash, c.length, {
      key: job.key,
      pack: job.pack,
      offset: c.offset,
      store: store.url,
    });
    return undefined;
  } catch (err) {
    return err;
  }
}

if (!isMainThread && (workerData as { role?: string } | null)?.role === FETCH_WORKER_ROLE) {
  const data = workerData as FetchWorkerData;
  const port = parentPort!;
  const post = (m: FetchWorkerMessage, t?: ArrayBuffer[]): void => port.postMessage(m, t);
  const cache = data.cacheDir && data.cacheBytes ? new ChunkCache({ dir: data.cacheDir, maxBytes: data.cacheBytes }) : null;
  openStore(data.storeUrl).then(
    (store) => {
      port.on('message', (job: RunJob) => void runJob(store, cache, job, post));
      post({ t: 'ready' });
    },
    (err: unknown) => post({ t: 'ready', error: toWire(err) }),
  );
}
