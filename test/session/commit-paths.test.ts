import '../helpers/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Volume } from '../../src/volume/index.js';
import type { Session } from '../../src/session/session.js';
import { forEachBackend } from '../helpers/backends.js';

const text = async (s: Session, p: string) => (await s.read(p, 0, 1 << 30)).toString();
async function writeFile(s: Session, p: string, data: string) {
  await s.create(p, 0o644);
  await s.write(p, 0, Buffer.from(data));
}

forEachBackend((b) =>
  describe(`what a commit reports (${b.name})`, () => {
    before(() => b.start());
    after(() => b.stop());
    let n = 0;
    const fresh = async () => Volume.fromName(`cp${++n}`, { createIfMissing: true, store: await b.open() });

    it("lists each path a commit changed once, and never the mount's hidden names of open unlinked files", async () => {
      const vol = await fresh();
      const a = await vol.session();
      await writeFile(a, 'y', 'old');
      await a.commit();
      await writeFile(a, 'z', 'new');
      await a.rename('z', 'y'); // a delete of y and of z, and a put of y
      // What the mount does to a file unlinked while open: a hidden name, removed at the last close.
      await writeFile(a, 'open', 'bytes');
      await a.rename('open', '.fuse_hidden0000000100000001');
      await a.unlink('.fuse_hidden0000000100000001');
      const res = await a.commit();
      // `open` was touched (created, then moved away): its absence is published, the hidden name never.
      assert.deepEqual([...res.paths].sort(), ['open', 'y', 'z']);
      const last = (await vol.history()).at(-1)!;
      assert.deepEqual([...last.paths].sort(), ['/open', '/y', '/z']);
      assert.equal(await text(await vol.session(), 'y'), 'new');
    });
  }),
);
