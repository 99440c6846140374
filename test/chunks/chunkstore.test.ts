import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { ChunkCache } from '../../src/chunks/cache.js';
import { DEFAULT_CHUNKER, type ChunkerParams } from '../../src/chunks/chunker.js';
import { ChunkStore } from '../../src/chunks/chunkstore.js';
import { HOLDER_PREFIX, LEASE_DIR, LEASE_LINGER_MS, LeaseDir, leaseText, type Lease } from '../../src/chunks/lease.js';
import type { ChunkRef } from '../../src/chunks/types.js';
import { CairnError, isCairnError } from '../../src/errors.js';
import { MemoryStore } from '../../src/store/memory.js';
import { openStore } from '../../src/store/open.js';
import type { ByteRange, ObjectStore } from '../../src/store/types.js';
import { forEachBackend } from '../helpers/backends.js';

const PREFIX = 'volumes/v1/packs/';
const SMALL: ChunkerParams = { min: 64, avg: 256, max: 1024 };
const MiB = 1024 * 1024;

/** A MemoryStore that counts (and records) range GETs and can delay or fail them. */
class CountingStore extends MemoryStore {
  gets = 0;
  getDelayMs = 0;
  failGets: CairnError | undefined;
  readonly ranges: { key: string; range?: ByteRange }[] = [];
  override async get(key: string, range?: ByteRange): Promise<Buffer> {
    this.gets++;
    this.ranges.push({ key, range });
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
    for (const [d, len] of [
      [-1, 2],
      [-3, 10],
      [0, 1],
      [-1, 1],
      [-100, 5000],
    ]) {
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

  it('bounds the memory its chunks keep alive, counting a fetched run once', async () => {
    const store = new CountingStore();
    const data = crypto.randomBytes(40 * MiB);
    const refs = await writeOne(new ChunkStore({ store, packPrefix: PREFIX, cache: null }), data);
    const one = new ChunkStore({ store, packPrefix: PREFIX, cache: null });
    // Two adjacent chunks come in one GET and stay views of its body: held once, not twice.
    const two = refs[0].length + refs[1].length;
    assert.deepEqual(await one.read(refs, 0, two), data.subarray(0, two));
    assert.equal(one.gets, 1);
    assert.equal(one.stats().memoryBytes, two);
    const cs = new ChunkStore({ store, packPrefix: PREFIX, cache: null, memoryBytes: 16 * MiB });
    let peak = 0;
    for (let off = 0; off < data.length; off += 512 * 1024) {
      assert.deepEqual(await cs.read(refs, off, 512 * 1024, { readahead: 8 }), data.subarray(off, off + 512 * 1024));
      peak = Math.max(peak, cs.stats().memoryBytes);
    }
    assert.ok(peak > 0 && peak <= 16 * MiB, `peak ${peak}`);
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

  it('keeps a sequential reader chunks ahead with a few large range GETs (batched readahead)', async () => {
    const store = new CountingStore();
    const data = crypto.randomBytes(40 * MiB);
    const refs = await writeOne(new ChunkStore({ store, packPrefix: PREFIX, cache: null }), data);
    assert.ok(refs.length >= 20, `${refs.length} chunks`);
    const cs = new ChunkStore({ store, packPrefix: PREFIX, cache: null });
    const before = store.gets;
    const step = 128 * 1024;
    for (let off = 0; off < data.length; off += step) {
      assert.deepEqual(await cs.read(refs, off, step, { readahead: 16 }), data.subarray(off, off + step));
    }
    // Chunk 0 alone (first byte fast), then batches of 16/4 = 4 adjacent chunks, one GET each.
    const gets = store.gets - before;
    assert.ok(gets <= 2 + Math.ceil((refs.length - 1) / 4), `${gets} GETs for ${refs.length} chunks`);
    assert.ok(
      store.ranges.slice(before + 1).some((r) => (r.range?.length ?? 0) > 3 * DEFAULT_CHUNKER.avg),
      'no multi-chunk GET',
    );
  });

  it("fetches a small file's pack neighbours: 300 small files cost a few GETs", async () => {
    const store = new CountingStore();
    const files = Array.from({ length: 300 }, () => crypto.randomBytes(16 * 1024));
    const w = new ChunkStore({ store, packPrefix: PREFIX, cache: null }).writer();
    const refs = await Promise.all(files.map((f) => w.write(f)));
    await w.finish();
    assert.equal(new Set(refs.map((r) => r[0].pack)).size, 1, 'one pack');
    const cs = new ChunkStore({ store, packPrefix: PREFIX, cache: null });
    const before = store.gets;
    for (let i = 0; i < files.length; i++) assert.deepEqual(await cs.read(refs[i], 0, 16 * 1024, { neighbours: true }), files[i]);
    // First file alone, the pack's footer and index, then one GET per 4 MiB block of the pack.
    const gets = store.gets - before;
    assert.ok(gets <= 6, `${gets} GETs for ${files.length} files`);
    // Without neighbours, one GET per file.
    const plain = new ChunkStore({ store, packPrefix: PREFIX, cache: null });
    const mid = store.gets;
    for (let i = 0; i < 10; i++) await plain.read(refs[i], 0, 16 * 1024);
    assert.equal(store.gets - mid, 10);
  });

  it('ignores a pack index it cannot read: neighbour prefetch never fails a read', async () => {
    const store = new CountingStore();
    const files = Array.from({ length: 20 }, () => crypto.randomBytes(8 * 1024));
    const w = new ChunkStore({ store, packPrefix: PREFIX, cache: null }).writer();
    const refs = await Promise.all(files.map((f) => w.write(f)));
    await w.finish();
    const key = PREFIX + refs[0][0].pack;
    const body = await store.get(key);
    await store.put(key, body.subarray(0, body.length - 4)); // footer gone: index unreadable
    const cs = new ChunkStore({ store, packPrefix: PREFIX, cache: null });
    for (let i = 0; i < files.length; i++) assert.deepEqual(await cs.read(refs[i], 0, 8 * 1024, { neighbours: true }), files[i]);
  });

  it('readCached copies from memory synchronously, and only from memory', async () => {
    const store = new CountingStore();
    const data = crypto.randomBytes(3 * MiB);
    const refs = await writeOne(new ChunkStore({ store, packPrefix: PREFIX, cache: null }), data);
    const cs = new ChunkStore({ store, packPrefix: PREFIX, cache: null });
    const buf = Buffer.alloc(128 * 1024);
    const before = store.gets;
    assert.equal(cs.readCached(refs, 0, buf.length, buf), undefined, 'cold: nothing in memory');
    assert.ok(
      buf.every((b) => b === 0),
      'a miss copies nothing',
    );
    assert.equal(store.gets, before, 'readCached never fetches');
    await cs.read(refs, 0, data.length); // every chunk now in memory
    for (const off of [0, 1, refs[0].length - 5, data.length - 100]) {
      const n = cs.readCached(refs, off, buf.length, buf);
      assert.equal(n, Math.min(buf.length, data.length - off));
      assert.deepEqual(buf.subarray(0, n), data.subarray(off, off + n!));
    }
    assert.equal(cs.readCached(refs, data.length, 10, buf), 0, 'EOF');
    assert.equal(cs.readCached(refs, 0, 10 * MiB, buf), buf.length, 'bounded by the buffer');
    assert.equal(cs.readCached(refs, -1, 10, buf), undefined, 'bad range: left to read()');
    const noMem = new ChunkStore({ store, packPrefix: PREFIX, cache: null, memoryBytes: 0 });
    await noMem.read(refs, 0, 10);
    assert.equal(noMem.readCached(refs, 0, 10, buf), undefined);
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

  it('streams a file in range GETs of several adjacent chunks, not one GET per chunk', async () => {
    const store = new CountingStore();
    const data = crypto.randomBytes(40 * MiB);
    const refs = await writeOne(new ChunkStore({ store, packPrefix: PREFIX, cache: null }), data);
    const packs = new Set(refs.map((r) => r.pack)).size;
    const cs = new ChunkStore({ store, packPrefix: PREFIX, cache: null, memoryBytes: 0 });
    const before = store.gets;
    const parts: Buffer[] = [];
    for await (const p of cs.stream(refs, { concurrency: 8 })) parts.push(p);
    assert.deepEqual(Buffer.concat(parts), data);
    const gets = store.gets - before;
    // Refilled 4 chunks at a time (half of 8 ahead): a GET per run of adjacent ones, one more per pack at most.
    assert.ok(gets <= Math.ceil(refs.length / 4) + packs + 1, `${gets} GETs for ${refs.length} chunks in ${packs} packs`);
  });

  it('rejects bad ranges with INVALID_ARGUMENT', async () => {
    const cs = new ChunkStore({ store: new MemoryStore(), packPrefix: PREFIX, cache: null });
    for (const [o, l] of [
      [-1, 1],
      [0, -1],
      [0.5, 1],
      [Number.NaN, 1],
    ]) {
      await assert.rejects(cs.read([], o, l), (e: unknown) => isCairnError(e, 'INVALID_ARGUMENT'));
    }
  });
});

/** How many times each chunk of `refs` was covered by one of the recorded GETs. */
function fetchCounts(refs: ChunkRef[], gets: { key: string; range?: ByteRange }[]): number[] {
  return refs.map(
    (r) =>
      gets.filter((g) => {
        const from = g.range?.offset ?? 0;
        const to = g.range ? from + g.range.length : Infinity;
        return g.key === PREFIX + r.pack && r.offset >= from && r.offset + r.length <= to;
      }).length,
  );
}

const READER = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'chunk-reader.js');

interface ReaderResult {
  gets: number;
  fetched: number[];
  ok: boolean;
  leaseStats: ChunkStore['leaseStats'];
}

/** Starts n chunk-reader children on one job, releases them together, and collects their results. */
async function runReaders(n: number, jobFile: string): Promise<ReaderResult[]> {
  const children: ChildProcess[] = [];
  const results: Promise<ReaderResult>[] = [];
  const ready: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const child = spawn(process.execPath, [READER, jobFile], { stdio: ['pipe', 'pipe', 'pipe'] });
    children.push(child);
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    const lines = readline.createInterface({ input: child.stdout! });
    const it = lines[Symbol.asyncIterator]();
    ready.push(
      it.next().then((r) => {
        if (r.value !== 'ready') throw new Error(`reader ${i} did not start: ${stderr}`);
      }),
    );
    results.push(
      new Promise<ReaderResult>((resolve, reject) => {
        let last = '';
        lines.on('line', (l) => (last = l));
        child.on('error', reject);
        child.on('close', (code) => {
          if (code !== 0) reject(new Error(`reader ${i} exited ${code}: ${stderr}`));
          else resolve(JSON.parse(last) as ReaderResult);
        });
      }),
    );
  }
  try {
    await Promise.all(ready);
    for (const c of children) c.stdin!.write('go\n');
    return await Promise.all(results);
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill();
  }
}

describe('ChunkStore fetch leases: one fetch per host', () => {
  let root: string;
  let storeUrl: string;
  let refs: ChunkRef[];
  let sha256: string;
  let data: Buffer;
  before(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-lease-'));
    storeUrl = pathToFileURL(path.join(root, 'store')).href;
    const store = await openStore(storeUrl);
    data = crypto.randomBytes(32 * MiB);
    refs = await writeOne(new ChunkStore({ store, packPrefix: PREFIX, cache: null }), data);
    await store.close();
    sha256 = crypto.createHash('sha256').update(data).digest('hex');
  });
  after(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  const job = async (name: string, mode: 'stream' | 'read'): Promise<string> => {
    const file = path.join(root, `${name}.json`);
    const cacheDir = path.join(root, `cache-${name}`);
    await fs.writeFile(file, JSON.stringify({ storeUrl, packPrefix: PREFIX, cacheDir, refs, sha256, mode }));
    return file;
  };

  /** Every chunk was fetched from the store exactly once in total, and every reader got the file. */
  function checkOnce(results: ReaderResult[]): void {
    const counts = new Array<number>(refs.length).fill(0);
    for (const r of results) for (const i of r.fetched) counts[i]++;
    assert.deepEqual(counts, new Array<number>(refs.length).fill(1), 'chunks fetched per chunk, over all readers');
    for (const r of results) assert.ok(r.ok, 'every reader got the right bytes');
    assert.equal(
      results.reduce((n, r) => n + r.leaseStats.timeouts + r.leaseStats.errors, 0),
      0,
    );
  }

  const report = (results: ReaderResult[]): string =>
    results.map((r) => `gets=${r.gets} chunks=${r.fetched.length} ${JSON.stringify(r.leaseStats)}`).join(' | ');

  it('two processes streaming the same cold 32 MiB file fetch each chunk once in total', async (t) => {
    assert.ok(refs.length >= 16);
    const results = await runReaders(2, await job('stream2', 'stream'));
    t.diagnostic(`${refs.length} chunks: ${report(results)}`);
    checkOnce(results);
  });

  it('four processes reading the whole file at once (coalesced runs) fetch each chunk once in total', async (t) => {
    const results = await runReaders(4, await job('read4', 'read'));
    t.diagnostic(`${refs.length} chunks: ${report(results)}`);
    checkOnce(results);
    // Run coalescing is kept: fewer GETs than chunks overall.
    assert.ok(results.reduce((n, r) => n + r.gets, 0) < refs.length);
  });

  it('leases work between ChunkStores of one process too (slow store)', async () => {
    const store = new CountingStore();
    const d = crypto.randomBytes(6 * MiB);
    const rs = await writeOne(new ChunkStore({ store, packPrefix: PREFIX, cache: null }), d);
    store.getDelayMs = 40;
    store.ranges.length = 0;
    const cache = new ChunkCache({ dir: path.join(root, 'cache-inproc'), maxBytes: 1 << 30 });
    const a = new ChunkStore({ store, packPrefix: PREFIX, cache, memoryBytes: 0 });
    const b = new ChunkStore({ store, packPrefix: PREFIX, cache, memoryBytes: 0 });
    const [ra, rb] = await Promise.all([a.read(rs, 0, d.length), b.read(rs, 0, d.length)]);
    assert.deepEqual(ra, d);
    assert.deepEqual(rb, d);
    assert.deepEqual(
      fetchCounts(rs, store.ranges),
      rs.map(() => 1),
    );
    assert.equal(a.leaseStats.acquired + b.leaseStats.acquired, rs.length);
    assert.equal(a.leaseStats.fromOthers + b.leaseStats.fromOthers, rs.length);
    await Promise.all([a.flush(), b.flush()]); // leases go after their cache writes…
    await new Promise((r) => setTimeout(r, LEASE_LINGER_MS + 300)); // …and linger a little
    const left = (await fs.readdir(path.join(cache.dir, LEASE_DIR))).filter((n) => !n.startsWith(HOLDER_PREFIX));
    assert.deepEqual(left, [], 'every lease released');
  });
});

describe('ChunkStore fetch leases: stale, stuck and broken leases', () => {
  let root: string;
  before(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-lease-'));
  });
  after(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  async function setup(): Promise<{ store: CountingStore; data: Buffer; refs: ChunkRef[]; cache: ChunkCache; lease: string }> {
    const store = new CountingStore();
    const data = crypto.randomBytes(200 * 1024); // < min: one chunk
    const refs = await writeOne(new ChunkStore({ store, packPrefix: PREFIX, cache: null }), data);
    store.gets = 0;
    const cache = new ChunkCache({ dir: path.join(root, crypto.randomUUID()), maxBytes: 1 << 30 });
    const lease = path.join(cache.dir, LEASE_DIR, refs[0].hash);
    await fs.mkdir(path.dirname(lease), { recursive: true });
    return { store, data, refs, cache, lease };
  }

  /** A process that has exited (its pid is dead). */
  async function deadPid(): Promise<number> {
    const child = spawn(process.execPath, ['-e', '']);
    await new Promise((r) => child.on('exit', r));
    return child.pid!;
  }

  it('takes over a lease whose holder is dead, without waiting', async () => {
    const { store, data, refs, cache, lease } = await setup();
    await fs.writeFile(lease, await leaseText(await deadPid()));
    const cs = new ChunkStore({ store, packPrefix: PREFIX, cache });
    const t = Date.now();
    assert.deepEqual(await cs.read(refs, 0, data.length), data);
    assert.ok(Date.now() - t < 2000, `took ${Date.now() - t} ms`);
    assert.equal(store.gets, 1);
    assert.equal(cs.leaseStats.takeovers, 1);
    assert.equal(cs.leaseStats.timeouts, 0);
    await cs.flush();
    await new Promise((r) => setTimeout(r, LEASE_LINGER_MS + 300));
    await assert.rejects(fs.lstat(lease), { code: 'ENOENT' }, 'released after its linger time');
    assert.deepEqual(await cache.get(refs[0].hash), data);
  });

  it('gives a stale lease to exactly one of many concurrent takeovers', async () => {
    const { refs, cache, lease } = await setup();
    const dead = await deadPid();
    for (let round = 0; round < 20; round++) {
      await fs.rm(lease, { force: true });
      await fs.writeFile(lease, await leaseText(dead));
      const ino = (await fs.stat(lease)).ino;
      const dirs = Array.from({ length: 4 }, () => new LeaseDir(cache.dir));
      const got = await Promise.all(dirs.map((d) => d.takeOver(refs[0].hash, ino)));
      const held = got.filter((g) => typeof g === 'object');
      assert.equal(held.length, 1, `round ${round}: ${got.map((g) => (typeof g === 'object' ? 'lease' : g)).join(',')}`);
      assert.notEqual((await fs.stat(lease)).ino, ino);
      for (const g of held) await (g as Lease).release();
    }
  });

  it('takes over a lease not refreshed for staleMs, even if its holder lives', async () => {
    const { store, data, refs, cache, lease } = await setup();
    await fs.writeFile(lease, await leaseText(process.pid)); // a live holder…
    await new Promise((r) => setTimeout(r, 300)); // …that shows no sign of life for longer than staleMs
    const cs = new ChunkStore({ store, packPrefix: PREFIX, cache, leases: { staleMs: 200 } });
    assert.deepEqual(await cs.read(refs, 0, data.length), data);
    assert.equal(cs.leaseStats.takeovers, 1);
    assert.equal(store.gets, 1);
  });

  it('fetches itself after the bounded wait when a live holder never finishes', async () => {
    const { store, data, refs, cache, lease } = await setup();
    const holder = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e6)']);
    try {
      await fs.writeFile(lease, await leaseText(holder.pid!));
      const cs = new ChunkStore({ store, packPrefix: PREFIX, cache, leases: { waitMs: 300 } });
      const t = Date.now();
      assert.deepEqual(await cs.read(refs, 0, data.length), data);
      const took = Date.now() - t;
      assert.ok(took >= 290 && took < 5000, `took ${took} ms`);
      assert.equal(cs.leaseStats.waited, 1);
      assert.equal(cs.leaseStats.timeouts, 1);
      assert.equal(store.gets, 1);
      await fs.lstat(lease); // not ours: left alone
    } finally {
      holder.kill();
    }
  });

  it('waits for a live holder and reads its chunk from the cache (no GET)', async () => {
    const { store, data, refs, cache, lease } = await setup();
    await fs.writeFile(lease, await leaseText(process.pid));
    const cs = new ChunkStore({ store, packPrefix: PREFIX, cache });
    const reading = cs.read(refs, 0, data.length);
    await new Promise((r) => setTimeout(r, 100));
    await cache.put(refs[0].hash, data); // the "holder" finishes: cache entry first, then the lease goes
    await fs.unlink(lease);
    assert.deepEqual(await reading, data);
    assert.equal(store.gets, 0);
    assert.equal(cs.leaseStats.fromOthers, 1);
  });

  it('fetches directly when leases cannot be taken (never fails a read)', async () => {
    const { store, data, refs, cache } = await setup();
    await fs.rm(path.join(cache.dir, LEASE_DIR), { recursive: true });
    await fs.writeFile(path.join(cache.dir, LEASE_DIR), 'in the way'); // leases/ is a file: ENOTDIR/EEXIST
    const cs = new ChunkStore({ store, packPrefix: PREFIX, cache });
    assert.deepEqual(await cs.read(refs, 0, data.length), data);
    assert.equal(store.gets, 1);
    assert.ok(cs.leaseStats.errors >= 1);
  });

  it('recreates its holder file when the cache directory is wiped', async () => {
    const { store, data, refs, cache } = await setup();
    const cs = new ChunkStore({ store, packPrefix: PREFIX, cache, memoryBytes: 0 });
    assert.deepEqual(await cs.read(refs, 0, data.length), data);
    await cs.flush();
    await fs.rm(cache.dir, { recursive: true, force: true });
    const other = crypto.randomBytes(1000);
    const refs2 = await writeOne(new ChunkStore({ store, packPrefix: PREFIX, cache: null }), other);
    assert.deepEqual(await cs.read(refs2, 0, other.length), other);
    assert.equal(cs.leaseStats.acquired, 2);
    assert.equal(cs.leaseStats.errors, 0);
  });

  it('takes no leases without a cache, or with leases: false', async () => {
    const { store, data, refs, cache } = await setup();
    await fs.rm(path.join(cache.dir, LEASE_DIR), { recursive: true });
    const none = new ChunkStore({ store, packPrefix: PREFIX, cache: null });
    assert.deepEqual(await none.read(refs, 0, data.length), data);
    const off = new ChunkStore({ store, packPrefix: PREFIX, cache, leases: false });
    assert.deepEqual(await off.read(refs, 0, data.length), data);
    await off.flush();
    await assert.rejects(fs.stat(path.join(cache.dir, LEASE_DIR)), { code: 'ENOENT' });
    assert.deepEqual(off.leaseStats, none.leaseStats);
    assert.equal(off.leaseStats.acquired, 0);
  });
});
