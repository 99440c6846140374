/**
 * Partial-chunk reads: the blocks of a chunk a random read needs, fetched and verified without the
 * rest of the chunk.
 *
 * A v2 pack carries, per chunk, its outboard: the BLAKE3 chaining values of its blocks (32 KiB by
 * default; ./outboard.ts). A partial read of chunk `ref`:
 * 1. reads the pack's trailer once per pack (HEAD + 2 range GETs; memoised, single flight), finds the
 *    ref's entry (same offset, hash and length) and its outboard;
 * 2. checks the outboard against the ref's hash (the chunk's name, trusted: it comes from a verified
 *    record) — merged as BLAKE3 merges subtrees it must give that name (memoised per chunk);
 * 3. fetches the blocks covering the bytes wanted that are not held (one range GET per run of
 *    adjacent missing blocks), checks each block's CV (its bytes and its position) against the
 *    verified outboard, and keeps it in a block LRU keyed `hash/block`, apart from whole chunks.
 * Invariants: bytes returned were verified against a CV verified against the chunk's name, so a
 * read never returns wrong bytes (a block that does not match is CORRUPT); anything else that goes
 * wrong (a v1 pack, a chunk of one block, a trailer that cannot be read or parsed, an entry that does
 * not match the ref, an outboard that does not merge to the name) returns undefined, and the caller
 * fetches the whole chunk, verified as always; a block is never served as a whole chunk (separate
 * LRU, separate keys); store errors on block GETs propagate unchanged, and a failed fetch is
 * forgotten (the next read retries).
 */
import { CairnError, isCairnError } from '../errors.js';
import type { ObjectStore } from '../store/types.js';
import type { ChunkLru } from './memlru.js';
import { blockCv, CV_BYTES, verifyOutboard } from './outboard.js';
import { readPackTrailer, type PackTrailer } from './pack.js';
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
  /** Trailer reads (HEAD + footer + trailer GETs) of packs. */
  trailers: number;
  /** Outboards that did not merge to their chunk's name (damaged trailers): read whole instead. */
  badOutboards: number;
  /** Reads handed back to the whole-chunk path (no usable outboard). */
  fallbacks: number;
}

interface Located {
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

  constructor(
    private readonly store: ObjectStore,
    private readonly packPrefix: string,
    private readonly blocks: ChunkLru,
  ) {}

  /**
   * The block size of `ref`'s outboard once it is known and verified (memoised), else undefined
   * (no usable outboard: read the chunk whole).
   *
   * @example const b = await pr.blockBytes(ref); if (b && b * 2 < ref.length) …
   */
  async blockBytes(ref: ChunkRef): Promise<number | undefined> {
    return (await this.locate(ref))?.blockBytes;
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
    let run: number[] = [];
    const flush = (): void => {
      if (run.length > 0) got.push(...this.fetchBlocks(ref, loc, run));
      run = [];
    };
    for (let g = g0; g <= g1; g++) {
      const key = `${ref.hash}/${g}`;
      const held = this.blocks.get(key);
      const pending = held ? Promise.resolve(held) : this.inflight.get(key);
      if (pending) {
        flush();
        got.push(pending);
      } else run.push(g);
    }
    flush();
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

  /** One range GET for blocks `gs` (adjacent) of `ref`; one promise per block, verified. */
  private fetchBlocks(ref: ChunkRef, loc: Located, gs: number[]): Promise<Buffer>[] {
    const B = loc.blockBytes;
    const start = gs[0] * B;
    const end = Math.min(ref.length, (gs[gs.length - 1] + 1) * B);
    const key = this.packPrefix + ref.pack;
    this.stats.gets++;
    const body = this.store.get(key, { offset: ref.offset + start, length: end - start }).then((b) => b.subarray(0, end - start));
    return gs.map((g) => {
      const id = `${ref.hash}/${g}`;
      const p = body.then((b) => {
        const bytes = b.subarray(g * B - start, Math.min(ref.length, (g + 1) * B) - start);
        const cv = blockCv(bytes, g, B);
        const want = loc.cvs.subarray(g * CV_BYTES, (g + 1) * CV_BYTES);
        if (bytes.length !== Math.min(B, ref.length - g * B) || !Buffer.from(cv).equals(want)) {
          throw new CairnError('CORRUPT', `block ${g} of chunk ${ref.hash} does not match its hash`, {
            key,
            pack: ref.pack,
            offset: ref.offset + g * B,
            hash: ref.hash,
            store: this.store.url,
            hint: 'the stored object is damaged; restore it from a replica or re-upload the file',
          });
        }
        this.stats.blocks++;
        this.stats.bytes += bytes.length;
        this.blocks.set(id, bytes);
        return bytes;
      });
      p.catch(() => {}).finally(() => {
        if (this.inflight.get(id) === p) this.inflight.delete(id);
      });
      this.inflight.set(id, p);
      return p;
    });
  }

  /** The verified outboard of `ref`, or undefined when it has none usable (memoised per chunk and place). */
  private async locate(ref: ChunkRef): Promise<Located | undefined> {
    const id = `${ref.hash}@${ref.pack}:${ref.offset}`; // a chunk copied to another pack has its own trailer
    const memo = this.verified.get(id);
    if (memo !== undefined) return memo ?? undefined;
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
