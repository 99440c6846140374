/**
 * ChunkStore: reads file content given its ChunkRefs, and creates PackWriters for commits.
 *
 * Read path for each needed chunk: in-process memory LRU -> host chunk cache (verified) ->
 * fetch lease (./lease.ts) -> store range GET. Invariants:
 * - every byte returned was verified against its chunk's BLAKE3 (bytes from the store here,
 *   bytes from the disk cache by the cache); a mismatch is CairnError('CORRUPT'), never data;
 * - single flight: concurrent readers of one chunk in this process share one fetch, and (with a
 *   cache) the processes sharing the host cache fetch a cold chunk once: the holder of its lease
 *   fetches, the others wait (bounded) for it to appear in the cache;
 * - chunks adjacent in one pack and needed together are fetched with ONE range GET (up to
 *   `MERGE_BYTES`) and split;
 * - sequential readahead (`read(…, { readahead: n })`) keeps up to n chunks ahead in flight and
 *   starts them in batches of n/4 adjacent chunks, so a cold sequential reader issues a few large
 *   range GETs in parallel rather than one small GET per chunk;
 * - pack neighbours (`read(…, { neighbours: true })`, for small files): the 4 MiB block of the pack
 *   around the chunk, and the next block, are fetched with one range GET each (their chunks named
 *   by the pack's trailer index), so files uploaded together cost a few GETs, not one each;
 * - store errors propagate unchanged (the store's CairnError); a failed fetch is forgotten, so
 *   the next read retries it;
 * - the cache write after a fetch is not awaited by the read; the cache makes it atomic (temp +
 *   rename); a chunk's lease is released only after its cache write (LEASE_LINGER_MS after);
 * - leases are an optimisation: a lease error means fetching directly, never a failed read.
 * Buffers from `readChunk` and `stream` may be shared with the memory LRU: do not modify them.
 */
import { CairnError } from '../errors.js';
import type { ObjectStore } from '../store/types.js';
import { ChunkCache, type ChunkCacheStats } from './cache.js';
import type { ChunkerParams } from './chunker.js';
import { isChunkHash, verifyChunkAsync } from './hash.js';
import { LEASE_LINGER_MS, LeaseDir, type Lease, type LeaseHolder, type LeaseOptions } from './lease.js';
import { PackWriter, readPackIndex } from './pack.js';
import type { ChunkRef, KnownChunks } from './types.js';

/** What a read may start fetching besides its own chunks (see `ChunkStore.read`). */
export interface ReadHints {
  /** Keep this many chunks after the range in flight (sequential readers). */
  readahead?: number;
  /** Fetch the pack blocks around the range's chunks (small files). */
  neighbours?: boolean;
}

export interface ChunkStoreOptions {
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
}

/** What the fetch leases did in this ChunkStore (for tests and stats). */
export interface LeaseStats {
  /** Leases taken (first try, after waiting, or by takeover). */
  acquired: number;
  /** Chunks whose lease another process held when we needed them. */
  waited: number;
  /** Of those, chunks then read from the cache (fetched by the other process). */
  fromOthers: number;
  /** Stale leases (dead holder, or not refreshed for staleMs) taken over. */
  takeovers: number;
  /** Waits that reached waitMs: the chunk was then fetched without a lease. */
  timeouts: number;
  /** Lease operations that failed (the chunk was then fetched without a lease). */
  errors: number;
}

/** Longest run of adjacent chunks fetched with one range GET. */
const MERGE_BYTES = 8 * 1024 * 1024;
/** Pack neighbours are fetched by blocks of this many pack bytes (chunks by start offset). */
const BLOCK_BYTES = 4 * 1024 * 1024;
/** Pack indexes kept in memory for neighbour prefetch (each ~100 bytes per chunk). */
const MAX_PACK_INDEXES = 32;
/** Pack blocks remembered as prefetched (then the memory is cleared and they may be fetched again). */
const MAX_BLOCKS_DONE = 100_000;

interface Deferred {
  ref: ChunkRef;
  /** The fetch lease this process holds for the chunk, released after its cache write. */
  lease?: Lease;
  promise: Promise<Buffer>;
  resolve(b: Buffer): void;
  reject(e: unknown): void;
}

function deferred(ref: ChunkRef): Deferred {
  let resolve!: (b: Buffer) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<Buffer>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {}); // callers handle it; never an unhandled rejection
  return { ref, promise, resolve, reject };
}

/**
 * A byte-bounded LRU of verified chunks, keyed by hash (Map order = recency). Chunks may be views
 * into one fetched run (see `verifyAndSettle`): the bound counts the memory really held, each
 * backing ArrayBuffer once while any chunk still views it.
 */
class ChunkLru {
  private readonly map = new Map<string, Buffer>();
  /** Chunks held per backing ArrayBuffer. */
  private readonly backing = new Map<ArrayBufferLike, number>();
  private bytes = 0;
  constructor(private readonly max: number) {}

  private hold(b: Buffer): void {
    const n = this.backing.get(b.buffer) ?? 0;
    if (n === 0) this.bytes += b.buffer.byteLength;
    this.backing.set(b.buffer, n + 1);
  }

  private release(b: Buffer): void {
    const n = this.backing.get(b.buffer) ?? 1;
    if (n > 1) this.backing.set(b.buffer, n - 1);
    else {
      this.backing.delete(b.buffer);
      this.bytes -= b.buffer.byteLength;
    }
  }

  get(hash: string): Buffer | undefined {
    const b = this.map.get(hash);
    if (b) {
      this.map.delete(hash);
      this.map.set(hash, b);
    }
    return b;
  }

  /** Whether `hash` is held, without touching its recency. */
  has(hash: string): boolean {
    return this.map.has(hash);
  }

  set(hash: string, b: Buffer): void {
    if (b.buffer.byteLength > this.max / 2 || this.map.has(hash)) return;
    this.map.set(hash, b);
    this.hold(b);
    for (const [h, old] of this.map) {
      if (this.bytes <= this.max) break;
      this.map.delete(h);
      this.release(old);
    }
  }

  /** Bytes of memory the held chunks keep alive (for tests). */
  get heldBytes(): number {
    return this.bytes;
  }
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
  private readonly inflight = new Map<string, Promise<Buffer>>();
  private readonly starts = new WeakMap<readonly ChunkRef[], Float64Array>();
  private readonly cacheWrites = new Set<Promise<void>>();
  private readonly leases: LeaseDir | null;
  /** Pack id -> its chunks in pack order (from the trailer index), for neighbour prefetch. */
  private readonly packIndexes = new Map<string, Promise<ChunkRef[]>>();
  /** `pack:block` of the pack blocks already prefetched as neighbours. */
  private readonly blocksDone = new Set<string>();
  /** Range GETs issued (for tests and stats). */
  gets = 0;
  /** What the cross-process fetch leases did. */
  readonly leaseStats: LeaseStats = { acquired: 0, waited: 0, fromOthers: 0, takeovers: 0, timeouts: 0, errors: 0 };

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
    this.chunker = opts.chunker;
    this.leases = this.cache && opts.leases !== false ? new LeaseDir(this.cache.dir, opts.leases) : null;
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
    const wanted = this.fetchEach(refs.slice(first, last + 1));
    this.hint(refs, first, last, opts);
    const chunks = await Promise.all(wanted);
    const out = Buffer.allocUnsafe(end - offset);
    copyRange(chunks, starts, first, offset, end, out);
    return out;
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
    this.hint(refs, first, last, opts);
    return copyRange(chunks, starts, first, offset, end, into);
  }

  /** Starts the readahead and neighbour fetches a read of chunks first..last asks for. */
  private hint(refs: readonly ChunkRef[], first: number, last: number, opts: ReadHints): void {
    if (opts.readahead && opts.readahead > 0) this.readAhead(refs.slice(last + 1, last + 1 + opts.readahead), opts.readahead);
    if (opts.neighbours) for (let i = first; i <= last; i++) this.prefetchNeighbours(refs[i]);
  }

  /**
   * Starts fetching chunks into the memory LRU and the disk cache without waiting (sequential
   * readahead); errors are ignored here and surface on the read that needs the chunk.
   *
   * @example chunks.prefetch(entry.chunks.slice(i + 1, i + 3));
   */
  prefetch(refs: readonly ChunkRef[]): void {
    for (const p of this.fetchEach(refs)) p.catch(() => {});
  }

  /**
   * Readahead over `window` (the next chunks of a sequential reader): starts the chunks not yet
   * held or in flight once there are at least window/4 of them (or the window reaches the end of
   * the file), in batches of window/4 adjacent chunks — one range GET each when cold.
   */
  private readAhead(window: readonly ChunkRef[], size: number): void {
    const step = Math.max(1, Math.floor(size / 4));
    const missing = window.filter((r) => !this.inflight.has(r.hash) && !this.mem?.has(r.hash));
    if (missing.length === 0 || (missing.length < step && window.length === size)) return;
    for (let i = 0; i < missing.length; i += step) this.prefetch(missing.slice(i, i + step));
  }

  /**
   * Starts fetching the chunks of the pack block holding `ref` and of the next block (once per
   * block), named by the pack's trailer index (read once per pack). Errors are ignored: this only
   * warms the memory LRU and the cache.
   */
  private prefetchNeighbours(ref: ChunkRef): void {
    const block = Math.floor(ref.offset / BLOCK_BYTES);
    for (const b of [block, block + 1]) {
      const key = `${ref.pack}:${b}`;
      if (this.blocksDone.has(key)) continue;
      if (this.blocksDone.size >= MAX_BLOCKS_DONE) this.blocksDone.clear();
      this.blocksDone.add(key);
      this.packIndex(ref.pack).then(
        (index) => {
          const lo = lowerBoundOffset(index, b * BLOCK_BYTES);
          const hi = lowerBoundOffset(index, (b + 1) * BLOCK_BYTES);
          const wanted = index.slice(lo, hi).filter((r) => !this.inflight.has(r.hash) && !this.mem?.has(r.hash));
          if (wanted.length > 0) this.prefetch(wanted);
        },
        () => this.blocksDone.delete(key),
      );
    }
  }

  /** The chunks of a pack in pack order, from its trailer index (memoised; a failure is forgotten). */
  private packIndex(pack: string): Promise<ChunkRef[]> {
    let p = this.packIndexes.get(pack);
    if (p) {
      this.packIndexes.delete(pack);
      this.packIndexes.set(pack, p);
      return p;
    }
    p = readPackIndex(this.store, this.packPrefix + pack).then((entries) =>
      entries.map((e) => ({ hash: e.hash, pack, offset: e.offset, length: e.length })).sort((a, b) => a.offset - b.offset),
    );
    p.catch(() => {
      if (this.packIndexes.get(pack) === p) this.packIndexes.delete(pack);
    });
    this.packIndexes.set(pack, p);
    if (this.packIndexes.size > MAX_PACK_INDEXES) this.packIndexes.delete(this.packIndexes.keys().next().value!);
    return p;
  }

  /**
   * One whole chunk, verified. Do not modify the buffer (it may be shared).
   *
   * @example const bytes = await chunks.readChunk(ref);
   */
  readChunk(ref: ChunkRef): Promise<Buffer> {
    return this.fetchEach([ref])[0];
  }

  /**
   * The whole file, chunk by chunk in order, fetching up to `concurrency` chunks ahead.
   *
   * @example for await (const piece of chunks.stream(entry.chunks)) out.write(piece);
   */
  async *stream(refs: readonly ChunkRef[], opts: { concurrency?: number } = {}): AsyncIterable<Buffer> {
    const ahead = Math.max(1, opts.concurrency ?? this.concurrency);
    const queue: Promise<Buffer>[] = [];
    let next = 0;
    try {
      while (next < refs.length || queue.length > 0) {
        if (queue.length < ahead && next < refs.length) {
          const batch = refs.slice(next, next + ahead - queue.length);
          next += batch.length;
          queue.push(...this.fetchEach(batch));
        }
        yield await queue.shift()!;
      }
    } finally {
      for (const p of queue) p.catch(() => {});
    }
  }

  /**
   * A writer for one commit. `known(hash)` returns an existing ref to reuse (no upload).
   *
   * @example const w = chunks.writer({ known }); const refs = await w.write(bytes); await w.finish();
   */
  writer(opts: { known?: KnownChunks; packBytes?: number; maxInFlight?: number } = {}): PackWriter {
    return new PackWriter({ store: this.store, packPrefix: this.packPrefix, chunker: this.chunker, ...opts });
  }

  /**
   * Waits for the background cache writes started so far (reads never wait for them).
   *
   * @example await chunks.flush(); // before exiting, so fetched chunks land in the host cache
   */
  async flush(): Promise<void> {
    while (this.cacheWrites.size > 0) await Promise.all([...this.cacheWrites]);
    await this.cache?.flush();
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

  /** One promise per ref (same order): memory, joins in-flight fetches, else starts a load. */
  private fetchEach(refs: readonly ChunkRef[]): Promise<Buffer>[] {
    const local = new Map<string, Promise<Buffer>>();
    const toLoad: Deferred[] = [];
    const out = refs.map((ref) => {
      let p = local.get(ref.hash) ?? this.inflight.get(ref.hash);
      if (!p) {
        const hit = this.mem?.get(ref.hash);
        if (hit) {
          p = Promise.resolve(hit);
        } else {
          const d = deferred(ref);
          this.inflight.set(ref.hash, d.promise);
          toLoad.push(d);
          p = d.promise;
        }
      }
      local.set(ref.hash, p);
      return p;
    });
    if (toLoad.length > 0) this.load(toLoad).catch((err: unknown) => toLoad.forEach((d) => this.fail(d, err)));
    return out;
  }

  /**
   * Settles every deferred: cache hits first, then the misses in merged range GETs — with leases,
   * only the misses this process could lease; the others are waited for in the cache.
   */
  private async load(items: Deferred[]): Promise<void> {
    const lookedUp = performance.now();
    let misses = items;
    if (this.cache) {
      const cache = this.cache;
      const hits = await Promise.all(items.map((d) => cache.get(d.ref.hash)));
      misses = [];
      items.forEach((d, i) => {
        const hit = hits[i];
        if (hit && hit.length === d.ref.length) this.settle(d, hit);
        else misses.push(d);
      });
    }
    if (misses.length === 0) return;
    if (!this.leases) {
      await Promise.all(groupRuns(misses).map((run) => this.fetchRun(run)));
      return;
    }
    const leases = this.leases;
    const mine: Deferred[] = [];
    const others: Deferred[] = [];
    await Promise.all(
      misses.map(async (d) => {
        const got = await this.lease(() => (isChunkHash(d.ref.hash) ? leases.tryAcquire(d.ref.hash) : Promise.resolve('error' as const)), d);
        if (got === 'held') others.push(d);
        else mine.push(d);
      }),
    );
    // A holder may have cached a chunk between our miss and our lease. Holders keep their leases
    // LEASE_LINGER_MS after the cache write, so that cannot have happened if we got the lease sooner.
    let fetch = mine;
    if (performance.now() - lookedUp >= LEASE_LINGER_MS / 2) {
      const recheck = await Promise.all(mine.map((d) => (d.lease ? this.fromCache(d) : false)));
      fetch = mine.filter((_, i) => !recheck[i]);
    }
    await Promise.all([...groupRuns(fetch).map((run) => this.fetchRun(run)), ...others.map((d) => this.awaitOther(d))]);
  }

  /**
   * Runs a lease operation for `d`: a lease taken is recorded on `d`; 'error' is counted (the
   * caller then fetches without a lease). Returns 'held' when another process has the lease.
   */
  private async lease(op: () => Promise<Lease | 'held' | 'error'>, d: Deferred): Promise<'mine' | 'held' | 'error'> {
    const got = await op();
    if (got === 'held') return 'held';
    if (got === 'error') {
      this.leaseStats.errors++;
      return 'error';
    }
    d.lease = got;
    this.leaseStats.acquired++;
    return 'mine';
  }

  /** Settles `d` from the cache if its entry is there (verified); then lets its lease linger out. */
  private async fromCache(d: Deferred): Promise<boolean> {
    const cache = this.cache!;
    if (!(await cache.has(d.ref.hash))) return false;
    const hit = await cache.get(d.ref.hash);
    if (!hit || hit.length !== d.ref.length) return false;
    this.settle(d, hit);
    // The chunk is cached: the lease lingers like any other, or a reader that missed the cache
    // before it was written could take the lease at once and skip its recheck (see load).
    d.lease?.releaseLater();
    d.lease = undefined;
    return true;
  }

  /**
   * Another process holds the lease of `d`: polls the cache for the chunk (2 ms, backing off to
   * 20 ms) and reads it from there. If the lease is released without the chunk appearing, or is
   * stale, takes it and fetches; after `waitMs` (or on a lease error) fetches without a lease.
   */
  private async awaitOther(d: Deferred): Promise<void> {
    const leases = this.leases!;
    const { hash } = d.ref;
    this.leaseStats.waited++;
    const deadline = Date.now() + leases.waitMs;
    const holder: LeaseHolder = { ino: -1, pid: 0, ns: '' };
    let delay = 2;
    for (;;) {
      if (await this.fromCache(d)) {
        this.leaseStats.fromOthers++;
        return;
      }
      if (Date.now() >= deadline) {
        this.leaseStats.timeouts++;
        break;
      }
      const state = await leases.inspect(hash, holder);
      let got: 'mine' | 'held' | 'error' = 'held';
      if (state.kind === 'free') got = await this.lease(() => leases.tryAcquire(hash), d);
      else if (state.kind === 'stale') {
        got = await this.lease(() => leases.takeOver(hash, state.ino), d);
        if (got === 'mine') this.leaseStats.takeovers++;
      } else if (state.kind === 'error') {
        this.leaseStats.errors++;
        got = 'error';
      }
      if (got === 'error') break;
      if (got === 'mine') {
        if (await this.fromCache(d)) return; // the holder finished just before we took the lease
        break;
      }
      await new Promise((r) => setTimeout(r, Math.max(1, Math.min(delay, deadline - Date.now()))));
      delay = Math.min(20, delay * 1.5);
    }
    await this.fetchRun([d]);
  }

  /** One range GET for a run of adjacent chunks of one pack, split and verified per chunk. */
  private async fetchRun(run: Deferred[]): Promise<void> {
    const first = run[0].ref;
    const lastRef = run[run.length - 1].ref;
    const key = this.packPrefix + first.pack;
    const want = lastRef.offset + lastRef.length - first.offset;
    let body: Buffer;
    try {
      this.gets++;
      body = await this.store.get(key, { offset: first.offset, length: want });
      // Some servers ignore the end of a range (s3rver does for `bytes=0-0`): keep what we asked for.
      if (body.length > want) body = body.subarray(0, want);
    } catch (err) {
      for (const d of run) this.fail(d, err);
      return;
    }
    await Promise.all(run.map((d) => this.verifyAndSettle(d, body, first.offset, key)));
  }

  /** Cuts one chunk out of a fetched run, verifies it (worker pool), settles it and caches it. */
  private async verifyAndSettle(d: Deferred, body: Buffer, bodyOffset: number, key: string): Promise<void> {
    const { ref } = d;
    const start = ref.offset - bodyOffset;
    // A view, not a copy (copies cost ~8% of a cold read's speed): the memory LRU counts the whole
    // run's buffer while any of its chunks is held.
    const bytes = body.subarray(start, Math.min(body.length, start + ref.length));
    try {
      await verifyChunkAsync(bytes, ref.hash, ref.length, { key, pack: ref.pack, offset: ref.offset, store: this.store.url });
    } catch (err) {
      this.fail(d, err);
      return;
    }
    this.settle(d, bytes);
    const lease = d.lease;
    d.lease = undefined;
    if (this.cache) {
      // A leased chunk's lease goes only once its cache entry is in place (waiters poll the cache),
      // and lingers LEASE_LINGER_MS more (see load).
      const w: Promise<void> = this.cache
        .put(ref.hash, bytes)
        .catch(() => {})
        .then(() => lease?.releaseLater())
        .finally(() => this.cacheWrites.delete(w));
      this.cacheWrites.add(w);
    }
  }

  private settle(d: Deferred, bytes: Buffer): void {
    this.mem?.set(d.ref.hash, bytes);
    if (this.inflight.get(d.ref.hash) === d.promise) this.inflight.delete(d.ref.hash);
    d.resolve(bytes);
  }

  private fail(d: Deferred, err: unknown): void {
    if (this.inflight.get(d.ref.hash) === d.promise) this.inflight.delete(d.ref.hash);
    // Let a waiting process try the fetch itself.
    d.lease?.release().catch(() => {});
    d.lease = undefined;
    d.reject(err);
  }
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

/** Index of the first ref of `refs` (sorted by offset) whose offset is at least `offset`. */
function lowerBoundOffset(refs: readonly ChunkRef[], offset: number): number {
  let lo = 0;
  let hi = refs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (refs[mid].offset < offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Groups loads into runs of chunks adjacent in the same pack (sorted by pack, offset). */
function groupRuns(items: Deferred[]): Deferred[][] {
  const sorted = [...items].sort((a, b) => (a.ref.pack < b.ref.pack ? -1 : a.ref.pack > b.ref.pack ? 1 : a.ref.offset - b.ref.offset));
  const runs: Deferred[][] = [];
  let run: Deferred[] = [];
  let runBytes = 0;
  for (const d of sorted) {
    const prev = run[run.length - 1]?.ref;
    const adjacent = prev && prev.pack === d.ref.pack && prev.offset + prev.length === d.ref.offset;
    if (!adjacent || runBytes + d.ref.length > MERGE_BYTES) {
      if (run.length > 0) runs.push(run);
      run = [];
      runBytes = 0;
    }
    run.push(d);
    runBytes += d.ref.length;
  }
  if (run.length > 0) runs.push(run);
  return runs;
}
