import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { ChunkStore } from '../../src/chunks/chunkstore.js';
import { INITIAL_WINDOW_CHUNKS, MAX_WINDOW_CHUNKS, ReadCursor, splitRuns } from '../../src/chunks/prefetch.js';
import type { ChunkRef } from '../../src/chunks/types.js';
import { MemoryStore } from '../../src/store/memory.js';
import type { ByteRange } from '../../src/store/types.js';

const PREFIX = 'volumes/v1/packs/';
const MiB = 1024 * 1024;
const STEP = 128 * 1024;

/** A MemoryStore that counts range GETs and delays them a little (as a real store would). */
class CountingStore extends MemoryStore {
  gets = 0;
  override async get(key: string, range?: ByteRange): Promise<Buffer> {
    this.gets++;
    await new Promise((r) => setTimeout(r, 2));
    return super.get(key, range);
  }
}

async function fixture(size: number): Promise<{ store: CountingStore; refs: ChunkRef[]; data: Buffer }> {
  const store = new CountingStore();
  const data = crypto.randomBytes(size);
  const w = new ChunkStore({ store, packPrefix: PREFIX, cache: null }).writer();
  const refs = await w.write(data);
  await w.finish();
  return { store, refs, data };
}

describe('ReadCursor', () => {
  it('starts small, doubles as a sequential reader enters new chunks, up to the cap', () => {
    const c = new ReadCursor();
    assert.equal(c.advance(0, STEP, 0, 0), INITIAL_WINDOW_CHUNKS);
    assert.equal(c.advance(STEP, 2 * STEP, 0, 0), INITIAL_WINDOW_CHUNKS, 'same chunk: same window');
    const seen: number[] = [];
    for (let i = 1; i < 10; i++) seen.push(c.advance(i * MiB, (i + 1) * MiB, i, i));
    assert.deepEqual(seen.slice(0, 3), [2 * INITIAL_WINDOW_CHUNKS, 4 * INITIAL_WINDOW_CHUNKS, 8 * INITIAL_WINDOW_CHUNKS]);
    assert.equal(seen[seen.length - 1], MAX_WINDOW_CHUNKS, 'capped');
    assert.ok(seen.every((w) => w <= MAX_WINDOW_CHUNKS));
  });

  it('resets on a seek: a random read gets no read-ahead, the next sequential one the start window', () => {
    const c = new ReadCursor();
    for (let i = 0; i < 8; i++) c.advance(i * MiB, (i + 1) * MiB, i, i);
    assert.equal(c.window, MAX_WINDOW_CHUNKS);
    assert.equal(c.advance(100 * MiB, 100 * MiB + STEP, 100, 100), 0, 'far forward seek');
    assert.equal(c.window, INITIAL_WINDOW_CHUNKS);
    assert.equal(c.advance(100 * MiB + STEP, 100 * MiB + 2 * STEP, 100, 100), INITIAL_WINDOW_CHUNKS);
    assert.equal(c.advance(3 * MiB, 3 * MiB + STEP, 3, 3), 0, 'backward seek');
    assert.equal(new ReadCursor().advance(5 * MiB, 6 * MiB, 5, 5), 0, 'a first read not at 0 is random');
  });

  it('counts reordered reads and skips inside the window as sequential', () => {
    const c = new ReadCursor();
    c.advance(0, 2 * STEP, 0, 0);
    assert.equal(c.advance(STEP, 3 * STEP, 0, 0), INITIAL_WINDOW_CHUNKS, 'a little before the end: reordered');
    assert.equal(c.advance(3 * MiB, 3 * MiB + STEP, 3, 3), 2 * INITIAL_WINDOW_CHUNKS, 'skip inside the window');
  });
});

describe('ChunkStore reads with a cursor per reader', () => {
  it('two interleaved sequential readers of one file keep their own windows (a shared one resets)', async () => {
    const { store, refs, data } = await fixture(96 * MiB);
    const half = Math.floor(data.length / 2 / STEP) * STEP;
    async function run(cursors: [ReadCursor, ReadCursor]): Promise<number> {
      const cs = new ChunkStore({ store, packPrefix: PREFIX, cache: null });
      const before = store.gets;
      for (let off = 0; off < half; off += STEP) {
        for (const [k, base] of [
          [0, 0],
          [1, half],
        ] as const) {
          const at = base + off;
          assert.deepEqual(await cs.read(refs, at, STEP, { cursor: cursors[k] }), data.subarray(at, at + STEP));
        }
      }
      return store.gets - before;
    }
    const a = new ReadCursor();
    const b = new ReadCursor();
    const own = await run([a, b]);
    assert.equal(a.window, MAX_WINDOW_CHUNKS);
    assert.equal(b.window, MAX_WINDOW_CHUNKS);
    const shared = new ReadCursor();
    const one = await run([shared, shared]);
    assert.equal(shared.window, INITIAL_WINDOW_CHUNKS, 'the other reader reset it');
    // Own cursors: read-ahead batches (window/4 chunks per GET); shared: about one GET per chunk.
    assert.ok(own * 2 < one, `own cursors ${own} GETs, shared ${one} GETs, ${refs.length} chunks`);
  });

  it('readCached advances the cursor only when it serves the read', async () => {
    const { refs, store } = await fixture(8 * MiB);
    const cs = new ChunkStore({ store, packPrefix: PREFIX, cache: null });
    const cursor = cs.cursor();
    const buf = Buffer.alloc(STEP);
    assert.equal(cs.readCached(refs, 5 * MiB, STEP, buf, { cursor }), undefined, 'cold');
    assert.equal(cursor.advance(0, STEP, 0, 0), INITIAL_WINDOW_CHUNKS, 'the miss did not count as a read at 5 MiB');
  });
});

describe('ChunkStore.cursor', () => {
  it('bounds the window by half the memory LRU (a bigger window would be evicted before it is read)', () => {
    const store = new MemoryStore();
    assert.equal(readAll(new ChunkStore({ store, packPrefix: PREFIX, cache: null }).cursor()), MAX_WINDOW_CHUNKS);
    assert.equal(readAll(new ChunkStore({ store, packPrefix: PREFIX, cache: null, memoryBytes: 16 * MiB }).cursor()), 8);
    assert.equal(readAll(new ChunkStore({ store, packPrefix: PREFIX, cache: null, memoryBytes: 0 }).cursor()), INITIAL_WINDOW_CHUNKS);
  });
});

/** The window a cursor reaches after a long sequential read of 1 MiB chunks. */
function readAll(c: ReadCursor): number {
  for (let i = 0; i < 100; i++) c.advance(i * MiB, (i + 1) * MiB, i, i);
  return c.window;
}

describe('splitRuns', () => {
  const ref = (i: number, length: number): ChunkRef => ({ hash: `h${i}`, pack: 'p', offset: i * 10, length });
  const sizes = (b: ChunkRef[][]) => b.map((x) => x.map((r) => r.length));
  it('cuts a run at the byte bound and the count bound; an oversized chunk is a batch of its own', () => {
    const refs = [ref(0, 3), ref(1, 3), ref(2, 3), ref(3, 10), ref(4, 1), ref(5, 1), ref(6, 1)];
    assert.deepEqual(sizes(splitRuns(refs, 6)), [[3, 3], [3], [10], [1, 1, 1]]);
    assert.deepEqual(sizes(splitRuns(refs, 100, 2)), [[3, 3], [3, 10], [1, 1], [1]]);
    assert.deepEqual(splitRuns([], 6), []);
    assert.deepEqual(splitRuns(refs, 100).flat(), refs, 'every chunk once, in order');
  });
});

/**
 * A sequential reader fed chunk by chunk through `readChunk`, as the native read path loads them
 * (src/fuse/lowlevel-nread.ts): the first 8 chunks at open, then, each time the reader enters a new
 * chunk, the 8th chunk after it; the reader waits for the chunk it is in, then takes 1 ms to use it
 * (the kernel's copy: a reader no faster than the store).
 */
async function nativeStyleRead(cs: ChunkStore, refs: readonly ChunkRef[]): Promise<Buffer[]> {
  const WINDOW = 8;
  const loads = new Map<number, Promise<Buffer>>();
  const load = (i: number): void => {
    if (i < refs.length && !loads.has(i)) loads.set(i, cs.readChunk(refs[i]!));
  };
  for (let i = 0; i < WINDOW; i++) load(i);
  const out: Buffer[] = [];
  for (let i = 0; i < refs.length; i++) {
    load(i);
    for (let k = i + 1; k <= i + WINDOW; k++) load(k);
    out.push(await loads.get(i)!);
    await new Promise((r) => setTimeout(r, 1));
  }
  return out;
}

/** A store with a latency and a bandwidth (2 ms + 1 ms per MiB per GET) that records the ranges it was asked for. */
class TimedStore extends MemoryStore {
  readonly ranges: ByteRange[] = [];
  /** When each GET of `ranges` started (performance.now()). */
  readonly starts: number[] = [];
  override async get(key: string, range?: ByteRange): Promise<Buffer> {
    const body = await super.get(key, range);
    if (range) {
      this.ranges.push(range);
      this.starts.push(performance.now());
    }
    await new Promise((r) => setTimeout(r, 2 + body.length / MiB));
    return body;
  }
}

async function timedFixture(size: number): Promise<{ store: TimedStore; refs: ChunkRef[]; data: Buffer }> {
  const store = new TimedStore();
  const data = crypto.randomBytes(size);
  const w = new ChunkStore({ store, packPrefix: PREFIX, cache: null }).writer();
  const refs = await w.write(data);
  await w.finish();
  store.ranges.length = 0;
  return { store, refs, data };
}

describe('ChunkStore.readChunk for a sequential reader (native reads)', () => {
  it('fetches the chunks in large range GETs, not one GET per chunk', async () => {
    const { store, refs, data } = await timedFixture(48 * MiB);
    const cs = new ChunkStore({ store, packPrefix: PREFIX, cache: null });
    const got = await nativeStyleRead(cs, refs);
    assert.deepEqual(Buffer.concat(got), data);
    const gets = store.ranges.length;
    // Chunks average ~1.15 MiB: one GET per chunk would be ~40. With read-ahead in pack order,
    // batches of up to 8 chunks (8 MiB) per GET; a pack's next asks wait for its index (one RTT) instead of
    // going alone; the first chunk of each batch of asks goes alone (time to first byte). At most 0.4 GETs per chunk.
    assert.ok(gets * 5 <= refs.length * 2, `${gets} GETs for ${refs.length} chunks`);
  });

  it('chunks asked for in one tick go out as two range GETs: the first chunk alone, then the rest', async () => {
    const { store, refs } = await timedFixture(6 * MiB);
    assert.ok(refs.length >= 3);
    const cs = new ChunkStore({ store, packPrefix: PREFIX, cache: null });
    await Promise.all(refs.slice(0, 3).map((r) => cs.readChunk(r)));
    const end = refs[2]!.offset + refs[2]!.length;
    // The pack's index (its last bytes, for read-ahead) aside: chunk 0 alone, chunks 1-2 in one GET.
    assert.deepEqual(
      store.ranges.filter((r) => r.offset < end),
      [
        { offset: 0, length: refs[0]!.length },
        { offset: refs[1]!.offset, length: end - refs[1]!.offset },
      ],
    );
  });

  it('at open, the read-ahead starts once the first chunk is in: its GET has the store to itself', async () => {
    const { store, refs } = await timedFixture(40 * MiB);
    const cs = new ChunkStore({ store, packPrefix: PREFIX, cache: null });
    const opened = refs.slice(0, 8).map((r) => cs.readChunk(r)); // what the native path loads at open
    await opened[0];
    const firstIn = performance.now();
    await Promise.all(opened);
    await new Promise((r) => setTimeout(r, 100));
    const end8 = refs[7]!.offset + refs[7]!.length;
    const pack = refs[0]!.pack;
    const ahead = store.ranges
      .map((r, k) => ({ r, at: store.starts[k]! }))
      .filter(({ r }) => r.offset >= end8 && r.length > 64 * 1024 && refs.some((x) => x.pack === pack && x.offset === r.offset));
    assert.ok(ahead.length > 0, 'read ahead past the first 8 chunks');
    assert.ok(
      ahead.every(({ at }) => at >= firstIn - 1),
      `read-ahead GETs started ${ahead.map(({ at }) => (at - firstIn).toFixed(1))} ms after the first chunk was in`,
    );
  });

  it('a random reader (chunks out of order) gets no read-ahead', async () => {
    const { store, refs } = await fixture(24 * MiB);
    const cs = new ChunkStore({ store, packPrefix: PREFIX, cache: null });
    const before = store.gets;
    // Random data cuts into 6 chunks or more (4 MiB at most each), ~21 on average: places by fraction.
    const order = [0.75, 0.15, 0.55, 0.35, 0.95].map((f) => Math.floor(f * refs.length));
    assert.equal(new Set(order).size, 5);
    for (const i of order) await cs.readChunk(refs[i]!);
    await new Promise((r) => setTimeout(r, 50));
    // 5 chunks, plus at most the pack's index (HEAD + GET): nothing read ahead.
    assert.ok(store.gets - before <= 5 + 2, `${store.gets - before} GETs`);
  });
});

describe('ChunkStore.read with a fresh cursor', () => {
  it('reads ahead its first window (4 chunks) with one range GET, not one per chunk', async () => {
    const { store, refs, data } = await timedFixture(24 * MiB);
    const cs = new ChunkStore({ store, packPrefix: PREFIX, cache: null });
    const cursor = cs.cursor();
    assert.deepEqual(await cs.read(refs, 0, STEP, { cursor }), data.subarray(0, STEP));
    await new Promise((r) => setTimeout(r, 100));
    const after = (i: number): number => refs[i]!.offset;
    // The read's own chunk, then chunks 1-4 in one GET.
    assert.deepEqual(store.ranges, [
      { offset: 0, length: refs[0]!.length },
      { offset: after(1), length: after(5) - after(1) },
    ]);
  });
});
