/**
 * Fetching verified chunks: single flight, fetch leases, coalesced range GETs.
 *
 * For each chunk asked for: the memory LRU, else joins the fetch already in flight in this process,
 * else the host cache (verified there), else — with leases — takes the chunk's fetch lease
 * (./lease.ts) or waits (bounded) for the process holding it to put the chunk in the cache, else a
 * store range GET. Invariants:
 * - every byte settled was verified against its chunk's BLAKE3 (bytes from the store here, bytes
 *   from the disk cache by the cache); a mismatch is CairnError('CORRUPT'), never data;
 * - single flight: concurrent readers of one chunk in this process share one fetch, and (with a
 *   cache) the processes sharing the host cache fetch a cold chunk once;
 * - chunks adjacent in one pack and needed together are fetched with ONE range GET (up to
 *   `rangeBytes`, default MERGE_BYTES) and split; longer runs become several range GETs in parallel;
 * - streaming: a chunk of a run is verified and handed to its readers as soon as its bytes have
 *   arrived (stores that stream bodies: S3), not after the whole run;
 * - store errors propagate unchanged (the store's CairnError); a failed fetch is forgotten, so the
 *   next read retries it;
 * - the cache write after a fetch is not awaited by the read; the cache makes it atomic (temp +
 *   rename); a chunk's lease is released only after its cache write (LEASE_LINGER_MS after);
 * - leases are an optimisation: a lease error means fetching directly, never a failed read.
 * Buffers settled may be shared with the memory LRU: do not modify them.
 */
import type { ObjectStore } from '../store/types.js';
import { isCairnError } from '../errors.js';
import type { ChunkCache } from './cache.js';
import { FetchPool, fetchThreads, type RunFailure, type RunPool } from './fetchpool.js';
import { Forwarder } from './forward.js';
import { isChunkHash, verifyChunkAsync } from './hash.js';
import { LEASE_LINGER_MS, type LeaseDir, type Lease, type LeaseHolder } from './lease.js';
import type { ChunkLru } from './memlru.js';
import { NativeFetchPool } from './nativefetch.js';
import type { ChunkRef } from './types.js';

/** What the fetch leases did in this fetcher (for tests and stats). */
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

/** Longest run of adjacent chunks fetched with one range GET (default of `rangeBytes`). */
export const MERGE_BYTES = 8 * 1024 * 1024;

/** `$CAIRN_RANGE_MIB` (1–64): the longest range GET, for measuring other sizes than MERGE_BYTES without a rebuild. */
export function envRangeBytes(): number | undefined {
  const mib = Number(process.env.CAIRN_RANGE_MIB);
  return Number.isInteger(mib) && mib >= 1 && mib <= 64 ? mib * 1024 * 1024 : undefined;
}

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

export interface ChunkFetcherOptions {
  store: ObjectStore;
  /** Prefix of pack keys; a pack's key is prefix + pack id. */
  packPrefix: string;
  cache: ChunkCache | null;
  mem: ChunkLru | null;
  leases: LeaseDir | null;
  /** Longest run of adjacent chunks fetched with one range GET (default MERGE_BYTES). */
  rangeBytes?: number;
  /** Hand each chunk of a run to its readers as soon as its bytes arrive (default true). */
  streamRuns?: boolean;
  /** Threads that receive, verify and cache runs off the event loop (./fetchpool.ts; default `fetchThreads(store)`; 0 = none). */
  fetchThreads?: number;
  /** Without fetch workers: the addon's fetch threads where they apply (./nativefetch.ts; default true). */
  nativeFetch?: boolean;
}

/**
 * Fetches chunks by ref into the memory LRU and the host cache, once each however many ask.
 *
 * @example
 * const f = new ChunkFetcher({ store, packPrefix, cache: null, mem: new ChunkLru(64 << 20), leases: null });
 * const [bytes] = await Promise.all(f.fetchEach([ref]));
 */
export class ChunkFetcher {
  private readonly store: ObjectStore;
  private readonly packPrefix: string;
  private readonly cache: ChunkCache | null;
  private readonly mem: ChunkLru | null;
  private readonly leases: LeaseDir | null;
  private readonly rangeBytes: number;
  private readonly streamRuns: boolean;
  private readonly pool: RunPool | null;
  private readonly inflight = new Map<string, Promise<Buffer>>();
  private readonly cacheWrites = new Set<Promise<void>>();
  /** Cold chunks `fetchBatched` was asked for in this tick (in flight already), loaded together at its end. */
  private batch: Deferred[] | undefined;
  /** Reads chunks of packs GC compacted and deleted (./forward.ts). */
  readonly forwarder: Forwarder;
  /** Range GETs issued (for tests and stats). */
  gets = 0;
  /** What the cross-process fetch leases did. */
  readonly leaseStats: LeaseStats = { acquired: 0, waited: 0, fromOthers: 0, takeovers: 0, timeouts: 0, errors: 0 };

  constructor(opts: ChunkFetcherOptions) {
    this.store = opts.store;
    this.packPrefix = opts.packPrefix;
    this.cache = opts.cache;
    this.mem = opts.mem;
    this.leases = opts.leases;
    this.rangeBytes = Math.max(1, opts.rangeBytes ?? MERGE_BYTES);
    this.streamRuns = opts.streamRuns ?? true;
    const threads = opts.fetchThreads ?? fetchThreads(opts.store);
    if (threads > 0) this.pool = new FetchPool(threads, opts.store.url, opts.cache?.dir, opts.cache?.maxBytes);
    else this.pool = opts.nativeFetch === false ? null : NativeFetchPool.for(opts.store, opts.cache);
    this.forwarder = new Forwarder(opts.store, opts.packPrefix);
  }

  /** Whether a chunk is neither in memory nor being fetched here (so a prefetch would start it). @example fetcher.idle(r.hash) */
  idle(hash: string): boolean {
    return !this.inflight.has(hash) && !this.mem?.has(hash);
  }

  /** Whether a chunk is in the memory LRU. @example if (!fetcher.held(ref.hash)) await bytes; */
  held(hash: string): boolean {
    return this.mem?.has(hash) ?? false;
  }

  /** Waits for the background cache writes started so far (reads never wait for them). @example await fetcher.flush(); */
  async flush(): Promise<void> {
    while (this.cacheWrites.size > 0) await Promise.all([...this.cacheWrites]);
    await this.cache?.flush();
  }

  /**
   * One promise per ref (same order): memory, joins in-flight fetches, else starts a load.
   *
   * @example const [a, b] = await Promise.all(fetcher.fetchEach([refA, refB]));
   */
  fetchEach(refs: readonly ChunkRef[]): Promise<Buffer>[] {
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
   * `fetchEach([ref])[0]`, except that cold chunks asked for in the same tick are fetched together
   * (adjacent ones with one range GET; the first one asked for in a GET of its own, for the time to
   * first byte): for a reader that asks for several chunks one call at a time.
   *
   * @example const [a, b] = await Promise.all([f.fetchBatched(refA), f.fetchBatched(refB)]); // one GET
   */
  fetchBatched(ref: ChunkRef): Promise<Buffer> {
    if (!this.idle(ref.hash)) return this.fetchEach([ref])[0];
    const d = deferred(ref);
    this.inflight.set(ref.hash, d.promise);
    if (!this.batch) {
      const batch: Deferred[] = (this.batch = []);
      queueMicrotask(() => {
        this.batch = undefined;
        // The first chunk asked for goes in a GET of its own (it is what the reader waits for: at an
        // open, the file's first chunk), the others merged behind it.
        for (const part of [batch.slice(0, 1), batch.slice(1)])
          if (part.length > 0) this.load(part).catch((err: unknown) => part.forEach((x) => this.fail(x, err)));
      });
    }
    this.batch.push(d);
    return d.promise;
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
      await Promise.all(groupRuns(misses, this.rangeBytes).map((run) => this.fetchRun(run)));
      return;
    }
    const leases = this.leases;
    const mine: Deferred[] = [];
    const others: Deferred[] = [];
    await Promise.all(
      misses.map(async (d) => {
        const acquire = (): Promise<Lease | 'held' | 'error'> =>
          isChunkHash(d.ref.hash) ? leases.tryAcquire(d.ref.hash) : Promise.resolve('error' as const);
        const got = await this.lease(acquire, d);
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
    await Promise.all([...groupRuns(fetch, this.rangeBytes).map((run) => this.fetchRun(run)), ...others.map((d) => this.awaitOther(d))]);
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

  /**
   * One range GET for a run of adjacent chunks of one pack, split and verified per chunk. With
   * `streamRuns`, each chunk is verified and settled as soon as its bytes have arrived; a failure
   * after that fails only the chunks not yet settled.
   */
  private async fetchRun(run: Deferred[], inline = false): Promise<void> {
    const first = run[0].ref;
    const lastRef = run[run.length - 1].ref;
    const key = this.packPrefix + first.pack;
    const want = lastRef.offset + lastRef.length - first.offset;
    const settling: Promise<void>[] = [];
    let next = 0; // run[next] is the first chunk not yet handed to verifyAndSettle
    const onProgress = (body: Buffer, received: number): void => {
      while (next < run.length && run[next].ref.offset + run[next].ref.length - first.offset <= received) {
        settling.push(this.verifyAndSettle(run[next++], body, first.offset, key));
      }
    };
    if (!inline && this.pool?.ready()) return this.fetchRunOnPool(this.pool, run, key);
    let body: Buffer;
    try {
      this.gets++;
      const progress = this.streamRuns && run.length > 1 ? { onProgress } : undefined;
      body = await this.store.get(key, { offset: first.offset, length: want }, progress);
      // Some servers ignore the end of a range (s3rver does for `bytes=0-0`): keep what we asked for.
      if (body.length > want) body = body.subarray(0, want);
    } catch (err) {
      return this.runFailed(run.slice(next), err, key, settling);
    }
    for (; next < run.length; next++) settling.push(this.verifyAndSettle(run[next], body, first.offset, key));
    await Promise.all(settling);
  }

  /** `fetchRun` on a fetch worker or thread (./fetchpool.ts), which verifies and caches (`flush` waits for that); a lost run's rest is fetched here. */
  private async fetchRunOnPool(pool: RunPool, run: Deferred[], key: string): Promise<void> {
    this.gets++;
    const refs = run.map((d) => d.ref);
    const done = pool.run(key, refs, this.streamRuns, {
      chunk: (i, bytes) => this.settle(run[i], bytes),
      bad: (i, err) => this.fail(run[i], err),
      cached: (i) => void (run[i].lease?.releaseLater(), (run[i].lease = undefined)),
    });
    const w: Promise<void> = done.catch(() => {}).finally(() => this.cacheWrites.delete(w));
    this.cacheWrites.add(w);
    try {
      await done;
    } catch (e) {
      const { error, next: n } = e as RunFailure; // no error: WorkerLost (anything else: the whole run again, never a hang)
      const next = typeof n === 'number' ? n : 0;
      if (error) return this.runFailed(run.slice(next), error, key, []);
      for (const d of run.slice(0, next)) d.lease?.releaseLater();
      if (next < run.length) await this.fetchRun(run.slice(next), true);
    }
  }

  /** The GET of a run failed: chunks of a pack GC deleted are read where they went, the others fail. */
  private async runFailed(rest: Deferred[], err: unknown, key: string, settling: Promise<void>[]): Promise<void> {
    if (isCairnError(err, 'NOT_FOUND')) {
      // The pack is gone: GC compacted it. Each chunk is read where it went, verified as ever.
      const moved = (d: Deferred) => this.forwarder.read(d.ref, err).then((b) => this.verifyAndSettle(d, b, d.ref.offset, key));
      settling.push(...rest.map((d) => moved(d).catch((e: unknown) => this.fail(d, e))));
    } else for (const d of rest) this.fail(d, err);
    await Promise.all(settling);
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

/** Groups loads into runs of chunks adjacent in the same pack (sorted by pack, offset). */
function groupRuns(items: Deferred[], maxBytes: number): Deferred[][] {
  const sorted = [...items].sort((a, b) => (a.ref.pack < b.ref.pack ? -1 : a.ref.pack > b.ref.pack ? 1 : a.ref.offset - b.ref.offset));
  const runs: Deferred[][] = [];
  let run: Deferred[] = [];
  let runBytes = 0;
  for (const d of sorted) {
    const prev = run[run.length - 1]?.ref;
    const adjacent = prev && prev.pack === d.ref.pack && prev.offset + prev.length === d.ref.offset;
    if (!adjacent || runBytes + d.ref.length > maxBytes) {
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
