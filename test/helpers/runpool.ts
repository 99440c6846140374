/**
 * The RunPool contract (src/chunks/fetchpool.ts) cases every pool must pass — the fetch workers'
 * (test/chunks/fetchpool.test.ts) and the addon's fetch threads' (test/chunks/nativefetch.test.ts).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { ChunkCache } from '../../src/chunks/cache.js';
import { ChunkFetcher, type ChunkFetcherOptions } from '../../src/chunks/fetch.js';
import type { ChunkRef } from '../../src/chunks/types.js';
import { isCairnError } from '../../src/errors.js';
import type { ObjectStore } from '../../src/store/types.js';

export interface DamagedRunCase {
  store: ObjectStore;
  /** The chunks of `data`, at least 4, in one pack under `volumes/v1/packs/`. */
  refs: ChunkRef[];
  data: Buffer;
  /** A temp directory for the host cache. */
  dir: string;
}

/**
 * A run whose second chunk is damaged in the store: that chunk is CORRUPT and never cached; the
 * rest of the run, fetched in one job of the pool under test (a ChunkFetcher with `opts`, its pool
 * as `pool` gives it), is served with the right bytes and cached.
 *
 * @example it('a damaged chunk …', () => damagedRun({ store, refs, data, dir }, { fetchThreads: 1 }, readyPool));
 */
export async function damagedRun(
  c: DamagedRunCase,
  opts: Partial<ChunkFetcherOptions>,
  pool: (f: ChunkFetcher) => Promise<{ jobs: number }> | { jobs: number },
): Promise<void> {
  const { refs, data } = c;
  const body = await c.store.get('volumes/v1/packs/' + refs[0].pack);
  body[refs[1].offset + 11] ^= 0x5a;
  await c.store.put('volumes/v2/packs/' + refs[0].pack, body);
  const cache = new ChunkCache({ dir: path.join(c.dir, 'b'), maxBytes: 1 << 30 });
  const f = new ChunkFetcher({ store: c.store, packPrefix: 'volumes/v2/packs/', cache, mem: null, leases: null, ...opts });
  const p = await pool(f);
  const run = refs.slice(0, 4);
  const got = await Promise.allSettled(f.fetchEach(run));
  await f.flush();
  assert.equal(p.jobs, 1);
  for (let i = 0; i < run.length; i++) {
    const g = got[i];
    const cached = await cache.has(run[i].hash);
    if (i === 1) {
      assert.ok(g.status === 'rejected' && isCairnError(g.reason, 'CORRUPT'), `chunk 1: ${g.status}`);
      assert.equal(cached, false, 'the damaged chunk is not cached');
    } else {
      const at = run[i].offset - refs[0].offset;
      assert.ok(g.status === 'fulfilled' && g.value.equals(data.subarray(at, at + run[i].length)), `chunk ${i}`);
      assert.equal(cached, true, `chunk ${i} cached`);
    }
  }
}
