/**
 * Prefetch: what a read starts fetching besides its own chunks, without waiting for it.
 *
 * - Sequential read-ahead over a window of the chunks after a read: the chunks not yet held or in
 *   flight are started once there are at least window/4 of them (or the window reaches the end of
 *   the file), in batches of window/4 adjacent chunks and at most one range GET's bytes — one
 *   range GET each when cold — so a cold
 *   sequential reader issues a few large range GETs in parallel rather than one small GET per chunk.
 * - Pack-order read-ahead (`packAhead`, for readers that ask for one chunk at a time, as the native
 *   read path does): a ReadCursor per pack in the order of the pack's trailer index, so a file
 *   read chunk by chunk in order (its chunks sit in pack order) gets the same growing window and
 *   large range GETs as a `read` with a cursor; chunks asked for out of order get none.
 * - Pack neighbours (small files): the 4 MiB block of the pack around a chunk, and the next block,
 *   are fetched with one range GET each (their chunks named by the pack's trailer index, read once
 *   per pack), so files uploaded together cost a few GETs, not one each.
 * Invariants: prefetch never fails a read (errors are dropped here and surface on the read that
 * needs the chunk); everything it fetches goes through the fetcher, so it is verified and single
 * flight like any read.
 */
import type { ObjectStore } from '../store/types.js';
import { MERGE_BYTES, type ChunkFetcher } from './fetch.js';
import { readPackIndex } from './pack.js';
import type { ChunkRef } from './types.js';

/** Pack neighbours are fetched by blocks of this many pack bytes (chunks by start offset). */
const BLOCK_BYTES = 4 * 1024 * 1024;
/** Pack indexes kept in memory for neighbour prefetch and pack-order read-ahead (each ~100 bytes per chunk). */
const MAX_PACK_INDEXES = 64;
/**
 * A cursor's read-ahead goes in batches of at least this / 4 chunks, even while its window is
 * smaller (window/4 of the first window, 4, gave single-chunk GETs at every pack start and at the
 * start of every file: a third of a cold read's GETs on Ceph RGW).
 */
export const BATCH_WINDOW = 16;
/** Packs with a pack-order read cursor (the most recently used are kept). */
const MAX_PACK_CURSORS = 64;
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
  /** Pack id -> the read state of the chunk-by-chunk reader of that pack (`packAhead`). */
  private readonly packCursors = new Map<string, ReadCursor>();
  /** Pack id -> its index, once read (`packIndexes` holds the promises). */
  private readonly indexReady = new Map<string, ChunkRef[]>();
  /** Pack id -> the chunk the read-ahead of the asks that started its index waits for (see `packAhead`). */
  private readonly gates = new Map<string, Promise<unknown>>();
  /** Pack id -> end (pack offset) of the chunk last asked for through `packAhead`. */
  private readonly lastAsk = new Map<string, number>();
  /** Window of the cursor `packAhead` advanced last (a new pack's cursor starts with it). */
  private lastWindow = INITIAL_WINDOW_CHUNKS;
  /** Pack id -> the tick its index read started in (see `tick`). */
  private readonly indexTick = new Map<string, number>();
  private ticks = 0;
  private tickQueued = false;

  constructor(
    private readonly fetcher: ChunkFetcher,
    private readonly store: ObjectStore,
    private readonly packPrefix: string,
    /** Bytes of the longest range GET (the fetcher's `rangeBytes`): read-ahead batches stay within it. */
    private readonly rangeBytes: number = MERGE_BYTES,
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
   * them (or the window reaches the end of the file), in batches of size/4 adjacent chunks (and at
   * most `rangeBytes`).
   *
   * @example pre.readAhead(refs.slice(last + 1, last + 1 + 16), 16);
   */
  readAhead(window: readonly ChunkRef[], size: number): void {
    const step = Math.max(1, Math.floor(size / 4));
    const missing = window.filter((r) => this.fetcher.idle(r.hash));
    if (missing.length === 0 || (missing.length < step && window.length === size)) return;
    // A batch longer than one range GET would be split into a full GET and a small one.
    for (const batch of splitRuns(missing, this.rangeBytes, step)) this.prefetch(batch);
  }

  /**
   * Read-ahead for a reader asking for one chunk at a time (`readChunk`): records `ref` in its
   * pack's cursor (pack order, from the pack's trailer index) and, while those requests stay
   * sequential, keeps the cursor's window of the chunks after it fetching, as `readAhead` does.
   * A pack whose index cannot be read, or a chunk not in it, gets no read-ahead. `maxWindow`
   * bounds the window (chunks).
   *
   * @example pre.packAhead(ref, 32); // then readChunk(ref)
   */
  packAhead(ref: ChunkRef, maxWindow: number, own?: Promise<unknown>): void {
    const known = this.indexReady.get(ref.pack);
    if (known) this.packAheadIn(known, ref, maxWindow);
    else {
      // The asks that start a pack's index (a file's first chunks, loaded at open) read ahead once
      // their own chunk (`own`) is in, so that its GET has the store to itself (time to first byte).
      const first = !this.packIndexes.has(ref.pack) || this.indexTick.get(ref.pack) === this.tick();
      const index = this.packIndex(ref.pack);
      // All of them wait for the first one's chunk (the file's first chunk: what the reader needs first).
      let gate: Promise<unknown> | undefined;
      if (first && own) this.gates.set(ref.pack, (gate = this.gates.get(ref.pack) ?? own));
      index.then(
        (i) => {
          this.gates.delete(ref.pack);
          this.packAheadIn(i, ref, maxWindow, gate);
        },
        () => this.gates.delete(ref.pack),
      );
    }
    this.lastAsk.delete(ref.pack);
    this.lastAsk.set(ref.pack, ref.offset + ref.length);
    if (this.lastAsk.size > MAX_PACK_CURSORS) this.lastAsk.delete(this.lastAsk.keys().next().value!);
  }

  /**
   * When `ref` continues the chunks last asked for in its pack (`packAhead`) and that pack's index
   * is still being read: a promise settled once it is (either way), so that the caller fetches
   * `ref` with the read-ahead the index allows rather than alone. Else undefined.
   *
   * @example const wait = pre.indexPendingFor(ref); if (wait) await wait;
   */
  indexPendingFor(ref: ChunkRef): Promise<unknown> | undefined {
    if (this.indexReady.has(ref.pack) || this.lastAsk.get(ref.pack) !== ref.offset) return undefined;
    // Chunks asked for in the tick that started the index go out together (fetchBatched), now.
    if (this.indexTick.get(ref.pack) === this.tick()) return undefined;
    return this.packIndexes.get(ref.pack);
  }

  /** A number that changes between ticks (synchronous runs) of the event loop. */
  private tick(): number {
    if (!this.tickQueued) {
      this.tickQueued = true;
      queueMicrotask(() => {
        this.ticks++;
        this.tickQueued = false;
      });
    }
    return this.ticks;
  }

  /** Advances the pack's cursor for `ref` now; its read-ahead starts now, or once `own` (the ask's chunk) is in. */
  private packAheadIn(index: readonly ChunkRef[], ref: ChunkRef, maxWindow: number, own?: Promise<unknown>): void {
    const i = lowerBoundOffset(index, ref.offset);
    if (index[i]?.offset !== ref.offset || index[i].hash !== ref.hash) return;
    let cursor = this.packCursors.get(ref.pack);
    if (cursor) this.packCursors.delete(ref.pack);
    // A file read on from the end of another pack into this one keeps its window.
    else cursor = new ReadCursor({ max: maxWindow, initial: i === 0 ? this.lastWindow : undefined });
    this.packCursors.set(ref.pack, cursor);
    if (this.packCursors.size > MAX_PACK_CURSORS) this.packCursors.delete(this.packCursors.keys().next().value!);
    const ahead = cursor.advance(ref.offset, ref.offset + ref.length, i, i);
    this.lastWindow = ahead > 0 ? cursor.window : INITIAL_WINDOW_CHUNKS;
    // Batches of at least BATCH_WINDOW/4 chunks while the window is small: its asks are contiguous.
    const start = (): void => this.readAhead(index.slice(i + 1, i + 1 + ahead), Math.max(ahead, BATCH_WINDOW));
    if (ahead > 0 && own) own.then(start, () => undefined);
    else if (ahead > 0) start();
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
    this.indexTick.set(pack, this.tick());
    p.then(
      (index) => {
        this.indexTick.delete(pack);
        if (this.packIndexes.get(pack) === p) this.indexReady.set(pack, index);
      },
      () => {
        this.indexTick.delete(pack);
        if (this.packIndexes.get(pack) === p) this.packIndexes.delete(pack);
      },
    );
    this.packIndexes.set(pack, p);
    if (this.packIndexes.size > MAX_PACK_INDEXES) {
      const oldest = this.packIndexes.keys().next().value!;
      this.packIndexes.delete(oldest);
      this.indexReady.delete(oldest);
    }
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

/** Read-ahead window of a fresh cursor, and after a seek, in chunks (about 1 MiB each). */
export const INITIAL_WINDOW_CHUNKS = 4;
/** Largest read-ahead window, in chunks: well inside the memory LRU's default 64 MiB. */
export const MAX_WINDOW_CHUNKS = 32;
/** A read starting this far before where the last one ended still counts as sequential (reordered reads). */
const BACKWARD_SLACK_BYTES = 256 * 1024;

/**
 * The read state of one reader of one file (one per open file handle): sequential detection and an
 * adaptive read-ahead window. Like mountpoint-s3's prefetcher, the window starts small, doubles
 * each time a sequential reader moves into a new chunk, up to a cap, and falls back to the start
 * size on a seek; a random reader gets no read-ahead. Two readers of one file each keep their
 * own cursor, so neither resets the other's window.
 *
 * Sequential means: the first read starts at 0, or a read starts where the last one ended, a little
 * before (reads that arrive reordered, as FUSE's parallel readahead sends them), or forward inside
 * the window already being fetched (a skip the read-ahead covers).
 *
 * @example
 * const cursor = new ReadCursor();
 * await chunks.read(refs, 0, 131072, { cursor });      // window 4 chunks
 * await chunks.read(refs, 131072, 131072, { cursor }); // sequential: same window until a new chunk
 */
export class ReadCursor {
  /** Read-ahead window in chunks (what the next sequential read keeps in flight after it). */
  window: number;
  private readonly initial: number;
  private readonly max: number;
  /** Furthest file offset read so far in this run (-1: nothing read yet). */
  private next = -1;
  /** Furthest chunk index read so far in this run. */
  private chunk = -1;

  constructor(opts: { initial?: number; max?: number } = {}) {
    this.max = Math.max(1, opts.max ?? MAX_WINDOW_CHUNKS);
    this.initial = Math.min(this.max, Math.max(1, opts.initial ?? INITIAL_WINDOW_CHUNKS));
    this.window = this.initial;
  }

  /**
   * Records a read of file bytes [offset, end) that covers chunks first..last, and returns how many
   * chunks after `last` to keep fetching (0: a random read, no read-ahead).
   *
   * @example const ahead = cursor.advance(0, 131072, 0, 0); // 4
   */
  advance(offset: number, end: number, first: number, last: number): number {
    const sequential =
      this.next < 0
        ? offset === 0
        : offset >= this.next - BACKWARD_SLACK_BYTES && (offset <= this.next || first <= this.chunk + this.window);
    if (!sequential) {
      this.window = this.initial;
      this.next = end;
      this.chunk = last;
      return 0;
    }
    if (this.chunk >= 0 && last > this.chunk) this.window = Math.min(this.max, this.window * 2);
    this.next = Math.max(this.next, end);
    this.chunk = Math.max(this.chunk, last);
    return this.window;
  }
}

/**
 * `refs` in order, cut into batches of at most `maxCount` chunks and `maxBytes` bytes (a chunk
 * bigger than `maxBytes` is a batch of its own): one range GET each.
 *
 * @example splitRuns(refs, 8 << 20) // [[r0, r1, …], [r7, …]]
 */
export function splitRuns(refs: readonly ChunkRef[], maxBytes: number, maxCount = Infinity): ChunkRef[][] {
  const batches: ChunkRef[][] = [];
  let batch: ChunkRef[] = [];
  let bytes = 0;
  for (const r of refs) {
    if (batch.length > 0 && (batch.length >= maxCount || bytes + r.length > maxBytes)) {
      batches.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(r);
    bytes += r.length;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}
