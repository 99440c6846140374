/**
 * Prefetch: what a read starts fetching besides its own chunks, without waiting for it.
 *
 * - Sequential read-ahead over a window of the chunks after a read: the chunks not yet held or in
 *   flight are started once there are at least window/4 of them (or the window reaches the end of
 *   the file), in batches of window/4 adjacent chunks — one range GET each when cold — so a cold
 *   sequential reader issues a few large range GETs in parallel rather than one small GET per chunk.
 * - Pack neighbours (small files): the 4 MiB block of the pack around a chunk, and the next block,
 *   are fetched with one range GET each (their chunks named by the pack's trailer index, read once
 *   per pack), so files uploaded together cost a few GETs, not one each.
 * Invariants: prefetch never fails a read (errors are dropped here and surface on the read that
 * needs the chunk); everything it fetches goes through the fetcher, so it is verified and single
 * flight like any read.
 */
import type { ObjectStore } from '../store/types.js';
import type { ChunkFetcher } from './fetch.js';
import { readPackIndex } from './pack.js';
import type { ChunkRef } from './types.js';

/** Pack neighbours are fetched by blocks of this many pack bytes (chunks by start offset). */
const BLOCK_BYTES = 4 * 1024 * 1024;
/** Pack indexes kept in memory for neighbour prefetch (each ~100 bytes per chunk). */
const MAX_PACK_INDEXES = 32;
/** Pack blocks remembered as prefetched (then the memory is cleared and they may be fetched again). */
const MAX_BLOCKS_DONE = 100_000;

/**
 * Starts read-ahead and pack-neighbour fetches through a ChunkFetcher.
 *
 * @example
 * const pre = new Prefetcher(fetcher, store, 'volumes/v1/packs/');
 * pre.readAhead(refs.slice(i + 1, i + 17), 16);
 */
export class Prefetcher {
  /** Pack id -> its chunks in pack order (from the trailer index), for neighbour prefetch. */
  private readonly packIndexes = new Map<string, Promise<ChunkRef[]>>();
  /** `pack:block` of the pack blocks already prefetched as neighbours. */
  private readonly blocksDone = new Set<string>();

  constructor(
    private readonly fetcher: ChunkFetcher,
    private readonly store: ObjectStore,
    private readonly packPrefix: string,
  ) {}

  /**
   * Starts fetching chunks without waiting; errors are ignored here.
   *
   * @example pre.prefetch(refs.slice(i + 1, i + 3));
   */
  prefetch(refs: readonly ChunkRef[]): void {
    for (const p of this.fetcher.fetchEach(refs)) p.catch(() => {});
  }

  /**
   * Readahead over `window` (the next chunks of a sequential reader, `size` of them unless the file
   * ends first): starts the chunks not yet held or in flight once there are at least size/4 of
   * them (or the window reaches the end of the file), in batches of size/4 adjacent chunks.
   *
   * @example pre.readAhead(refs.slice(last + 1, last + 1 + 16), 16);
   */
  readAhead(window: readonly ChunkRef[], size: number): void {
    const step = Math.max(1, Math.floor(size / 4));
    const missing = window.filter((r) => this.fetcher.idle(r.hash));
    if (missing.length === 0 || (missing.length < step && window.length === size)) return;
    for (let i = 0; i < missing.length; i += step) this.prefetch(missing.slice(i, i + step));
  }

  /**
   * Starts fetching the chunks of the pack block holding `ref` and of the next block (once per
   * block), named by the pack's trailer index. Errors are ignored: this only warms the memory LRU
   * and the cache.
   *
   * @example pre.neighbours(entry.chunks[0]);
   */
  neighbours(ref: ChunkRef): void {
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
          const wanted = index.slice(lo, hi).filter((r) => this.fetcher.idle(r.hash));
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
