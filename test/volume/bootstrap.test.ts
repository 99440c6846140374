import '../helpers/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { isCairnError } from '../../src/errors.js';
import { Journal } from '../../src/journal/journal.js';
import { Session } from '../../src/volume/session.js';
import { Volume } from '../../src/volume/index.js';
import { Catalog } from '../../src/volume/catalog.js';
import { keys } from '../../src/volume/records.js';
import { forEachBackend } from '../helpers/backends.js';

forEachBackend((b) => {
  describe(`bootstrap in a child process (${b.name} store)`, () => {
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
      const s = await Session.open({ store, volume: await new Catalog(store).lookup('boot'), dir, bootstrapInChild: true });
      try {
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

    it("reports the child's error as the same CairnError, and the next open starts again", async () => {
      const store = await b.open();
      const vol = await Volume.fromName('broken', { store, createIfMissing: true });
      await vol.batchUpload({}, (up) => up.putFile(Buffer.from('x'), '/x'));
      const key = keys.log(vol.id, 1);
      const good = await store.get(key);
      await store.put(key, Buffer.from('{ not json'));
      const dir = path.join(tmp, 'b');
      await fs.mkdir(dir);
      await assert.rejects(Session.open({ store, volume: await new Catalog(store).lookup('broken'), dir, bootstrapInChild: true }), (e: unknown) => isCairnError(e, 'CORRUPT'));
      const j = new Journal(path.join(dir, 'journal.db'));
      assert.equal(j.getMeta('volumeId'), undefined, 'a failed bootstrap leaves the journal unclaimed');
      j.close();
      await store.put(key, good);
      const s = await Session.open({ store, volume: await new Catalog(store).lookup('broken'), dir, bootstrapInChild: true });
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
