/**
 * The cold read path against a real S3 server (s3rver behind the test proxy): chunks of one range
 * GET reach readers as their bytes arrive, long runs become parallel range GETs, and nothing
 * unverified ever reaches a reader.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ChunkCache } from '../../src/chunks/cache.js';
import { ChunkStore } from '../../src/chunks/chunkstore.js';
import { verifyOutboard } from '../../src/chunks/outboard.js';
import { DEFAULT_BLOCK_BYTES } from '../../src/chunks/pack.js';
import type { ChunkRef } from '../../src/chunks/types.js';
import { isCairnError } from '../../src/errors.js';
import { openStore } from '../../src/store/open.js';
import type { ByteRange, GetOptions, ObjectStore } from '../../src/store/types.js';
import { startS3, type S3Server } from '../helpers/s3server.js';

const PREFIX = 'volumes/v1/packs/';
const MiB = 1024 * 1024;

/** Wraps a real store: records each GET's range, when it settled, and how many ran at once. */
function observed(inner: ObjectStore): ObjectStore & { log: { range?: ByteRange; done: boolean; doneBefore: number }[]; peak: number } {
  let running = 0;
  let done = 0;
  const log: { range?: ByteRange; done: boolean; doneBefore: number }[] = [];
  const o = Object.create(inner) as ObjectStore & { log: typeof log; peak: number };
  o.log = log;
  o.peak = 0;
  o.get = async (key: string, range?: ByteRange, opts?: GetOptions) => {
    const rec = { range, done: false, doneBefore: done };
    log.push(rec);
    o.peak = Math.max(o.peak, ++running);
    try {
      return await inner.get(key, range, opts);
    } finally {
      running--;
      done++;
      rec.done = true;
    }
  };
  return o;
}

describe('cold reads on S3', () => {
  let server: S3Server;
  let store: ObjectStore;
  let refs: ChunkRef[];
  let data: Buffer;

  before(async () => {
    server = await startS3();
    store = await openStore(server.url);
    data = crypto.randomBytes(40 * MiB);
    const w = new ChunkStore({ store, packPrefix: PREFIX, cache: null }).writer();
    refs = await w.write(data);
    await w.finish();
    assert.ok(refs.length >= 20, `${refs.length} chunks`);
  });
  after(async () => {
    await store.close();
    await server.stop();
  });

  it('hands the first chunk of a range GET to its reader before the rest of the body arrives', async () => {
    const obs = observed(store);
    // Content-defined chunks of random data vary in size: a range limit above the run's bytes
    // keeps it one GET whatever sizes this run drew. (No pack-order read-ahead: its index GET and
    // read-ahead would be further GETs; prefetch.test.ts covers it.)
    const cs = new ChunkStore({ store: obs, packPrefix: PREFIX, cache: null, rangeBytes: 64 * MiB, packReadahead: false });
    const run = refs.slice(0, 6);
    cs.prefetch(run); // one run: one range GET of ~6 MiB
    const first = await cs.readChunk(run[0]);
    assert.deepEqual(first, data.subarray(0, run[0].length));
    assert.equal(obs.log.length, 1, 'one GET for the run');
    assert.equal(obs.log[0].done, false, 'chunk 0 arrived while the GET was still receiving');
    const all = await cs.read(
      refs,
      0,
      run.reduce((n, r) => n + r.length, 0),
    );
    assert.deepEqual(all, data.subarray(0, all.length));
    assert.equal(obs.log.length, 1, 'the rest joined the same GET');
  });

  it('without streaming, the first chunk waits for the whole body (the control)', async () => {
    const obs = observed(store);
    const cs = new ChunkStore({ store: obs, packPrefix: PREFIX, cache: null, streamRuns: false, rangeBytes: 64 * MiB });
    cs.prefetch(refs.slice(0, 6));
    await cs.readChunk(refs[0]);
    assert.equal(obs.log[0].done, true);
  });

  it("a cold read's own GET runs alone: its read-ahead starts when its bytes are in", async () => {
    const obs = observed(store);
    const cs = new ChunkStore({ store: obs, packPrefix: PREFIX, cache: null });
    const cursor = cs.cursor();
    assert.deepEqual(await cs.read(refs, 0, 128 * 1024, { cursor }), data.subarray(0, 128 * 1024));
    assert.ok(obs.log.length > 1, 'read-ahead started');
    assert.equal(obs.log[0].range?.offset, refs[0].offset);
    assert.ok(
      obs.log.slice(1).every((g) => g.doneBefore >= 1),
      "read-ahead GETs started after the read's own",
    );
    // Warm now (chunk 1 in flight or held): the next read's hints start at once.
    await cs.read(refs, refs[0].length, 128 * 1024, { cursor });
  });

  it("a read of a chunk already being fetched (the native path's loads at open) starts its read-ahead when that chunk is in", async () => {
    const obs = observed(store);
    const cs = new ChunkStore({ store: obs, packPrefix: PREFIX, cache: null, packReadahead: false });
    cs.prefetch(refs.slice(0, 1)); // in flight, not held
    const cursor = cs.cursor();
    assert.deepEqual(await cs.read(refs, 0, 128 * 1024, { cursor }), data.subarray(0, 128 * 1024));
    assert.ok(obs.log.length > 1, 'read-ahead started');
    assert.ok(
      obs.log.slice(1).every((g) => g.doneBefore >= 1),
      'read-ahead GETs started after the GET of the chunk the reader waits for',
    );
  });

  it('splits a long read into parallel range GETs of at most rangeBytes', async () => {
    const obs = observed(store);
    const cs = new ChunkStore({ store: obs, packPrefix: PREFIX, cache: null, rangeBytes: 8 * MiB });
    assert.deepEqual(await cs.read(refs, 0, data.length), data);
    const lengths = obs.log.map((g) => g.range?.length ?? 0);
    assert.ok(
      lengths.every((n) => n <= 8 * MiB),
      `${lengths}`,
    );
    assert.ok(obs.log.length >= 5 && obs.peak >= 4, `${obs.log.length} GETs, ${obs.peak} at once`);
  });

  it('a streamed run with a damaged chunk: the good chunks are served, the damaged one is CORRUPT', async () => {
    const body = await store.get(PREFIX + refs[0].pack);
    const key = 'volumes/v2/packs/' + refs[0].pack;
    body[refs[2].offset + 7] ^= 0x55;
    await store.put(key, body);
    const cs = new ChunkStore({ store, packPrefix: 'volumes/v2/packs/', cache: null });
    cs.prefetch(refs.slice(0, 5));
    const got = await Promise.allSettled(refs.slice(0, 5).map((r) => cs.readChunk(r)));
    got.forEach((g, i) => {
      if (i === 2) assert.ok(g.status === 'rejected' && isCairnError(g.reason, 'CORRUPT'), `chunk 2: ${g.status}`);
      else {
        const at = refs[i].offset - refs[0].offset;
        assert.ok(g.status === 'fulfilled' && g.value.equals(data.subarray(at, at + refs[i].length)));
      }
    });
  });

  it('warm fills the host cache, outboards included: a later cold reader of the file makes no GET', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-warm-'));
    try {
      const cache = (): ChunkCache => new ChunkCache({ dir, maxBytes: 1 << 30 });
      const obs = observed(store);
      const cs = new ChunkStore({ store: obs, packPrefix: PREFIX, cache: cache(), memoryBytes: 0 });
      const seen: number[] = [];
      const r = await cs.warm(refs, { onProgress: (done, total) => seen.push(done / total) });
      assert.equal(r.bytes, data.length);
      assert.equal(r.fetched, r.chunks);
      assert.equal(seen[seen.length - 1], 1);
      assert.ok(
        seen.every((x, i) => i === 0 || x >= seen[i - 1]),
        'progress only grows',
      );
      assert.ok(obs.log.length <= Math.ceil(data.length / (8 * MiB)) + 2, `${obs.log.length} GETs`);
      const again = await cs.warm(refs);
      assert.equal(again.fetched, 0, 'all cached');
      // Each chunk of more than one block has its outboard beside it (a random reader loads blocks).
      const big = refs.filter((r) => r.length > DEFAULT_BLOCK_BYTES);
      assert.ok(big.length > 0);
      const probe = cache();
      for (const ref of big) {
        const ob = await probe.getPart(ref.hash, 'ob', (d) => verifyOutboard(d.subarray(4), ref.hash, ref.length, d.readUInt32LE(0)));
        assert.equal(ob?.readUInt32LE(0), DEFAULT_BLOCK_BYTES, `the outboard of ${ref.hash}`);
      }

      const reader = observed(store);
      const cold = new ChunkStore({ store: reader, packPrefix: PREFIX, cache: cache(), memoryBytes: 0 });
      assert.deepEqual(await cold.read(refs, 0, data.length), data);
      assert.equal(reader.log.length, 0, 'served by the host cache');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
