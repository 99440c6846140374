/**
 * Fetch workers (src/chunks/fetchpool.ts, fetchworker.ts) against a real S3 server (s3rver): runs
 * fetched on worker threads reach readers verified, are cached only once verified, and a damaged
 * chunk is CORRUPT — never bytes — while the good chunks of its run are served.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ChunkCache } from '../../src/chunks/cache.js';
import { ChunkStore } from '../../src/chunks/chunkstore.js';
import { ChunkFetcher } from '../../src/chunks/fetch.js';
import { FetchPool, fetchThreads } from '../../src/chunks/fetchpool.js';
import { ChunkLru } from '../../src/chunks/memlru.js';
import type { ChunkRef } from '../../src/chunks/types.js';
import { isCairnError } from '../../src/errors.js';
import { openStore } from '../../src/store/open.js';
import type { ObjectStore } from '../../src/store/types.js';
import { damagedRun } from '../helpers/runpool.js';
import { startS3, type S3Server } from '../helpers/s3server.js';

const PREFIX = 'volumes/v1/packs/';
const MiB = 1024 * 1024;

/** The fetcher's pool, once a worker of it is ready. */
async function readyPool(f: ChunkFetcher): Promise<FetchPool> {
  const pool = (f as unknown as { pool: FetchPool }).pool;
  const deadline = Date.now() + 60_000;
  while (!pool.ready()) {
    assert.ok(Date.now() < deadline, 'a fetch worker became ready');
    await new Promise((r) => setTimeout(r, 20));
  }
  return pool;
}

describe('fetch workers', () => {
  let server: S3Server;
  let store: ObjectStore;
  let refs: ChunkRef[];
  let data: Buffer;
  let dir: string;

  before(async () => {
    server = await startS3();
    store = await openStore(server.url);
    data = crypto.randomBytes(12 * MiB);
    const w = new ChunkStore({ store, packPrefix: PREFIX, cache: null, fetchThreads: 0 }).writer();
    refs = await w.write(data);
    await w.finish();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-fetchpool-'));
  });
  after(async () => {
    await store.close();
    await server.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('are off unless $CAIRN_FETCH_THREADS asks, and only for a plain S3 store (not a wrapper of one)', () => {
    const saved = process.env.CAIRN_FETCH_THREADS;
    try {
      delete process.env.CAIRN_FETCH_THREADS;
      assert.equal(fetchThreads(store), 0);
      process.env.CAIRN_FETCH_THREADS = '2';
      assert.equal(fetchThreads(store), 2);
      assert.equal(fetchThreads(Object.create(store) as ObjectStore), 0);
    } finally {
      if (saved === undefined) delete process.env.CAIRN_FETCH_THREADS;
      else process.env.CAIRN_FETCH_THREADS = saved;
    }
  });

  it('fetch runs on a worker: verified bytes to the reader, then into the host cache', async () => {
    const cache = new ChunkCache({ dir: path.join(dir, 'a'), maxBytes: 1 << 30 });
    const f = new ChunkFetcher({ store, packPrefix: PREFIX, cache, mem: new ChunkLru(64 * MiB), leases: null, fetchThreads: 1 });
    const pool = await readyPool(f);
    const got = await Promise.all(f.fetchEach(refs));
    assert.deepEqual(Buffer.concat(got), data);
    assert.ok(pool.jobs >= 1 && pool.jobs === f.gets, `${pool.jobs} worker jobs, ${f.gets} GETs`);
    await f.flush();
    for (const r of refs) {
      const entry = await fs.readFile(cache.pathOf(r.hash));
      assert.ok(entry.equals(data.subarray(r.offset - refs[0].offset, r.offset - refs[0].offset + r.length)), 'cache entry is the chunk');
    }
  });

  it('a damaged chunk is CORRUPT and never cached; the rest of its run is served and cached', () =>
    damagedRun({ store, refs, data, dir }, { fetchThreads: 1 }, readyPool));

  it('a missing pack is NOT_FOUND from the worker, as on the event loop', async () => {
    const f = new ChunkFetcher({ store, packPrefix: 'volumes/v3/packs/', cache: null, mem: null, leases: null, fetchThreads: 1 });
    const pool = await readyPool(f);
    const [r] = await Promise.allSettled(f.fetchEach([refs[0]]));
    assert.ok(r.status === 'rejected' && isCairnError(r.reason, 'NOT_FOUND'), r.status === 'rejected' ? String(r.reason) : 'resolved');
    assert.equal(pool.jobs, 1);
  });

  it('a ChunkStore reads through its workers once they are ready (the first reads go inline)', async () => {
    const cs = new ChunkStore({ store, packPrefix: PREFIX, cache: null, fetchThreads: 2 });
    assert.deepEqual(await cs.read(refs, 0, data.length), data, 'read while the workers start');
    const later = new ChunkStore({ store, packPrefix: PREFIX, cache: null, fetchThreads: 2, memoryBytes: 0 });
    const deadline = Date.now() + 60_000;
    for (;;) {
      const before = FetchPool.jobs;
      assert.deepEqual(await later.read(refs, 0, data.length), data);
      if (FetchPool.jobs > before) break;
      assert.ok(Date.now() < deadline, 'the workers took over');
      await new Promise((r) => setTimeout(r, 50));
    }
  });
});
