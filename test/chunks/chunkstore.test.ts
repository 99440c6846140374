import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { ChunkCache } from '../../src/chunks/cache.js';
import { DEFAULT_CHUNKER, type ChunkerParams } from '../../src/chunks/chunker.js';
import { ChunkStore } from '../../src/chunks/chunkstore.js';
import type { ChunkRef } from '../../src/chunks/types.js';
import { CairnError, isCairnError } from '../../src/errors.js';
import { MemoryStore } from '../../src/store/memory.js';
import type { ByteRange, ObjectStore } from '../../src/store/types.js';
import { forEachBackend } from '../helpers/backends.js';

const PREFIX = 'volumes/v1/packs/';
const SMALL: ChunkerParams = { min: 64, avg: 256, max: 1024 };
const MiB = 1024 * 1024;

/** A MemoryStore that counts range GETs and can delay or fail them. */
class CountingStore extends MemoryStore {
  gets = 0;
  getDelayMs = 0;
  failGets: CairnError | undefined;
  override async get(key: string, range?: ByteRange): Promise<Buffer> {
    this.gets++;
    if (this.getDelayMs) await new Promise((r) => setTimeout(r, this.getDelayMs));
    if (this.failGets) throw this.failGets;
    return super.get(key, range);
  }
}

async function writeOne(cs: ChunkStore, data: Uint8Array): Promise<ChunkRef[]> {
  const w = cs.writer();
  const refs = await w.write(data);
  await w.finish();
  return refs;
}

/** Flips one byte of a stored object through the store itself. */
async function flipByte(store: ObjectStore, key: string, at: number): Promise<void> {
  const body = await store.get(key);
  body[at] ^= 0x55;
  await store.put(key, body);
}

/** Reads that matter: whole file, around every chunk boundary, past EOF, and random ones. */
async function checkRanges(cs: ChunkStore, refs: ChunkRef[], data: Buffer): Promise<void> {
  const n = data.length;
  assert.deepEqual(await cs.read(refs, 0, n), data);
  assert.deepEqual(await cs.read(refs, 0, n + 100), data, 'short at EOF');
  assert.equal((await cs.read(refs, n, 10)).length, 0);
  assert.equal((await cs.read(refs, n + 5, 10)).length, 0);
  assert.equal((await cs.read(refs, 0, 0)).length, 0);
  let b = 0;
  const bounds = [0];
  for (const r of refs) bounds.push((b += r.length));
  assert.equal(b, n);
  for (const at of bounds) {
    for (const [d, len] of [[-1, 2], [-3, 10], [0, 1], [-1, 1], [-100, 5000]]) {
      const off = Math.max(0, at + d);
      assert.deepEqual(await cs.read(refs, off, len), data.subarray(off, off + len), `read(${off}, ${len})`);
    }
  }
  for (let i = 0; i < 20; i++) {
    const off = Math.floor(Math.random() * (n + 1));
    const len = Math.floor(Math.random() * 3 * MiB);
    assert.deepEqual(await cs.read(refs, off, len), data.subarray(off, off + len));
  }
  const streamed: Buffer[] = [];
  for await (const piece of cs.stream(refs, { concurrency: 3 })) streamed.push(piece);
  assert.deepEqual(Buffer.concat(streamed), data);
}

const INPUTS: [string, () => Buffer][] = [
  ['empty', () => Buffer.alloc(0)],
  ['1 byte', () => Buffer.from([7])],
  ['== min chunk', () => crypto.randomBytes(DEFAULT_CHUNKER.min)],
  ['== max chunk (zeros: one max-size chunk)', () => Buffer.alloc(DEFAULT_CHUNKER.max)],
  ['10 MiB of zeros (max-size cuts, repeated chunk)', () => Buffer.alloc(10 * MiB)],
  ['9 MiB random + 1', () => crypto.randomBytes(9 * MiB + 1)],
];

describe('ChunkStore round-trips (memory)', () => {
  for (const [name, make] of INPUTS) {
    it(name, async () => {
      const store = new MemoryStore();
      const data = make();
      const refs = await writeOne(new ChunkStore({ store, packPrefix: PREFIX, cache: null }), data);
      if (data.length === 0) assert.deepEqual(refs, []);
      await checkRanges(new ChunkStore({ store, packPrefix: PREFIX, cache: null, memoryBytes: 0 }), refs, data);
      await checkRanges(new ChunkStore({ store, packPrefix: PREFIX, cache: null }), refs, data);
    });
  }

  it('round-trips any content and any range (property, small chunks)', async () => {
    const store = new MemoryStore();
    const cs = new ChunkStore({ store, packPrefix: PREFIX, cache: null, memoryBytes: 0, chunker: SMALL });
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 6000 }),
        fc.array(fc.tuple(fc.nat(7000), fc.nat(7000)), { minLength: 1, maxLength: 10 }),
        async (bytes, ranges) => {
          const data = Buffer.from(bytes);
          const refs = await writeOne(cs, data);
          for (const r of refs) assert.ok(r.length <= SMALL.max);
          for (const [off, len] of ranges) assert.deepEqual(await cs.read(refs, off, len), data.subarray(off, off + len));
        },
      ),
      { numRuns: 150 },
    );
  });

  it('reads every (offset, length) of a small multi-chunk file', async () => {
    const store = new MemoryStore();
    const cs = new ChunkStore({ store, packPrefix: PREFIX, cache: null, chunker: SMALL });
    const data = crypto.randomBytes(1500);
    const refs = await writeOne(cs, data);
    assert.ok(refs.length >= 2);
    for (let off = 0; off <= data.length; off += 7) {
      for (let len = 0; off + len <= data.length + 8; len += 13) {
        assert.deepEqual(await cs.read(refs, off, len), data.subarray(off, off + len));
      }
    }
  });
});

forEachBackend((b) => {
  describe(`ChunkStore on the ${b.name} store`, () => {
    let store: ObjectStore;
    let cacheRoot: string;
    before(async () => {
      await b.start();
      store = await b.open();
      cacheRoot = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-cs-'));
    });
    after(async () => {
      await store?.close();
      await b.stop();
      await fs.rm(cacheRoot, { recursive: true, force: true });
    });

    for (const [name, make] of INPUTS) {
      it(`round-trips ${name}`, async () => {
        const data = make();
        const cache = new ChunkCache({ dir: path.join(cacheRoot, crypto.randomUUID()), maxBytes: 1 << 30 });
        const refs = await writeOne(new ChunkStore({ store, packPrefix: PREFIX, cache: null }), data);
        await checkRanges(new ChunkStore({ store, packPrefix: PREFIX, cache, memoryBytes: 0 }), refs, data);
        // Second pass is served by the disk cache.
        await checkRanges(new ChunkStore({ store, packPrefix: PREFIX, cache, memoryBytes: 0 }), refs, data);
        if (refs.length > 0) assert.ok(cache.stats().hits > 0);
      });
    }

    it('detects a corrupted pack byte (CORRUPT, never wrong bytes)', async () => {
      const data = crypto.randomBytes(6 * MiB); // > max chunk: at least two chunks
      const refs = await writeOne(new ChunkStore({ store, packPrefix: PREFIX, cache: null }), data);
      const victim = refs[refs.length - 1];
      await flipByte(store, PREFIX + victim.pack, victim.offset + 10);
      const cs = new ChunkStore({ store, packPrefix: PREFIX, cache: null, memoryBytes: 0 });
      await assert.rejects(cs.read(refs, 0, data.length), (e: unknown) => isCairnError(e, 'CORRUPT'));
      await assert.rejects(cs.readChunk(victim), (e: unknown) => isCairnError(e, 'CORRUPT'));
      // Chunks before the damage still read.
      assert.deepEqual(await cs.read(refs, 0, refs[0].length), data.subarray(0, refs[0].length));
    });

    it('propagates a missing pack as NOT_FOUND', async () => {
      const refs = await writeOne(new ChunkStore({ store, packPrefix: PREFIX, cache: null }), crypto.randomBytes(1000));
      await store.delete(PREFIX + refs[0].pack);
      const cs = new ChunkStore({ store, packPrefix: PREFIX, cache: null, memoryBytes: 0 });
      await assert.rejects(cs.read(refs, 0, 10), (e: unknown) => isCairnError(e, 'NOT_FOUND'));
    });
  });
});

describe('ChunkStore read path', () => {
  let cacheRoot: string;
  before(async () => {
    cacheRoot = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-cs-'));
  });
  after(async () => {
    await fs.rm(cacheRoot, { recursive: true, force: true });
  });
  const newCache = (): ChunkCache => new ChunkCache({ dir: path.join(cacheRoot, crypto.randomUUID()), maxBytes: 1 << 30 });

  it('detects a corrupted cache file and refetches from the store', async () => {
    const store = new CountingStore();
    const cache = newCache();
    const data = crypto.randomBytes(2 * MiB);
    const refs = await writeOne(new ChunkStore({ store, packPrefix: PREFIX, cache: null }), data);
    const cs = new ChunkStore({ store, packPrefix: PREFIX, cache, memoryBytes: 0 });
    assert.deepEqual(await cs.read(refs, 0, data.length), data);
    await cs.flush(); // background cache writes
    const file = cache.pathOf(refs[0].hash);
    const bytes = await fs.readFile(file);
    bytes[5] ^= 1;
    await fs.writeFile(file, bytes);
    const before = store.gets;
    assert.deepEqual(await cs.read(refs, 0, data.length), data);
    assert.equal(store.gets, before + 1, 'only the damaged chunk is refetched');
    assert.equal(cache.stats().corrupt, 1);
    await cs.flush();
    assert.deepEqual(await fs.readFile(file), data.subarray(0, refs[0].length), 'cache entry repaired');
  });

  it('fetches a chunk once for many parallel readers (single flight)', async () => {
    const store = new CountingStore();
    const data = crypto.randomBytes(200 * 1024); // < min: one chunk
    const refs = await writeOne(new ChunkStore({ store, packPrefix: PREFIX, cache: null }), data);
    assert.equal(refs.length, 1);
    store.getDelayMs = 30;
    const cs = new ChunkStore({ store, packPrefix: PREFIX, cache: null, memoryBytes: 0 });
    const before = store.gets;
    const reads = await Promise.all(Array.from({ length: 20 }, (_, i) => cs.read(refs, i * 1000, 5000)));
    reads.forEach((r, i) => assert.deepEqual(r, data.subarray(i * 1000, i * 1000 + 5000)));
    assert.equal(store.gets - before, refs.length);
  });

  it('fetches adjacent chunks of one pack with one range GET', async () => {
    const store = new CountingStore();
    const data = crypto.randomBytes(6 * MiB); // > max chunk: at least two chunks, < 8 MiB merge limit
    const refs = await writeOne(new ChunkStore({ store, packPrefix: PREFIX, cache: null }), data);
    assert.ok(refs.length >= 2);
    const cs = new ChunkStore({ store, packPrefix: PREFIX, cache: null, memoryBytes: 0 });
    const before = store.gets;
    assert.deepEqual(await cs.read(refs, 0, data.length), data);
    assert.equal(store.gets - before, 1);
    assert.equal(cs.gets, 1);
  });

  it('serves repeated small reads from memory', async () => {
    const store = new CountingStore();
    const data = crypto.randomBytes(2 * MiB);
    const refs = await writeOne(new ChunkStore({ store, packPrefix: PREFIX, cache: null }), data);
    const cs = new ChunkStore({ store, packPrefix: PREFIX, cache: null });
    const before = store.gets;
    for (let off = 0; off < data.length; off += 128 * 1024) {
      assert.deepEqual(await cs.read(refs, off, 128 * 1024), data.subarray(off, off + 128 * 1024));
    }
    assert.equal(store.gets - before, refs.length);
  });

  it('reads ahead for sequential readers (prefetch)', async () => {
    const store = new CountingStore();
    const data = crypto.randomBytes(12 * MiB); // > 2 × max chunk: at least three chunks
    const refs = await writeOne(new ChunkStore({ store, packPrefix: PREFIX, cache: null }), data);
    assert.ok(refs.length >= 3);
    const cs = new ChunkStore({ store, packPrefix: PREFIX, cache: null });
    assert.deepEqual(await cs.read(refs, 0, 10, { readahead: 2 }), data.subarray(0, 10));
    const after = store.gets; // chunk 0, plus chunks 1-2 (adjacent: one GET) in flight or done
    // Reading the next chunks joins the prefetch: no new GET.
    const second = refs[0].length;
    assert.deepEqual(await cs.read(refs, second, refs[1].length + 5), data.subarray(second, second + refs[1].length + 5));
    assert.equal(store.gets, after);
    cs.prefetch([]);
  });

  it('propagates store errors as is and retries afterwards', async () => {
    const store = new CountingStore();
    const data = crypto.randomBytes(1000);
    const refs = await writeOne(new ChunkStore({ store, packPrefix: PREFIX, cache: null }), data);
    const cs = new ChunkStore({ store, packPrefix: PREFIX, cache: null });
    store.failGets = new CairnError('UNAVAILABLE', 'store down');
    await assert.rejects(cs.read(refs, 0, 10), (e: unknown) => e === store.failGets);
    store.failGets = undefined;
    assert.deepEqual(await cs.read(refs, 0, 10), data.subarray(0, 10));
  });

  it('streams in order with bounded read-ahead, and stops cleanly', async () => {
    const store = new CountingStore();
    const files = Array.from({ length: 30 }, () => crypto.randomBytes(20_000));
    const w = new ChunkStore({ store, packPrefix: PREFIX, cache: null, chunker: SMALL }).writer();
    const refs = await w.write(Buffer.concat(files));
    await w.finish();
    store.getDelayMs = 5;
    const cs = new ChunkStore({ store, packPrefix: PREFIX, cache: null, memoryBytes: 0 });
    for (const concurrency of [1, 4, 64]) {
      const parts: Buffer[] = [];
      for await (const p of cs.stream(refs, { concurrency })) parts.push(p);
      assert.deepEqual(Buffer.concat(parts), Buffer.concat(files));
    }
    let n = 0;
    for await (const _ of cs.stream(refs)) if (++n === 3) break;
    assert.equal(n, 3);
  });

  it('rejects bad ranges with INVALID_ARGUMENT', async () => {
    const cs = new ChunkStore({ store: new MemoryStore(), packPrefix: PREFIX, cache: null });
    for (const [o, l] of [[-1, 1], [0, -1], [0.5, 1], [Number.NaN, 1]]) {
      await assert.rejects(cs.read([], o, l), (e: unknown) => isCairnError(e, 'INVALID_ARGUMENT'));
    }
  });
});
