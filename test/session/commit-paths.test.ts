import '../helpers/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { Volume } from '../../src/volume/index.js';
import type { Session } from '../../src/session/session.js';
import { forEachBackend } from '../helpers/backends.js';

const text = async (s: Session, p: string) => (await s.read(p, 0, 1 << 30)).toString();
async function writeFile(s: Session, p: string, data: string) {
  await s.create(p, 0o644);
  await s.write(p, 0, Buffer.from(data));
}

forEachBackend((b) =>
  describe(`what a commit reports and keeps (${b.name})`, () => {
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

    it('changes no attribute a stat shows (the mount keeps attributes across its commits: native/nattr.h)', async () => {
      const vol = await fresh();
      const s = await vol.session();
      /** Every entry's stat, by path. */
      const stats = async (): Promise<Map<string, string>> => {
        const out = new Map<string, string>([['/', JSON.stringify(await s.stat('/'))]]);
        const walk = async (dir: string): Promise<void> => {
          for (const e of await s.readdir(dir)) {
            out.set(e.path, JSON.stringify(await s.stat(e.path)));
            if (e.type === 'directory') await walk(e.path);
          }
        };
        await walk('/');
        return out;
      };
      await s.mkdir('d', 0o755);
      await s.mkdir('d/e', 0o700);
      for (let i = 0; i < 8; i++) await writeFile(s, `d/f${i}`, 'x'.repeat(i * 5000 + 1)); // inline and staged
      await s.write('d/f5', 0, crypto.randomBytes(3 << 20)); // chunked at the commit
      await s.chmod('d/f1', 0o600);
      await s.setTimes('d/f2', { mtimeMs: 1e12 });
      await s.link('d/f3', 'd/e/h3');
      await s.symlink('f4', 'd/l4');
      await s.rename('d/f6', 'd/e/g6');
      await s.unlink('d/f7');
      for (const round of [1, 2]) {
        const before = await stats();
        assert.ok((await s.commit()).committed);
        assert.deepEqual(await stats(), before, `commit ${round}`);
        if (round === 2) break;
        // A second round: committed files changed again.
        await s.write('d/f5', 100, Buffer.from('changed'));
        await s.chmod('d/e/h3', 0o640);
        await s.rename('d/e/g6', 'd/g6');
      }
    });
  }),
);
