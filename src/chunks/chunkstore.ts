/**
 * ChunkStore: reads file content given its ChunkRefs, and creates PackWriters for commits. A facade
 * over three parts, one concept each:
 * - `memlru.ts`: the in-process memory LRU of verified chunks (byte-bounded);
 * - `fetch.ts`: the read path of one chunk — memory LRU -> host chunk cache (verified) -> fetch
 *   lease (./lease.ts) -> store range GET — single flight, coalesced range GETs, BLAKE3 checks;
 * - `prefetch.ts`: sequential read-ahead and pack neighbours.
 * Invariants: every byte returned was verified against its chunk's BLAKE3 (a mismatch is
 * CairnError('CORRUPT'), never data); hints (`readahead`, `neighbours`) never fail a read; store
 * errors propagate unchanged and a failed fetch is retried by the next read.
 * A random reader (its cursor saw a seek) reads only the blocks of a cold chunk it needs, verified
 * against the chunk's BLAKE3 tree (`partial.ts`, `outboard.ts`: pack format v2), when the chunk is
 * neither held nor being fetched whole and its pack has an outboard; every other read fetches and
 * verifies whole chunks.
 * Buffers from `readChunk` and `stream` may be shared with the memory LRU: do not modify them.
 */
import { CairnError, isCairnError } from '../errors.js';
import type { ObjectStore } from '../store/types.js';
import { ChunkCache, type ChunkCacheStats } from './cache.js';
import type { ChunkerParams } from './chunker.js';
import { ChunkFetcher, envRangeBytes, MERGE_BYTES, type ChunkFetcherOptions, type LeaseStats } from './fetch.js';
import { LeaseDir, type LeaseOptions } from './lease.js';
import { ChunkLru } from './memlru.js';
import { PackWriter } from './pack.js';
import { PartialReader, type PartialStats } from './partial.js';
import { BATCH_WINDOW, INITIAL_WINDOW_CHUNKS, MAX_WINDOW_CHUNKS, Prefetcher, ReadCursor, splitRuns } from './prefetch.js';
import type { ChunkRef, KnownChunks } from './types.js';

export type { LeaseStats } from './fetch.js';
export { ReadCursor } from './prefetch.js';

/** What a read may start fetching besides its own chunks (see `ChunkStore.read`). */
export interface ReadHints {
  /** Keep this many chunks after the range in flight (sequential readers). */
  readahead?: number;
  /**
   * The reader's own read state (one per open file handle): sequential detection and an adaptive
   * read-ahead window (see ReadCursor). Used instead of `readahead` when given.
   */
  cursor?: ReadCursor;
  /** Fetch the pack blocks around the range's chunks (small files). */
  neighbours?: boolean;
}

/** `streamRuns`, `fetchThreads` and `nativeFetch` are the fetcher's (./fetch.ts). */
export interface ChunkStoreOptions extends Pick<ChunkFetcherOptions, 'streamRuns' | 'fetchThreads' | 'nativeFetch'> {
  store: ObjectStore;
  /** Prefix of pack keys, e.g. `volumes/<id>/packs/`; a pack's key is prefix + pack id. */
  packPrefix: string;
  /** Disk cache: default `ChunkCache.shared()`; null = none. */
  cache?: ChunkCache | null;
  /** Chunks fetched ahead by `stream` (default 8). */
  concurrency?: number;
  /** Bytes of recently read chunks kept in memory (default 64 MiB; 0 = none). */
  memoryBytes?: number;
  /** Chunker parameters for writers (default DEFAULT_CHUNKER). */
  chunker?: ChunkerParams;
  /**
   * Cross-process fetch leases in the cache directory, so that a cold chunk is fetched once per
   * host (default on when there is a cache; `false` = off). `waitMs` bounds the wait for another
   * process's fetch (default 10 s), `staleMs` when an unrefreshed lease is abandoned (10 s).
   */
  leases?: LeaseOptions | false;
  /** Longest run of adjacent chunks fetched with one range GET (default 8 MiB, or `$CAIRN_RANGE_MIB`; longer runs: several GETs in parallel). */
  rangeBytes?: number;
  /**
   * Random readers (a `cursor` that saw a seek) fetch only the verified blocks of a cold chunk they
   * need (default true; false = always whole chunks). `partialMemoryBytes` bounds the blocks kept
   * in memory (default 16 MiB).
   */
  partialReads?: boolean;
  partialMemoryBytes?: number;
  /**
   * `readChunk` batches the cold chunks asked for in one tick into merged range GETs, and reads
   * ahead in pack order while a reader asks for chunks in order (default true, unless
   * `$CAIRN_PACK_READAHEAD=0`).
   */
  packReadahead?: boolean;
  /** Block size of the outboards this store's writers write (default `packBlockBytes()`, `$CAIRN_PACK_OUTBOARDS`: 0, none, unless asked; DEFAULT_BLOCK_BYTES when on). */
  blockBytes?: number;
}

function checkRange(offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new CairnError('INVALID_ARGUMENT', `invalid byte range offset=${offset} length=${length}`, {
      hint: 'offset and length are non-negative integers',
    });
  }
}

export class ChunkStore {
  readonly store: ObjectStore;
  readonly packPrefix: string;
  private readonly cache: ChunkCache | null;
  private readonly concurrency: number;
  private readonly chunker?: ChunkerParams;
  private readonly mem: ChunkLru | null;
  private readonly fetcher: ChunkFetcher;
  private readonly prefetcher: Prefetcher;
  private readonly partial: PartialReader | null;
  private readonly blockBytes?: number;
  private readonly rangeBytes: number;
  /**
   * Largest read-ahead window of this store's cursors, in chunks: MAX_WINDOW_CHUNKS, or fewer so
   * that the window fits in half the memory LRU (read ahead of a bigger window is evicted before
   * it is read: measured, a 64-chunk window over a 64 MiB LRU read at a quarter of the speed).
   */
  private readonly maxWindow: number;
  private readonly starts = new WeakMap<readonly ChunkRef[], Float64Array>();
  /** `readChunk`: same-tick batching and pack-order read-ahead (`$CAIRN_PACK_READAHEAD=0` turns both off, for comparisons). */
  private readonly packReadahead: boolean;

  /** Range GETs issued (for tests and stats). */
  get gets(): number {
    return this.fetcher.gets;
  }

  /** Directory of this store's host chunk cache (`<dir>/<hash[0:2]>/<hash>`, ./cache.ts), or undefined without one. */
  get cacheDir(): string | undefined {
    return this.cache?.dir;
  }

  /** What the cross-process fetch leases did. */
  get leaseStats(): LeaseStats {
    return this.fetcher.leaseStats;
  }

  /** What the partial-chunk reads did (zeros when they are off). */
  get partialStats(): PartialStats {
    return { ...(this.partial?.stats ?? { reads: 0, blocks: 0, bytes: 0, gets: 0, trailers: 0, badOutboards: 0, fallbacks: 0 }) };
  }

  /**
   * What this store's reads did: range GETs, memory the in-process LRU holds, fetch leases, and the host cache's hits and misses
   * in this process (`hitRate` is hits / lookups, or null before any lookup).
   *
   * @example const { cache: { hitRate } } = chunks.stats();
   */
  stats(): { storeGets: number; memoryBytes: number; leases: LeaseStats; cache: (ChunkCacheStats & { hitRate: number | null }) | null } {
    const c = this.cache?.stats();
    return {
      storeGets: this.gets,
      memoryBytes: this.mem?.heldBytes ?? 0,
      leases: { ...this.leaseStats },
      cache: c ? { ...c, hitRate: c.hits + c.misses > 0 ? c.hits / (c.hits + c.misses) : null } : null,
    };
  }

  constructor(opts: ChunkStoreOptions) {
    this.store = opts.store;
    this.packPrefix = opts.packPrefix;
    this.cache = opts.cache === undefined ? ChunkCache.shared() : opts.cache;
    this.concurrency = Math.max(1, opts.concurrency ?? 8);
    const memoryBytes = opts.memoryBytes ?? 64 * 1024 * 1024;
    this.mem = memoryBytes > 0 ? new ChunkLru(memoryBytes) : null;
    this.maxWindow = Math.max(INITIAL_WINDOW_CHUNKS, Math.min(MAX_WINDOW_CHUNKS, Math.floor(memoryBytes / 2 / (1024 * 1024))));
    this.chunker = opts.chunker;
    this.rangeBytes = Math.max(1, opts.rangeBytes ?? envRangeBytes() ?? MERGE_BYTES);
    const leases = this.cache && opts.leases !== false ? new LeaseDir(this.cache.dir, opts.leases) : null;
    this.fetcher = new ChunkFetcher({
      store: this.store,
      packPrefix: this.packPrefix,
      cache: this.cache,
      mem: this.mem,
      leases,
      rangeBytes: this.rangeBytes,
      streamRuns: opts.streamRuns,
      fetchThreads: opts.fetchThreads,
      nativeFetch: opts.nativeFetch,
    });
    this.prefetcher = new Prefetcher(this.fetcher, this.store, this.packPrefix, this.rangeBytes);
    const partialBytes = opts.partialMemoryBytes ?? 16 * 1024 * 1024;
    this.partial =
      opts.partialReads !== false && partialBytes > 0
        ? new PartialReader(this.store, this.packPrefix, new ChunkLru(partialBytes), this.cache)
        : null;
    this.blockBytes = opts.blockBytes;
    this.packReadahead = opts.packReadahead ?? process.env.CAIRN_PACK_READAHEAD !== '0';
  }

  /**
   * Bytes `[offset, offset + length)` of the file whose content is `refs` (in file order);
   * shorter when the file ends first. A fresh buffer the caller owns. Without waiting for them,
   * `readahead: n` keeps the n chunks after the range fetching (for sequential readers), and
   * `neighbours: true` fetches the pack blocks around the range's chunks (for small files, whose
   * siblings were usually uploaded into the same pack).
   *
   * @example const head = await chunks.read(entry.chunks, 0, 4096);
   * @example const next = await chunks.read(entry.chunks, pos, 131072, { readahead: 16 }); // sequential
   * @example const small = await chunks.read(entry.chunks, 0, entry.size, { neighbours: true });
   */
  async read(refs: readonly ChunkRef[], offset: number, length: number, opts: ReadHints = {}): Promise<Buffer> {
    checkRange(offset, length);
    const starts = this.startsOf(refs);
    const end = Math.min(starts[refs.length], offset + length);
    if (offset >= end) return Buffer.alloc(0);
    const first = upperBound(starts, offset) - 1;
    const last = upperBound(starts, end - 1) - 1;
    const ahead = this.ahead(offset, end, first, last, opts);
    // A read that starts a fetch of its own (cold) starts its hints once its bytes are in, so its
    // GET does not share the store with read-ahead GETs: time to first byte is one GET's.
    const cold = refs.slice(first, last + 1).some((r) => this.fetcher.idle(r.hash));
    const random = opts.cursor !== undefined && ahead === 0 && this.partial !== null && cold;
    const wanted = Promise.all(
      random
        ? refs.slice(first, last + 1).map((r, k) => {
            const at = starts[first + k];
            return this.readPart(r, Math.max(0, offset - at), Math.min(r.length, end - at), at);
          })
        : this.fetcher.fetchEach(refs.slice(first, last + 1)).map((p, k) => p.then((bytes) => ({ bytes, at: starts[first + k] }))),
    );
    const startHints = this.startHints(refs, first, last, ahead, opts);
    // A read that waits for its own chunks (cold, or in flight: the native path loads a file's first
    // chunks at open) starts its read-ahead once they are in, so their GETs have the store to itself.
    if (cold || refs.slice(first, last + 1).some((r) => !this.fetcher.held(r.hash))) wanted.then(startHints, () => {});
    else startHints();
    const got = await wanted;
    const out = Buffer.allocUnsafe(end - offset);
    for (const p of got)
      p.bytes.copy(out, p.at - offset + Math.max(0, offset - p.at), Math.max(0, offset - p.at), Math.min(p.bytes.length, end - p.at));
    return out;
  }

  /**
   * Bytes [from, to) of one chunk for a random reader: from verified blocks when the chunk is cold
   * (neither held nor in flight, nor in the host cache), at most half of it is wanted, and its pack
   * has an outboard; else the whole chunk.
   */
  private async readPart(ref: ChunkRef, from: number, to: number, at: number): Promise<Piece> {
    const whole = async (): Promise<Piece> => ({ bytes: await this.fetcher.fetchEach([ref])[0], at });
    // More than half of a chunk costs about as much whole (one GET either way), and whole is hashed natively.
    if (to - from > ref.length / 2 || !this.fetcher.idle(ref.hash)) return whole();
    if (this.cache && (await this.cache.has(ref.hash))) return whole();
    let bytes: Buffer | undefined;
    try {
      bytes = await this.partial!.read(ref, from, to);
    } catch (err) {
      // A pack gone since its trailer was read (compaction moved the chunk): the whole-chunk path knows where it went.
      if (!isCairnError(err, 'NOT_FOUND')) throw err;
    }
    return bytes ? { bytes, at: at + from } : whole();
  }

  /**
   * `read` without I/O: when every chunk the range needs is in the memory LRU, copies the bytes
   * into `into` synchronously (up to `into.length`) and returns their count, applying the same
   * hints; otherwise returns undefined and copies nothing (then use `read`). For the FUSE hot path,
   * where most 128 KiB reads fall in a chunk already held.
   *
   * @example const n = chunks.readCached(refs, pos, len, buf) ?? (await chunks.read(refs, pos, len)).copy(buf);
   */
  readCached(refs: readonly ChunkRef[], offset: number, length: number, into: Buffer, opts: ReadHints = {}): number | undefined {
    if (!this.mem || !Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) return undefined;
    const starts = this.startsOf(refs);
    const end = Math.min(starts[refs.length], offset + length, offset + into.length);
    if (offset >= end) return 0;
    const first = upperBound(starts, offset) - 1;
    const last = upperBound(starts, end - 1) - 1;
    const chunks: Buffer[] = [];
    for (let i = first; i <= last; i++) {
      const c = this.mem.get(refs[i].hash);
      if (!c) return undefined;
      chunks.push(c);
    }
    this.startHints(refs, first, last, this.ahead(offset, end, first, last, opts), opts)();
    return copyRange(chunks, starts, first, offset, end, into);
  }

  /** Records the read in the cursor; returns how many chunks after `last` to read ahead (0: a random read with a cursor). */
  private ahead(offset: number, end: number, first: number, last: number, opts: ReadHints): number {
    return opts.cursor ? opts.cursor.advance(offset, end, first, last) : (opts.readahead ?? 0);
  }

  /** What starts the readahead and neighbour fetches a read of chunks first..last asks for. */
  private startHints(refs: readonly ChunkRef[], first: number, last: number, ahead: number, opts: ReadHints): () => void {
    return () => {
      // A cursor's window starts at 4 chunks: its read-ahead still goes in batches of BATCH_WINDOW/4.
      const size = opts.cursor ? Math.max(ahead, BATCH_WINDOW) : ahead;
      if (ahead > 0) this.prefetcher.readAhead(refs.slice(last + 1, last + 1 + ahead), size);
      if (opts.neighbours) for (let i = first; i <= last; i++) this.prefetcher.neighbours(refs[i]);
    };
  }

  /**
   * Starts fetching chunks into the memory LRU and the disk cache without waiting (sequential
   * readahead); errors are ignored here and surface on the read that needs the chunk.
   *
   * @example chunks.prefetch(entry.chunks.slice(i + 1, i + 3));
   */
  prefetch(refs: readonly ChunkRef[]): void {
    this.prefetcher.prefetch(refs);
  }

  /**
   * One whole chunk, verified. Do not modify the buffer (it may be shared). `neighbours: true`
   * also fetches the pack block around it, as `read` does for small files.
   *
   * @example const bytes = await chunks.readChunk(ref);
   */
  readChunk(ref: ChunkRef, opts: { neighbours?: boolean } = {}): Promise<Buffer> {
    if (!this.packReadahead) {
      if (opts.neighbours) this.prefetcher.neighbours(ref);
      return this.fetcher.fetchEach([ref])[0];
    }
    if (opts.neighbours) {
      this.prefetcher.neighbours(ref);
      return this.fetcher.fetchBatched(ref);
    }
    // The next chunk of a pack whose index is on its way: with the read-ahead the index allows, not alone.
    const pending = this.fetcher.idle(ref.hash) ? this.prefetcher.indexPendingFor(ref) : undefined;
    const go = (): Promise<Buffer> => this.fetcher.fetchBatched(ref);
    if (pending) {
      this.prefetcher.packAhead(ref, this.maxWindow);
      return pending.then(go, go);
    }
    const bytes = go();
    this.prefetcher.packAhead(ref, this.maxWindow, this.fetcher.held(ref.hash) ? undefined : bytes);
    return bytes;
  }

  /**
   * The whole file, chunk by chunk in order, fetching up to `concurrency` chunks ahead. The window
   * is refilled when half of it was consumed, so adjacent chunks go in one range GET (refilled one
   * chunk at a time, every chunk was a GET of its own: 31 GETs for 37 chunks of 40 MiB).
   *
   * @example for await (const piece of chunks.stream(entry.chunks)) out.write(piece);
   */
  async *stream(refs: readonly ChunkRef[], opts: { concurrency?: number } = {}): AsyncIterable<Buffer> {
    const ahead = Math.max(1, opts.concurrency ?? this.concurrency);
    const queue: Promise<Buffer>[] = [];
    let next = 0;
    try {
      while (next < refs.length || queue.length > 0) {
        if (queue.length <= ahead / 2 && next < refs.length) {
          const batch = refs.slice(next, next + ahead - queue.length);
          next += batch.length;
          queue.push(...this.fetcher.fetchEach(batch));
        }
        yield await queue.shift()!;
      }
    } finally {
      for (const p of queue) p.catch(() => {});
    }
  }

  /**
   * Fills the host cache with these chunks ahead of readers (`cairn volume warmup`): each distinct
   * chunk not yet in the cache is fetched (verified, merged into range GETs of adjacent chunks,
   * batches of up to `rangeBytes`, `concurrency` GETs at once, default 4) and written to the cache, with its
   * outboard for random readers (`PartialReader.keepOutboard`), before this returns.
   * `onProgress(done, total)` counts bytes of distinct chunks, those already cached included.
   * Without a cache it only fetches (and verifies) them.
   *
   * @example const r = await chunks.warm(entry.chunks, { onProgress: (d, t) => bar.update(d) });
   */
  async warm(
    refs: readonly ChunkRef[],
    opts: { concurrency?: number; onProgress?: (doneBytes: number, totalBytes: number) => void } = {},
  ): Promise<{ chunks: number; bytes: number; fetched: number; fetchedBytes: number }> {
    const distinct = [...new Map(refs.map((r) => [r.hash, r])).values()];
    const total = distinct.reduce((n, r) => n + r.length, 0);
    const cache = this.cache;
    const cached = cache ? await Promise.all(distinct.map((r) => cache.has(r.hash))) : distinct.map(() => false);
    const todo = distinct.filter((_, i) => !cached[i]).sort((a, b) => (a.pack < b.pack ? -1 : a.pack > b.pack ? 1 : a.offset - b.offset));
    let done = total - todo.reduce((n, r) => n + r.length, 0);
    opts.onProgress?.(done, total);
    const batches = splitRuns(todo, this.rangeBytes);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < batches.length) {
        const batch = batches[next++];
        await Promise.all(this.fetcher.fetchEach(batch).map((p, k) => p.then((bytes) => this.partial?.keepOutboard(batch[k]!, bytes))));
        done += batch.reduce((n, r) => n + r.length, 0);
        opts.onProgress?.(done, total);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 4) }, worker));
    await this.flush();
    return { chunks: distinct.length, bytes: total, fetched: todo.length, fetchedBytes: todo.reduce((n, r) => n + r.length, 0) };
  }

  /**
   * A fresh read state for one reader (one per open file handle): pass it as `{ cursor }` to every
   * `read`/`readCached` of that reader.
   *
   * @example const cursor = chunks.cursor(); await chunks.read(refs, 0, 131072, { cursor });
   */
  cursor(): ReadCursor {
    return new ReadCursor({ max: this.maxWindow });
  }

  /**
   * A writer for one commit. `known(hash)` returns an existing ref to reuse (no upload).
   *
   * @example const w = chunks.writer({ known }); const refs = await w.write(bytes); await w.finish();
   */
  writer(opts: { known?: KnownChunks; packBytes?: number; maxInFlight?: number } = {}): PackWriter {
    return new PackWriter({ store: this.store, packPrefix: this.packPrefix, chunker: this.chunker, blockBytes: this.blockBytes, ...opts });
  }

  /**
   * Waits for the background cache writes started so far (reads never wait for them).
   *
   * @example await chunks.flush(); // before exiting, so fetched chunks land in the host cache
   */
  async flush(): Promise<void> {
    await Promise.all([this.fetcher.flush(), this.partial?.flush()]);
  }

  /** Prefix sums of chunk lengths: starts[i] = file offset of chunk i; starts[n] = size. */
  private startsOf(refs: readonly ChunkRef[]): Float64Array {
    let s = this.starts.get(refs);
    if (!s || s.length !== refs.length + 1) {
      s = new Float64Array(refs.length + 1);
      for (let i = 0; i < refs.length; i++) s[i + 1] = s[i] + refs[i].length;
      this.starts.set(refs, s);
    }
    return s;
  }
}

/** Bytes of the file starting at file offset `at`: a whole chunk, or part of one. */
interface Piece {
  bytes: Buffer;
  at: number;
}

/** Copies file bytes [offset, end) out of `chunks` (chunks[0] is chunk `first`) into `out`. */
function copyRange(chunks: readonly Buffer[], starts: Float64Array, first: number, offset: number, end: number, out: Buffer): number {
  let o = 0;
  for (let k = 0; k < chunks.length; k++) {
    const at = starts[first + k];
    o += chunks[k].copy(out, o, Math.max(0, offset - at), Math.min(chunks[k].length, end - at));
  }
  return o;
}

/** Index of the first element of sorted `a` greater than `x`. */
function upperBound(a: Float64Array, x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
