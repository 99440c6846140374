/**
 * Native fetches (src/chunks/nativefetch.ts, native/nfetch.c) against a real S3 server (s3rver)
 * behind the fault proxy: runs received by the addon's fetch threads reach readers verified, are
 * cached only once verified, a damaged chunk is CORRUPT (never bytes) while the rest of its run is
 * served, and every kind of failed GET ends in the bytes fetched through the store — or in the
 * store's own error — never in wrong bytes or a hang.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ChunkCache } from '../../src/chunks/cache.js';
import { ChunkStore } from '../../src/chunks/chunkstore.js';
import { ChunkFetcher } from '../../src/chunks/fetch.js';
import { FAILS_TO_STOP, NativeFetchPool, nativeFetchStats } from '../../src/chunks/nativefetch.js';
import type { ChunkRef } from '../../src/chunks/types.js';
import { isCairnError } from '../../src/errors.js';
import { openStore } from '../../src/store/open.js';
import type { ObjectStore } from '../../src/store/types.js';
import { loadAddon } from '../../src/util/addon.js';
import { useFaultedS3, type FaultMode } from '../helpers/faultproxy.js';
import { damagedRun } from '../helpers/runpool.js';

const PREFIX = 'volumes/v1/packs/';
const MiB = 1024 * 1024;

/** The fetcher's pool (a NativeFetchPool here, or the test fails). */
function poolOf(f: ChunkFetcher): NativeFetchPool {
  const pool = (f as unknown as { pool: unknown }).pool;
  assert.ok(pool instanceof NativeFetchPool, 'the fetcher uses the addon fetch threads');
  return pool;
}

describe('native fetches', () => {
  const env = useFaultedS3(7);
  let store: ObjectStore;
  let refs: ChunkRef[];
  let data: Buffer;
  let dir: string;

  const slice = (r: ChunkRef): Buffer => data.subarray(r.offset - refs[0].offset, r.offset - refs[0].offset + r.length);

  it('the addon has them (built with libcurl and the C BLAKE3: scripts/setup.sh installs both)', async () => {
    const addon = loadAddon() as { nfetchStart?: unknown } | undefined;
    assert.equal(typeof addon?.nfetchStart, 'function');
    store = await openStore(env.fp.freshUrl());
    data = crypto.randomBytes(12 * MiB);
    const w = new ChunkStore({ store, packPrefix: PREFIX, cache: null, nativeFetch: false }).writer();
    refs = await w.write(data);
    await w.finish();
    assert.ok(refs.length >= 6 && new Set(refs.map((r) => r.pack)).size === 1, `${refs.length} chunks in one pack`);
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-nativefetch-'));
  });

  it('are used for a plain S3 store, not for a wrapper of one, nor with CAIRN_NATIVE_FETCH=0', () => {
    assert.ok(NativeFetchPool.for(store, null));
    assert.equal(NativeFetchPool.for(Object.create(store) as ObjectStore, null), null);
    process.env.CAIRN_NATIVE_FETCH = '0';
    try {
      assert.equal(NativeFetchPool.for(store, null), null);
    } finally {
      delete process.env.CAIRN_NATIVE_FETCH;
    }
  });

  it('fetch a run on a native thread: verified bytes to the readers, then into the host cache', async () => {
    const cache = new ChunkCache({ dir: path.join(dir, 'a'), maxBytes: 1 << 30 });
    const f = new ChunkFetcher({ store, packPrefix: PREFIX, cache, mem: null, leases: null });
    const pool = poolOf(f);
    env.fp.resetCounters();
    const got = await Promise.all(f.fetchEach(refs));
    assert.deepEqual(Buffer.concat(got), data);
    assert.ok(pool.jobs >= 1 && pool.jobs === f.gets, `${pool.jobs} native runs, ${f.gets} GETs`);
    assert.equal(env.fp.counters.byMethod.GET, f.gets, 'one GET per run');
    await f.flush();
    for (const r of refs) assert.ok((await fs.readFile(cache.pathOf(r.hash))).equals(slice(r)), 'the cache entry is the chunk');
    assert.equal(cache.stats().puts, refs.length, 'the cache counts the entries the addon wrote');
    // Not streamed: the same bytes, handed over at the end of the body.
    const whole = new ChunkFetcher({ store, packPrefix: PREFIX, cache: null, mem: null, leases: null, streamRuns: false });
    assert.deepEqual(Buffer.concat(await Promise.all(whole.fetchEach(refs))), data);
  });

  it('a damaged chunk is CORRUPT and never cached; the rest of its run is served and cached', () =>
    damagedRun({ store, refs, data, dir }, {}, poolOf));

  it('a missing pack is NOT_FOUND, from the store, after the native GET failed', async () => {
    const f = new ChunkFetcher({ store, packPrefix: 'volumes/v3/packs/', cache: null, mem: null, leases: null });
    const pool = poolOf(f);
    const [r] = await Promise.allSettled(f.fetchEach([refs[0]]));
    assert.ok(r.status === 'rejected' && isCairnError(r.reason, 'NOT_FOUND'), r.status === 'rejected' ? String(r.reason) : 'resolved');
    assert.equal(pool.jobs, 1);
    assert.match(nativeFetchStats.lastError ?? '', /HTTP 404/);
  });

  for (const mode of ['500-before', '503', 'reset', 'truncate', 'stall-body'] as FaultMode[]) {
    it(`a GET that fails (${mode}) on a native thread is fetched again through the store: the right bytes`, async () => {
      // The same store with a shorter idle limit (2 s), so that a stalled body is given up soon.
      const faulty = await openStore(`${store.url}&timeout_ms=12000`);
      try {
        const f = new ChunkFetcher({ store: faulty, packPrefix: PREFIX, cache: null, mem: null, leases: null });
        const pool = poolOf(f);
        const failures = nativeFetchStats.failures;
        env.fp.once({ mode, methods: ['GET'], key: /packs/ });
        const got = await Promise.all(f.fetchEach(refs));
        assert.deepEqual(Buffer.concat(got), data);
        assert.ok(pool.jobs >= 1 && f.gets === pool.jobs + 1, `${pool.jobs} native runs, ${f.gets} GETs: the failed run again`);
        assert.equal(nativeFetchStats.failures, failures + 1, `the native GET failed: ${nativeFetchStats.lastError}`);
        // What `cairn status` shows says why: the status, curl's error, or the idle limit.
        const why = { '500-before': /^HTTP 500$/, '503': /^HTTP 503$/, 'stall-body': /nothing heard for \d+ ms/ }[mode as string];
        if (why) assert.match(nativeFetchStats.lastError ?? '', why);
      } finally {
        await faulty.close();
      }
    });
  }

  it('a store closed under a fetcher: the read fails with CLOSED, from the store (never hangs)', async () => {
    const other = await openStore(store.url);
    const f = new ChunkFetcher({ store: other, packPrefix: PREFIX, cache: null, mem: null, leases: null });
    poolOf(f);
    await other.close();
    const [r] = await Promise.allSettled(f.fetchEach([refs[0]]));
    assert.ok(r.status === 'rejected' && isCairnError(r.reason, 'CLOSED'), r.status === 'rejected' ? String(r.reason) : 'resolved');
  });

  it(`stops after ${FAILS_TO_STOP} failures without a success (a store curl cannot reach the way Node does)`, async () => {
    const f = new ChunkFetcher({ store, packPrefix: 'volumes/v3/packs/', cache: null, mem: null, leases: null });
    const pool = poolOf(f);
    for (let k = 0; k < FAILS_TO_STOP; k++) {
      assert.ok(pool.ready(), `ready before failure ${k + 1}`);
      const [r] = await Promise.allSettled(f.fetchEach([refs[k]]));
      assert.equal(r.status, 'rejected');
    }
    assert.equal(pool.ready(), false);
    assert.equal(pool.jobs, FAILS_TO_STOP);
    await Promise.allSettled(f.fetchEach([refs[FAILS_TO_STOP]]));
    assert.equal(pool.jobs, FAILS_TO_STOP, 'no more native runs');
    await store.close();
    await fs.rm(dir, { recursive: true, force: true });
  });
});
