import '../helpers/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { isCairnError } from '../../src/errors.js';
import { Journal } from '../../src/session/journal.js';
import { OFFLOAD_MIN_BYTES, Session } from '../../src/session/session.js';
import { VolumeLog } from '../../src/format/log.js';
import { Volume } from '../../src/volume/index.js';
import { Catalog } from '../../src/format/catalog.js';
import { keys } from '../../src/format/index.js';
import { CHECKPOINT_EVERY } from '../../src/session/index.js';
import { forEachBackend } from '../helpers/backends.js';

forEachBackend((b) => {
  describe(`journal work in child processes (${b.name} store)`, () => {
    let tmp: string;
    before(async () => {
      await b.start();
      tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-boot-'));
    });
    after(async () => {
      await fs.rm(tmp, { recursive: true, force: true });
      await b.stop();
    });

    it('fills the journal with the same snapshot as an in-process bootstrap', async () => {
      const store = await b.open();
      const vol = await Volume.fromName('boot', { store, createIfMissing: true });
      await vol.batchUpload({}, (up) => {
        for (let i = 0; i < 50; i++) up.putFile(Buffer.from(`file ${i}\n`.repeat(i * 200)), `/d${i % 5}/f${i}.txt`);
      });
      const dir = path.join(tmp, 'a');
      await fs.mkdir(dir);
      const s = await Session.open({ store, volume: await new Catalog(store).lookup('boot'), dir, offload: true, offloadMinBytes: 0 });
      try {
        assert.equal(s.bootstrapped, 'child');
        assert.equal(s.seq, 1);
        assert.deepEqual((await s.readdir('/')).map((e) => e.path).sort(), ['d0', 'd1', 'd2', 'd3', 'd4']);
        for (const i of [0, 7, 49]) {
          assert.equal((await s.read(`/d${i % 5}/f${i}.txt`, 0, 1 << 20)).toString(), `file ${i}\n`.repeat(i * 200));
        }
        await s.create('/new.txt', 0o644);
        await s.write('/new.txt', 0, Buffer.from('after bootstrap'));
        assert.equal((await s.commit()).seq, 2);
      } finally {
        await s.close();
      }
      await vol.close();
      await store.close();
    });

    it('bootstraps a small volume in-process, a bigger one in a child (offloadMinBytes)', async () => {
      const store = await b.open();
      const vol = await Volume.fromName('small', { store, createIfMissing: true });
      await vol.batchUpload({}, (up) => up.putFile(Buffer.from('x'), '/x'));
      const meta = await new Catalog(store).lookup('small');
      const bytes = await new VolumeLog(store, meta.id).bootstrapBytes();
      assert.ok(bytes > 0 && bytes < OFFLOAD_MIN_BYTES, `${bytes} bytes`);
      for (const [name, min, how] of [
        ['s1', undefined, 'in-process'],
        ['s2', bytes, 'child'],
        ['s3', bytes + 1, 'in-process'],
      ] as const) {
        const dir = path.join(tmp, name);
        await fs.mkdir(dir);
        const s = await Session.open({ store, volume: meta, dir, offload: true, ...(min !== undefined ? { offloadMinBytes: min } : {}) });
        try {
          assert.equal(s.bootstrapped, how, name);
          assert.equal((await s.read('/x', 0, 10)).toString(), 'x');
        } finally {
          await s.close();
        }
      }
      await vol.close();
      await store.close();
    });

    it('writes checkpoints in a child, and a new session starts from them', async () => {
      const store = await b.open();
      const vol = await Volume.fromName('cp', { store, createIfMissing: true });
      const dir = path.join(tmp, 'c');
      await fs.mkdir(dir);
      const meta = await new Catalog(store).lookup('cp');
      const s = await Session.open({ store, volume: meta, dir, offload: true, offloadMinBytes: 0 });
      try {
        for (let i = 1; i <= CHECKPOINT_EVERY; i++) {
          await s.create(`/f${i % 7}`, 0o644);
          await s.write(`/f${i % 7}`, 0, Buffer.from(`v${i}`));
          await s.commit();
        }
        // The commit that triggers it does not wait for it: poll for the object.
        const deadline = Date.now() + 30_000;
        let cps: string[] = [];
        while (Date.now() < deadline) {
          cps = (await store.list(keys.checkpointPrefix(vol.id))).map((o) => o.key);
          if (cps.length > 0) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        assert.deepEqual(
          cps.map((k) => Number(k.split('/').pop())),
          [CHECKPOINT_EVERY],
        );
      } finally {
        await s.close();
      }
      for (let seq = 1; seq <= CHECKPOINT_EVERY; seq++) await store.delete(keys.log(vol.id, seq));
      const dir2 = path.join(tmp, 'c2');
      await fs.mkdir(dir2);
      const fresh = await Session.open({ store, volume: meta, dir: dir2, offload: true, offloadMinBytes: 0 });
      try {
        assert.equal(fresh.seq, CHECKPOINT_EVERY);
        assert.equal((await fresh.read('/f2', 0, 10)).toString(), `v${CHECKPOINT_EVERY - ((CHECKPOINT_EVERY - 2) % 7)}`);
      } finally {
        await fresh.close();
      }
      await vol.close();
      await store.close();
    });

    it("reports the child's error as the same CairnError, and the next open starts again", async () => {
      const store = await b.open();
      const vol = await Volume.fromName('broken', { store, createIfMissing: true });
      await vol.batchUpload({}, (up) => up.putFile(Buffer.from('x'), '/x'));
      const key = keys.log(vol.id, 1);
      const good = await store.get(key);
      await store.put(key, Buffer.from('{ not json'));
      const dir = path.join(tmp, 'b');
      await fs.mkdir(dir);
      await assert.rejects(
        Session.open({ store, volume: await new Catalog(store).lookup('broken'), dir, offload: true, offloadMinBytes: 0 }),
        (e: unknown) => isCairnError(e, 'CORRUPT'),
      );
      const j = new Journal(path.join(dir, 'journal.db'));
      assert.equal(j.volumeId, undefined, 'a failed bootstrap leaves the journal unclaimed');
      j.close();
      await store.put(key, good);
      const s = await Session.open({ store, volume: await new Catalog(store).lookup('broken'), dir, offload: true, offloadMinBytes: 0 });
      try {
        assert.equal((await s.read('/x', 0, 10)).toString(), 'x');
      } finally {
        await s.close();
      }
      await vol.close();
      await store.close();
    });
  });
});
