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
 * - a chunk is posted to the main thread (`chunk`, its bytes in a fresh transferred ArrayBuffer)
 *   only after BLAKE3 and length verified it; a chunk that fails is posted as `bad` with the
 *   CORRUPT error; chunks are posted in order, each as soon as its bytes of the body have arrived;
 * - a chunk is written to the host cache only after it was verified, and `cached` follows its
 *   cache write (done or failed: the cache is an optimisation);
 * - `end` is the job's last message, after every cache write of the job; with `error` (the
 *   store's error, serialised) when the GET failed: the chunks from `next` on were not posted.
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
  | { t: 'chunk'; id: number; i: number; bytes: ArrayBuffer }
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
      const copy = new Uint8Array(c.length);
      copy.set(view);
      post({ t: 'chunk', id: job.id, i, bytes: copy.buffer }, [copy.buffer]);
      if (cache) {
        writes.push(
          cache
            .put(c.hash, view)
            .catch(() => {})
            .then(() => post({ t: 'cached', id: job.id, i })),
        );
      }
    }
  };
  let error: WireError | undefined;
  try {
    let body = await store.get(job.key, { offset: job.offset, length: job.length }, job.stream ? { onProgress: handOver } : undefined);
    if (body.length > job.length) body = body.subarray(0, job.length);
    handOver(body, Infinity);
  } catch (err) {
    error = toWire(err);
  }
  await Promise.all(writes);
  post({ t: 'end', id: job.id, next, ...(error ? { error } : {}) });
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
