/**
 * Two GCs of one volume interleaved deterministically, on every backend: GC A is paused at a
 * chosen read (a hook in a store wrapper, the store itself real) while GC B runs to the end with a
 * shorter retention, raising the floor and pruning what A was reading. A must treat "the
 * snapshot I was reading was pruned under me" as "another GC moved the floor" and start again,
 * never fail; afterwards every retained snapshot reads back and verify is clean.
 */
import '../helpers/env.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Volume } from '../../src/index.js';
import type { ObjectStore } from '../../src/store/types.js';
import { keys } from '../../src/format/index.js';
import { gcVolume } from '../../src/volume/gc.js';
import { forEachBackend, useBackendStore } from '../helpers/backends.js';
import { pausedAt } from '../helpers/paused.js';
import type { Session } from '../../src/session/session.js';

const GRACE = 2_000;

async function putFile(s: Session, p: string, data: Buffer): Promise<number> {
  await s.create(p, 0o644);
  await s.write(p, 0, data);
  return (await s.commit()).seq;
}

forEachBackend((b) =>
  describe(`gc interleaved (${b.name})`, () => {
    let store: ObjectStore;
    useBackendStore(b, (s) => (store = s));

    async function fiveCommits(name: string): Promise<Volume> {
      const vol = await Volume.fromName(name, { store, createIfMissing: true });
      const s = await vol.session();
      for (let i = 1; i <= 5; i++) await putFile(s, `f${i}`, Buffer.from(`v${i}`));
      await s.close();
      return vol;
    }

    async function checkAfter(vol: Volume, floor: number): Promise<void> {
      for (let seq = floor; seq <= 5; seq++) {
        const s = await vol.session({ seq, readOnly: true });
        for (let i = 1; i <= seq; i++) assert.equal((await s.read(`f${i}`, 0, 2)).toString(), `v${i}`);
        await s.close();
      }
      assert.deepEqual((await vol.verify({ data: true })).problems, []);
    }

    it('a gc building the checkpoint at its floor while another prunes past it starts again', async () => {
      const vol = await fiveCommits('cp-build');
      const { id, name } = vol;
      // A keeps 3 (from 3: no checkpoint there, so it bootstraps 3 from the records); B, at A's
      // first record read, keeps 1: floor 5, checkpoint 5, records 1-4 gone.
      const paused = pausedAt(
        store,
        'get',
        (k) => k.startsWith(keys.logPrefix(id)),
        async () => {
          const rb = await gcVolume(store, { id, name }, { keepLast: 1, graceMs: GRACE });
          assert.equal(rb.retainedFrom, 5);
        },
      );
      const ra = await gcVolume(paused, { id, name }, { keepLast: 3, graceMs: GRACE });
      assert.equal(ra.retainedFrom, 5, 'A starts again from the floor B raised');
      await checkAfter(vol, 5);
      await vol.close();
    });

    it('a gc marking from a checkpoint another prunes under it starts again', async () => {
      const vol = await fiveCommits('cp-mark');
      const { id, name } = vol;
      await gcVolume(store, { id, name }, { keepLast: 3, graceMs: GRACE }); // checkpoint at 3
      const paused = pausedAt(
        store,
        'get',
        (k) => k.startsWith(keys.checkpointPrefix(id)),
        async () => void (await gcVolume(store, { id, name }, { keepLast: 1, graceMs: GRACE })),
      );
      const ra = await gcVolume(paused, { id, name }, { keepLast: 3, graceMs: GRACE });
      assert.equal(ra.retainedFrom, 5);
      await checkAfter(vol, 5);
      await vol.close();
    });

    it('a gc reading the records after its checkpoint while another prunes them starts again', async () => {
      const vol = await fiveCommits('records');
      const { id, name } = vol;
      await gcVolume(store, { id, name }, { keepLast: 3, graceMs: GRACE }); // checkpoint at 3
      const paused = pausedAt(
        store,
        'get',
        (k) => k === keys.log(id, 4),
        async () => void (await gcVolume(store, { id, name }, { keepLast: 1, graceMs: GRACE })),
      );
      const ra = await gcVolume(paused, { id, name }, { keepLast: 3, graceMs: GRACE });
      assert.equal(ra.retainedFrom, 5);
      await checkAfter(vol, 5);
      await vol.close();
    });
  }),
);
