/**
 * Partial-chunk reads (src/chunks/partial.ts) through ChunkStore.read with a random reader's cursor,
 * on every backend: the right bytes from fresh stores, fewer bytes fetched than whole chunks, damage
 * to a block (CORRUPT, for partial and whole reads) and to an outboard (detected: the chunk is read
 * whole) and old v1 packs (read whole).
 */
import { NativeFetchPool, nativeFetchStats } from '../../src/chunks/nativefetch.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ChunkCache } from '../../src/chunks/cache.js';
import { ChunkStore } from '../../src/chunks/chunkstore.js';
import { hashChunk } from '../../src/chunks/hash.js';
import { DEFAULT_BLOCK_BYTES, newPackId, PACK_FOOTER_BYTES, PACK_MAGIC, readPackTrailer } from '../../src/chunks/pack.js';
import type { ChunkRef } from '../../src/chunks/types.js';
import { isCairnError } from '../../src/errors.js';
import type { ObjectStore } from '../../src/store/types.js';
import { forEachBackend, useBackendStore } from '../helpers/backends.js';

// Outboards are opt-in (config.ts packBlockBytes): these tests write packs that carry them.
process.env.CAIRN_PACK_OUTBOARDS = 'on';

const PREFIX = 'volumes/v1/packs/';
const MiB = 1024 * 1024;
const READ = 128 * 1024;

async function writeOne(store: ObjectStore, data: Uint8Array): Promise<ChunkRef[]> {
  const w = new ChunkStore({ store, packPrefix: PREFIX, cache: null }).writer();
  const refs = await w.write(data);
  await w.finish();
  return refs;
}

/** A fresh reader: no cache, its own memory; every read below comes with a fresh cursor (a random reader). */
function fresh(store: ObjectStore, partialReads = true): ChunkStore {
  return new ChunkStore({ store, packPrefix: PREFIX, cache: null, partialReads });
}

const randomRead = (cs: ChunkStore, refs: ChunkRef[], off: number, len = READ): Promise<Buffer> =>
  cs.read(refs, off, len, { cursor: cs.cursor() });

async function flipByte(store: ObjectStore, key: string, at: number): Promise<void> {
  const body = await store.get(key);
  body[at] ^= 0x55;
  await store.put(key, body);
}

/** Writes `chunks` as one pack in format v1 (no outboards) and returns their refs. */
async function writeV1Pack(store: ObjectStore, chunks: Buffer[]): Promise<ChunkRef[]> {
  const id = newPackId();
  const refs: ChunkRef[] = [];
  let off = 0;
  for (const c of chunks) {
    refs.push({ hash: hashChunk(c), pack: id, offset: off, length: c.length });
    off += c.length;
  }
  const index = Buffer.alloc(4 + refs.length * 44);
  index.writeUInt32LE(refs.length, 0);
  refs.forEach((r, i) => {
    index.write(r.hash, 4 + i * 44, 32, 'hex');
    index.writeBigUInt64LE(BigInt(r.offset), 4 + i * 44 + 32);
    index.writeUInt32LE(r.length, 4 + i * 44 + 40);
  });
  const footer = Buffer.alloc(PACK_FOOTER_BYTES);
  footer.writeUInt32LE(index.length, 0);
  footer.writeUInt32LE(1, 4);
  footer.write(PACK_MAGIC, 8, 'latin1');
  await store.put(PREFIX + id, Buffer.concat([...chunks, index, footer]));
  return refs;
}

forEachBackend((b) => {
  describe(`partial-chunk reads on the ${b.name} store`, () => {
    let store: ObjectStore;
    useBackendStore(b, (s) => (store = s));

    it('random reads return the source bytes and fetch blocks, not whole chunks', async () => {
      const data = crypto.randomBytes(24 * MiB);
      const refs = await writeOne(store, data);
      assert.ok(refs.length >= 8);
      const cs = fresh(store);
      const runs = nativeFetchStats.runs;
      const offsets = [1, data.length - READ, data.length - 10, ...Array.from({ length: 60 }, () => crypto.randomInt(data.length))];
      for (const off of offsets) assert.deepEqual(await randomRead(cs, refs, off), data.subarray(off, off + READ), `offset ${off}`);
      // Across chunk boundaries, and longer than a chunk.
      for (const r of refs.slice(1, 4)) {
        const start = refs.slice(0, refs.indexOf(r)).reduce((n, x) => n + x.length, 0);
        assert.deepEqual(await randomRead(cs, refs, start - 5000, 3 * MiB), data.subarray(start - 5000, start - 5000 + 3 * MiB));
      }
      const st = cs.partialStats;
      assert.ok(st.reads >= offsets.length, JSON.stringify(st));
      assert.equal(st.badOutboards, 0);
      // ~2-3 blocks of 64 KiB per 128 KiB read, against ~1.15 MiB chunks whole.
      assert.ok(st.bytes < offsets.length * 5 * 64 * 1024 + 9 * 4 * MiB, JSON.stringify(st));
      assert.ok(st.trailers <= 2, `trailers read once per pack: ${st.trailers}`);
      // On a plain S3 store the block GETs run on the addon's fetch threads (its bytes checked here).
      if (NativeFetchPool.for(store, null))
        assert.ok(nativeFetchStats.runs - runs >= st.gets, `native GETs ${nativeFetchStats.runs - runs} of ${st.gets}`);
    });

    it('a damaged block is CORRUPT for partial and whole reads; other blocks still read', async () => {
      const data = crypto.randomBytes(3 * MiB);
      const refs = await writeOne(store, data);
      const victim = refs[0];
      await flipByte(store, PREFIX + victim.pack, victim.offset + 70_000); // block 1 of chunk 0
      await assert.rejects(randomRead(fresh(store), refs, 66_000), (e: unknown) => isCairnError(e, 'CORRUPT'));
      await assert.rejects(fresh(store).read(refs, 0, victim.length), (e: unknown) => isCairnError(e, 'CORRUPT'));
      await assert.rejects(randomRead(fresh(store, false), refs, 70_000, 10), (e: unknown) => isCairnError(e, 'CORRUPT'));
      // Block 3 of the same chunk is intact, and a partial read of it verifies on its own.
      const cs = fresh(store);
      assert.deepEqual(await randomRead(cs, refs, 3 * 65536 + 5, 1000), data.subarray(3 * 65536 + 5, 3 * 65536 + 1005));
      assert.equal(cs.partialStats.reads, 1);
    });

    it('a damaged outboard is detected: the chunk is read whole, verified', async () => {
      const data = crypto.randomBytes(3 * MiB);
      const refs = await writeOne(store, data);
      const key = PREFIX + refs[0].pack;
      const head = await store.head(key);
      const trailer = await readPackTrailer(store, key);
      assert.equal(trailer.version, 2);
      // The first chunk's outboard: after the index (8 + 44 per entry), before the footer.
      const trailerStart =
        head!.size - PACK_FOOTER_BYTES - (trailer.outboards.reduce((n, o) => n + o.length, 0) + 8 + 44 * trailer.entries.length);
      await flipByte(store, key, trailerStart + 8 + 44 * trailer.entries.length + 40);
      const cs = fresh(store);
      assert.deepEqual(await randomRead(cs, refs, 100_000), data.subarray(100_000, 100_000 + READ));
      assert.equal(cs.partialStats.badOutboards, 1);
      assert.equal(cs.partialStats.blocks, 0);
      // The other chunks' outboards are intact.
      const second = refs[0].length + 200_000;
      assert.deepEqual(await randomRead(cs, refs, second), data.subarray(second, second + READ));
      assert.ok(cs.partialStats.blocks > 0);
    });

    it('keeps verified blocks and outboards in the host cache, re-verified, never as whole chunks', async () => {
      const data = crypto.randomBytes(4 * MiB);
      const refs = await writeOne(store, data);
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-partial-'));
      try {
        const cache = new ChunkCache({ dir, maxBytes: 1 << 30 });
        const offs = [70_000, 1_500_000, 3_000_000];
        const cold = new ChunkStore({ store, packPrefix: PREFIX, cache });
        for (const off of offs) assert.deepEqual(await randomRead(cold, refs, off), data.subarray(off, off + READ));
        await cold.flush();
        assert.ok(cold.partialStats.gets > 0);
        for (const r of refs) assert.equal(await cache.has(r.hash), false, 'no whole chunk entry from blocks');
        // A new store on the same cache: no GET, no trailer read.
        const warm = new ChunkStore({ store, packPrefix: PREFIX, cache });
        for (const off of offs) assert.deepEqual(await randomRead(warm, refs, off), data.subarray(off, off + READ));
        assert.deepEqual([warm.partialStats.gets, warm.partialStats.trailers], [0, 0]);
        // A damaged block entry is refused (and deleted), the block fetched again: right bytes.
        const sub = path.join(dir, refs[0].hash.slice(0, 2));
        const entry = `${refs[0].hash}.b${DEFAULT_BLOCK_BYTES}.${Math.floor(offs[0] / DEFAULT_BLOCK_BYTES)}`; // read by offs[0]
        const bytes = await fs.readFile(path.join(sub, entry));
        bytes[5] ^= 1;
        await fs.writeFile(path.join(sub, entry), bytes);
        const again = new ChunkStore({ store, packPrefix: PREFIX, cache });
        assert.deepEqual(await randomRead(again, refs, offs[0]), data.subarray(offs[0], offs[0] + READ));
        assert.equal(again.partialStats.gets, 1);
        assert.ok(cache.stats().corrupt >= 1);
      } finally {
        await fs.rm(dir, { recursive: true, force: true });
      }
    });

    it('reads old (v1) packs: whole chunks, right bytes', async () => {
      const chunks = [crypto.randomBytes(700_000), crypto.randomBytes(1_300_000)];
      const refs = await writeV1Pack(store, chunks);
      const data = Buffer.concat(chunks);
      const cs = fresh(store);
      for (const off of [5, 699_990, 1_000_000, data.length - 1, 0])
        assert.deepEqual(await randomRead(cs, refs, off), data.subarray(off, off + READ));
      assert.equal(cs.partialStats.blocks, 0);
      assert.ok(cs.partialStats.fallbacks > 0);
      assert.equal((await readPackTrailer(store, PREFIX + refs[0].pack)).version, 1);
    });
  });
});
