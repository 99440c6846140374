import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ChunkStore } from '../../src/chunks/chunkstore.js';
import { hashChunk } from '../../src/chunks/hash.js';
import {
  DEFAULT_BLOCK_BYTES,
  PackBuilder,
  PACK_MAGIC,
  PACK_VERSION,
  parsePack,
  readPackIndex,
  readPackTrailer,
} from '../../src/chunks/pack.js';
import { chunkOutboard, verifyOutboard } from '../../src/chunks/outboard.js';
import type { ChunkRef } from '../../src/chunks/types.js';
import { CairnError, isCairnError } from '../../src/errors.js';
import { MemoryStore } from '../../src/store/memory.js';
import type { ByteRange, PutOptions } from '../../src/store/types.js';

const PREFIX = 'volumes/v1/packs/';

/** A MemoryStore that counts PUTs and can delay or fail them. */
class CountingStore extends MemoryStore {
  puts = 0;
  gets = 0;
  inFlight = 0;
  maxInFlight = 0;
  putDelayMs = 0;
  failPuts: CairnError | undefined;

  override async put(key: string, body: Uint8Array, options?: PutOptions): Promise<void> {
    this.puts++;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.putDelayMs) await new Promise((r) => setTimeout(r, this.putDelayMs));
      if (this.failPuts) throw this.failPuts;
      await super.put(key, body, options);
    } finally {
      this.inFlight--;
    }
  }

  override async get(key: string, range?: ByteRange): Promise<Buffer> {
    this.gets++;
    return super.get(key, range);
  }
}

/** Polls `cond` until it holds (fails after 5 s). */
async function waitFor(cond: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!(await cond())) {
    if (Date.now() > deadline) assert.fail('condition not reached within 5 s');
    await new Promise((r) => setTimeout(r, 5));
  }
}

function chunkStore(store: MemoryStore): ChunkStore {
  return new ChunkStore({ store, packPrefix: PREFIX, cache: null, memoryBytes: 0 });
}

describe('pack format', () => {
  it('seals data + index + footer and parses back', () => {
    const b = new PackBuilder();
    const chunks = [Buffer.from('alpha'), Buffer.from(''), crypto.randomBytes(1000)];
    const offsets = chunks.map((c) => b.add(hashChunk(c), c));
    assert.deepEqual(offsets, [0, 5, 5]);
    assert.match(b.id, /^[0-9a-f]{32}$/);
    const pack = b.seal();
    assert.equal(pack.toString('latin1', pack.length - 8), PACK_MAGIC);
    const entries = parsePack(pack);
    assert.deepEqual(
      entries,
      chunks.map((c, i) => ({ hash: hashChunk(c), offset: offsets[i], length: c.length })),
    );
    for (const e of entries) assert.equal(hashChunk(pack.subarray(e.offset, e.offset + e.length)), e.hash);
  });

  it('reads a stored index with range GETs', async () => {
    const store = new MemoryStore();
    const b = new PackBuilder();
    b.add(hashChunk(Buffer.from('x')), Buffer.from('x'));
    await store.put(PREFIX + b.id, b.seal());
    assert.deepEqual(await readPackIndex(store, PREFIX + b.id), [{ hash: hashChunk(Buffer.from('x')), offset: 0, length: 1 }]);
    await assert.rejects(readPackIndex(store, PREFIX + 'missing'), (e: unknown) => isCairnError(e, 'NOT_FOUND'));
  });

  it('rejects malformed packs with CORRUPT', () => {
    const b = new PackBuilder();
    b.add(hashChunk(Buffer.from('x')), Buffer.from('x'));
    const pack = b.seal();
    const badMagic = Buffer.from(pack);
    badMagic[badMagic.length - 1] ^= 1;
    const badLen = Buffer.from(pack);
    badLen.writeUInt32LE(1_000_000, badLen.length - 16);
    for (const bad of [badMagic, badLen, Buffer.from('short')]) {
      assert.throws(
        () => parsePack(bad),
        (e: unknown) => isCairnError(e, 'CORRUPT'),
      );
    }
    const future = Buffer.from(pack);
    future.writeUInt32LE(PACK_VERSION + 1, future.length - 12);
    assert.throws(
      () => parsePack(future),
      (e: unknown) => isCairnError(e, 'UNSUPPORTED'),
    );
  });
});

describe('PackWriter', () => {
  it('writes no outboards unless asked (CAIRN_PACK_OUTBOARDS): a v2 pack of block size 0, read whole', async () => {
    const store = new MemoryStore();
    const chunk = crypto.randomBytes(300_000);
    const w = chunkStore(store).writer();
    assert.equal(w.outboardBlockBytes, 0);
    const ref = await w.addChunk(hashChunk(chunk), chunk);
    await w.finish();
    const t = await readPackTrailer(store, PREFIX + ref.pack);
    assert.equal(t.version, PACK_VERSION);
    assert.equal(t.blockBytes, 0);
    assert.deepEqual(
      t.outboards.map((o) => o.length),
      [0],
    );
    assert.deepEqual(await chunkStore(store).readChunk(ref), chunk);
    process.env.CAIRN_PACK_OUTBOARDS = '3000';
    try {
      assert.throws(
        () => chunkStore(store).writer(),
        (e: unknown) => isCairnError(e, 'INVALID_ARGUMENT'),
      );
    } finally {
      delete process.env.CAIRN_PACK_OUTBOARDS;
    }
  });

  it('addChunk copies a chunk into a new pack, with its outboard given or computed', async (t) => {
    process.env.CAIRN_PACK_OUTBOARDS = 'on';
    t.after(() => void delete process.env.CAIRN_PACK_OUTBOARDS);
    const store = new MemoryStore();
    const chunk = crypto.randomBytes(300_000);
    const hash = hashChunk(chunk);
    const ob = chunkOutboard(chunk, DEFAULT_BLOCK_BYTES);
    for (const given of [ob, undefined]) {
      const w = chunkStore(store).writer();
      const ref = await w.addChunk(hash, chunk, given);
      assert.equal(w.outboardBlockBytes, DEFAULT_BLOCK_BYTES);
      assert.deepEqual(await w.addChunk(hash, chunk), ref); // deduped
      await w.finish();
      const t = await readPackTrailer(store, PREFIX + ref.pack);
      assert.equal(t.version, PACK_VERSION);
      assert.deepEqual(t.entries, [{ hash, offset: 0, length: chunk.length }]);
      assert.ok(verifyOutboard(t.outboards[0], hash, chunk.length, t.blockBytes));
      assert.deepEqual(await chunkStore(store).readChunk(ref), chunk);
    }
  });

  it('puts 10,000 small files into a few packs', async () => {
    const store = new CountingStore();
    const w = chunkStore(store).writer();
    const files: Buffer[] = [];
    const refs: ChunkRef[][] = [];
    for (let i = 0; i < 10_000; i++) {
      const f = crypto.randomBytes(16 * 1024);
      files.push(f);
      refs.push(await w.write(f));
    }
    const res = await w.finish();
    // 160 MiB of new data in 32 MiB packs -> 5 PUTs.
    assert.equal(store.puts, 5);
    assert.equal(res.packs.length, 5);
    assert.equal(res.newChunks.length, 10_000);
    assert.ok(res.bytesUploaded > 10_000 * 16 * 1024);
    const cs = chunkStore(store);
    for (const i of [0, 1, 4999, 9999]) assert.deepEqual(await cs.read(refs[i], 0, 1 << 20), files[i]);
    for (const id of res.packs) assert.ok((await readPackIndex(store, PREFIX + id)).length > 0);
  });

  it('dedupes within a writer and via known: the second write uploads nothing', async () => {
    const store = new CountingStore();
    const cs = chunkStore(store);
    const data = crypto.randomBytes(3 * 1024 * 1024);
    const w1 = cs.writer();
    const a = await w1.write(data);
    const b = await w1.write(data);
    assert.deepEqual(a, b);
    const r1 = await w1.finish();
    assert.equal(r1.newChunks.length, a.length);
    assert.equal(store.puts, 1);
    const known = new Map(r1.newChunks.map((r) => [r.hash, r]));
    const w2 = cs.writer({ known: (h) => known.get(h) });
    assert.deepEqual(await w2.write(data), a);
    const r2 = await w2.finish();
    assert.deepEqual(r2, { bytesUploaded: 0, packs: [], newChunks: [] });
    assert.equal(store.puts, 1);
  });

  it('accepts concurrent writes into shared packs', async () => {
    const store = new CountingStore();
    const w = chunkStore(store).writer({ packBytes: 4 * 1024 * 1024 });
    const files = Array.from({ length: 6 }, (_, i) => crypto.randomBytes((i + 1) * 700_000));
    files.push(files[2]); // a duplicate, written at the same time
    async function* pieces(b: Buffer): AsyncIterable<Uint8Array> {
      for (let o = 0; o < b.length; o += 100_000) {
        await new Promise((r) => setImmediate(r));
        yield b.subarray(o, o + 100_000);
      }
    }
    const refs = await Promise.all(files.map((f, i) => w.write(i % 2 ? f : pieces(f))));
    const res = await w.finish();
    assert.deepEqual(
      refs[6].map((r) => r.hash),
      refs[2].map((r) => r.hash),
    );
    assert.equal(new Set(res.newChunks.map((r) => r.hash)).size, res.newChunks.length, 'each new chunk stored once');
    const cs = chunkStore(store);
    for (let i = 0; i < files.length; i++) assert.deepEqual(await cs.read(refs[i], 0, files[i].length), files[i]);
  });

  it('keeps at most 3 packs in flight and seals at packBytes', async () => {
    const store = new CountingStore();
    store.putDelayMs = 20;
    const w = chunkStore(store).writer({ packBytes: 64 * 1024 });
    for (let i = 0; i < 40; i++) await w.write(crypto.randomBytes(32 * 1024));
    const res = await w.finish();
    assert.equal(res.packs.length, 20);
    assert.ok(store.maxInFlight <= 3, `max in flight ${store.maxInFlight}`);
    assert.ok(store.maxInFlight >= 2, 'uploads overlap');
  });

  it('writes an empty file as no refs and streams local files', async () => {
    const store = new CountingStore();
    const w = chunkStore(store).writer();
    assert.deepEqual(await w.write(new Uint8Array(0)), []);
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-pack-'));
    try {
      const data = crypto.randomBytes(5 * 1024 * 1024 + 17);
      await fs.writeFile(path.join(dir, 'f'), data);
      const refs = await w.writeFile(path.join(dir, 'f'));
      const direct = await chunkStore(new MemoryStore()).writer().write(data);
      assert.deepEqual(
        refs.map((r) => [r.hash, r.length]),
        direct.map((r) => [r.hash, r.length]),
      );
      await assert.rejects(w.writeFile(path.join(dir, 'nope')), (e: unknown) => isCairnError(e, 'NOT_FOUND'));
      await w.finish();
      assert.deepEqual(await chunkStore(store).read(refs, 0, data.length + 1), data);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('propagates upload errors, then refuses use; finish closes the writer', async () => {
    const store = new CountingStore();
    store.failPuts = new CairnError('UNAVAILABLE', 'store down');
    const w = chunkStore(store).writer({ packBytes: 1024 });
    await w.write(crypto.randomBytes(4096)).catch(() => {});
    await assert.rejects(w.finish(), (e: unknown) => isCairnError(e, 'UNAVAILABLE'));
    await assert.rejects(w.write(Buffer.from('x')), (e: unknown) => isCairnError(e));
    const ok = chunkStore(new MemoryStore()).writer();
    await ok.finish();
    await assert.rejects(ok.write(Buffer.from('x')), (e: unknown) => isCairnError(e, 'CLOSED'));
  });

  it('abort deletes packs already uploaded', async () => {
    const store = new CountingStore();
    const w = chunkStore(store).writer({ packBytes: 1024 });
    await w.write(crypto.randomBytes(64 * 1024));
    await waitFor(async () => (await store.list(PREFIX)).length > 0);
    w.abort();
    await waitFor(async () => (await store.list(PREFIX)).length === 0);
    await assert.rejects(w.write(Buffer.from('x')), (e: unknown) => isCairnError(e, 'CLOSED'));
  });
});
