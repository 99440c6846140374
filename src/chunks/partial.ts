/**
 * Partial-chunk reads: the blocks of a chunk a random read needs, fetched and verified without the
 * rest of the chunk.
 *
 * A v2 pack carries, per chunk, its outboard: the BLAKE3 chaining values of its blocks (32 KiB by
 * default; ./outboard.ts). A partial read of chunk `ref`:
 * 1. reads the pack's trailer once per pack (HEAD + a tail GET; memoised, single flight), finds the
 *    ref's entry (same offset, hash and length) and its outboard;
 * 2. checks the outboard against the ref's hash (the chunk's name, trusted: it comes from a verified
 *    record) — merged as BLAKE3 merges subtrees it must give that name (memoised per chunk);
 * 3. takes the blocks covering the bytes wanted from the block LRU (keyed `hash/blockBytes/index`,
 *    apart from whole chunks), else the host cache (when the outboard was found there too), else
 *    fetches them (one range GET per run of
 *    adjacent missing blocks); checks each block's CV (its bytes, length and position) against the
 *    verified outboard; keeps it in the LRU and (in the background) the host cache.
 * With a host cache, verified outboards and blocks are side entries there (`<hash>.ob`,
 * `<hash>.b<blockBytes>.<index>`), re-verified when read back (an outboard against the name, a block
 * against the outboard), so a new process reads them without the store (warm random reads).
 * Invariants: bytes returned were verified against a CV verified against the chunk's name, so a
 * read never returns wrong bytes (a block that does not match is CORRUPT); anything else that goes
 * wrong (a v1 pack, a chunk of one block, a trailer that cannot be read or parsed, an entry that does
 * not match the ref, an outboard that does not merge to the name) returns undefined, and the caller
 * fetches the whole chunk, verified as always; a block is never served as a whole chunk (separate
 * LRU, separate keys); store errors on block GETs propagate unchanged, and a failed fetch is
 * forgotten (the next read retries).
 */
import { CairnError, isCairnError } from '../errors.js';
import type { ByteRange, ObjectStore } from '../store/types.js';
import type { ChunkCache } from './cache.js';
import type { ChunkLru } from './memlru.js';
import { blockCvOf, outboardAsync } from './hash.js';
import { NativeFetchPool } from './nativefetch.js';
import { blockCount, CV_BYTES, verifyOutboard } from './outboard.js';
import { DEFAULT_BLOCK_BYTES, readPackTrailer, type PackTrailer } from './pack.js';
import type { ChunkRef } from './types.js';

/** Pack trailers kept in memory (each ~60 bytes per chunk plus 32 bytes per block). */
const MAX_TRAILERS = 256;
/** Verified outboards kept in memory (32 bytes per block, ~0.5 KiB per 1 MiB chunk). */
const MAX_VERIFIED = 8192;

/** What the partial reads of one reader did (for tests and the bench). */
export interface PartialStats {
  /** Reads served from blocks. */
  reads: number;
  /** Blocks fetched from the store (and verified). */
  blocks: number;
  /** Bytes of those blocks. */
  bytes: number;
  /** Range GETs of blocks. */
  gets: number;
  /** Trailer reads (HEAD + tail GET) of packs. */
  trailers: number;
  /** Outboards that did not merge to their chunk's name (damaged trailers): read whole instead. */
  badOutboards: number;
  /** Reads handed back to the whole-chunk path (no usable outboard). */
  fallbacks: number;
}

/** A block being loaded by one read, awaited by any. */
interface Block {
  g: number;
  promise: Promise<Buffer>;
  resolve(b: Buffer): void;
  reject(e: unknown): void;
}

function block(g: number): Block {
  let resolve!: (b: Buffer) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<Buffer>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {});
  return { g, promise, resolve, reject };
}

interface Located {
  /** Whether the outboard came from the host cache: only then are blocks looked up there (cold chunks cost no cache misses). */
  cached?: boolean;
  blockBytes: number;
  /** Verified block CVs of the chunk. */
  cvs: Uint8Array;
}

/**
 * Reads parts of chunks by verified blocks (see the module comment).
 *
 * @example
 * const pr = new PartialReader(store, 'volumes/v1/packs/', new ChunkLru(16 << 20));
 * const bytes = (await pr.read(ref, 4096, 135168)) ?? (await wholeChunk(ref)).subarray(4096, 135168);
 */
export class PartialReader {
  private readonly trailers = new Map<string, Promise<Map<number, { trailer: PackTrailer; i: number }> | undefined>>();
  private readonly verified = new Map<string, Located | null>();
  private readonly inflight = new Map<string, Promise<Buffer>>();
  readonly stats: PartialStats = { reads: 0, blocks: 0, bytes: 0, gets: 0, trailers: 0, badOutboards: 0, fallbacks: 0 };

  private readonly cacheWrites = new Set<Promise<void>>();

  /** The addon's fetch threads, for the block GETs of a plain S3 store (./nativefetch.ts; null: the store's own GETs). */
  private readonly native: NativeFetchPool | null;

  constructor(
    private readonly store: ObjectStore,
    private readonly packPrefix: string,
    private readonly blocks: ChunkLru,
    /** The host cache: verified blocks and outboards are kept there as side entries (never as the whole chunk). */
    private readonly cache: ChunkCache | null = null,
  ) {
    this.native = NativeFetchPool.for(store, cache);
  }

  /**
   * Bytes [from, to) of the chunk `ref` (0 ≤ from < to ≤ ref.length), from verified blocks; or
   * undefined when the chunk has no usable outboard (then read it whole). CORRUPT when a block does
   * not match its CV; the store's error when a GET fails.
   *
   * @example const part = await pr.read(ref, 65536, 196608);
   */
  async read(ref: ChunkRef, from: number, to: number): Promise<Buffer | undefined> {
    const loc = await this.locate(ref);
    if (!loc) {
      this.stats.fallbacks++;
      return undefined;
    }
    const B = loc.blockBytes;
    const g0 = Math.floor(from / B);
    const g1 = Math.floor((to - 1) / B);
    const got: Promise<Buffer>[] = [];
    const mine: Block[] = [];
    for (let g = g0; g <= g1; g++) {
      const id = `${ref.hash}/${B}/${g}`;
      const held = this.blocks.get(id);
      const pending = held ? Promise.resolve(held) : this.inflight.get(id);
      if (pending) got.push(pending);
      else {
        const blk = block(g);
        this.inflight.set(id, blk.promise);
        blk.promise
          .catch(() => {})
          .finally(() => {
            if (this.inflight.get(id) === blk.promise) this.inflight.delete(id);
          });
        mine.push(blk);
        got.push(blk.promise);
      }
    }
    if (mine.length > 0) this.load(ref, loc, mine).catch((err: unknown) => mine.forEach((m) => m.reject(err)));
    const parts = await Promise.all(got);
    this.stats.reads++;
    const out = Buffer.allocUnsafe(to - from);
    let o = 0;
    parts.forEach((b, k) => {
      const at = (g0 + k) * B;
      o += b.copy(out, o, Math.max(0, from - at), Math.min(b.length, to - at));
    });
    return out;
  }

  /** Settles blocks of `ref` (in order): from the host cache, else one range GET per run of adjacent ones. */
  private async load(ref: ChunkRef, loc: Located, blocks: Block[]): Promise<void> {
    const B = loc.blockBytes;
    let missing = blocks;
    if (this.cache && loc.cached) {
      const cache = this.cache;
      const hits = await Promise.all(blocks.map((b) => cache.getPart(ref.hash, `b${B}.${b.g}`, (d) => this.matches(ref, loc, b.g, d))));
      missing = [];
      blocks.forEach((b, i) => {
        const hit = hits[i];
        if (hit) this.settle(ref, B, b, hit);
        else missing.push(b);
      });
    }
    const runs: Block[][] = [];
    for (const b of missing) {
      const run = runs[runs.length - 1];
      if (run && run[run.length - 1].g === b.g - 1) run.push(b);
      else runs.push([b]);
    }
    await Promise.all(runs.map((run) => this.fetchRun(ref, loc, run)));
  }

  /** One range GET for adjacent blocks of `ref`; each verified against its CV, settled, cached. */
  private async fetchRun(ref: ChunkRef, loc: Located, run: Block[]): Promise<void> {
    const B = loc.blockBytes;
    const start = run[0].g * B;
    const end = Math.min(ref.length, (run[run.length - 1].g + 1) * B);
    const key = this.packPrefix + ref.pack;
    this.stats.gets++;
    let body: Buffer;
    try {
      body = (await this.rangeGet(key, { offset: ref.offset + start, length: end - start })).subarray(0, end - start);
    } catch (err) {
      for (const b of run) b.reject(err);
      return;
    }
    for (const b of run) {
      const bytes = body.subarray(b.g * B - start, Math.min(ref.length, (b.g + 1) * B) - start);
      if (!this.matches(ref, loc, b.g, bytes)) {
        b.reject(
          new CairnError('CORRUPT', `block ${b.g} of chunk ${ref.hash} does not match its hash`, {
            key,
            pack: ref.pack,
            offset: ref.offset + b.g * B,
            hash: ref.hash,
            store: this.store.url,
            hint: 'the stored object is damaged; restore it from a replica or re-upload the file',
          }),
        );
        continue;
      }
      this.stats.blocks++;
      this.stats.bytes += bytes.length;
      this.settle(ref, B, b, bytes);
      if (this.cache) this.background(this.cache.putPart(ref.hash, `b${B}.${b.g}`, bytes));
    }
  }

  /** Whether `bytes` are block `g` of `ref`: its exact length, and its CV the verified one. */
  private matches(ref: ChunkRef, loc: Located, g: number, bytes: Uint8Array): boolean {
    const B = loc.blockBytes;
    if (bytes.length !== Math.min(B, ref.length - g * B)) return false;
    return Buffer.from(blockCvOf(bytes, g, B)).equals(loc.cvs.subarray(g * CV_BYTES, (g + 1) * CV_BYTES));
  }

  /**
   * Bytes `range` of `key`: on the addon's fetch threads when it has them for this store (a block
   * GET through the SDK costs ~2 ms of CPU), else — or when that GET failed — through the store,
   * whose retries and errors apply. Unchecked here: the caller checks every block against its CV.
   */
  private async rangeGet(key: string, range: ByteRange): Promise<Buffer> {
    if (this.native?.ready()) {
      try {
        return await this.native.get(key, range);
      } catch {
        // the store's GET below retries, or says why
      }
    }
    return this.store.get(key, range);
  }

  private settle(ref: ChunkRef, B: number, b: Block, bytes: Buffer): void {
    this.blocks.set(`${ref.hash}/${B}/${b.g}`, bytes);
    b.resolve(bytes);
  }

  /**
   * Keeps the outboard of a whole chunk the caller verified (`bytes` are `ref`'s) in the host cache
   * as `<hash>.ob` (DEFAULT_BLOCK_BYTES blocks; computed off the event loop): a random reader of a
   * chunk cached whole ahead of it (`cairn volume warmup`) then loads only the blocks it needs from
   * its first READ, in the addon (native/nread.c) as here, instead of the whole chunk.
   *
   * @example await pr.keepOutboard(ref, verifiedBytes);
   */
  async keepOutboard(ref: ChunkRef, bytes: Uint8Array): Promise<void> {
    if (!this.cache || bytes.length !== ref.length || blockCount(ref.length, DEFAULT_BLOCK_BYTES) < 2) return;
    const cvs = await outboardAsync(bytes, DEFAULT_BLOCK_BYTES);
    const entry = Buffer.alloc(4 + cvs.length);
    entry.writeUInt32LE(DEFAULT_BLOCK_BYTES, 0);
    entry.set(cvs, 4);
    await this.cache.putPart(ref.hash, 'ob', entry);
  }

  /** Tracks a cache write that reads do not wait for (`flush` does). */
  private background(p: Promise<void>): void {
    const w: Promise<void> = p.catch(() => {}).finally(() => this.cacheWrites.delete(w));
    this.cacheWrites.add(w);
  }

  /**
   * Waits for the cache writes started so far.
   *
   * @example await pr.flush();
   */
  async flush(): Promise<void> {
    while (this.cacheWrites.size > 0) await Promise.all([...this.cacheWrites]);
  }

  /** The verified outboard of `ref`, or undefined when it has none usable (memoised per chunk and place). */
  private async locate(ref: ChunkRef): Promise<Located | undefined> {
    const id = `${ref.hash}@${ref.pack}:${ref.offset}`; // a chunk copied to another pack has its own trailer
    const memo = this.verified.get(id);
    if (memo !== undefined) return memo ?? undefined;
    const cached = await this.cache?.getPart(
      ref.hash,
      'ob',
      (d) => d.length > 4 && verifyOutboard(d.subarray(4), ref.hash, ref.length, d.readUInt32LE(0)),
    );
    if (cached) return this.memo(id, { cached: true, blockBytes: cached.readUInt32LE(0), cvs: cached.subarray(4) });
    const index = await this.trailer(ref.pack);
    if (!index) return undefined; // not memoised: the trailer read is retried by a later read
    const hit = index.get(ref.offset);
    let loc: Located | null = null;
    if (hit) {
      const { trailer, i } = hit;
      const e = trailer.entries[i];
      const ob = trailer.outboards[i];
      if (e.hash === ref.hash && e.length === ref.length && ob.length > 0) {
        if (verifyOutboard(ob, ref.hash, ref.length, trailer.blockBytes)) loc = { blockBytes: trailer.blockBytes, cvs: ob };
        else this.stats.badOutboards++;
      }
    }
    if (loc && this.cache) {
      const entry = Buffer.alloc(4 + loc.cvs.length);
      entry.writeUInt32LE(loc.blockBytes, 0);
      entry.set(loc.cvs, 4);
      this.background(this.cache.putPart(ref.hash, 'ob', entry));
    }
    return this.memo(id, loc);
  }

  private memo(id: string, loc: Located | null): Located | undefined {
    if (this.verified.size >= MAX_VERIFIED) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(id, loc);
    return loc ?? undefined;
  }

  /** The trailer of a pack, by chunk offset (memoised; undefined when it cannot be read: a failure is forgotten). */
  private trailer(pack: string): Promise<Map<number, { trailer: PackTrailer; i: number }> | undefined> {
    let p = this.trailers.get(pack);
    if (p) return p;
    this.stats.trailers++;
    p = readPackTrailer(this.store, this.packPrefix + pack).then(
      (trailer) => new Map(trailer.entries.map((e, i) => [e.offset, { trailer, i }])),
      (err: unknown) => {
        // A damaged or newer trailer stays unusable; a store error is retried by a later read.
        if (!isCairnError(err, 'CORRUPT') && !isCairnError(err, 'UNSUPPORTED')) this.trailers.delete(pack);
        return undefined;
      },
    );
    this.trailers.set(pack, p);
    if (this.trailers.size > MAX_TRAILERS) this.trailers.delete(this.trailers.keys().next().value!);
    return p;
  }
}
