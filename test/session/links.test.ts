/**
 * Hard links through a session (src/session/links.ts): one file under several names, with a link
 * count, kept by commit, reload, a new session and time travel; the merge rule of links (the last
 * committed put of any name sets the file for all of them); copies are independent files.
 */
import '../helpers/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Volume } from '../../src/volume/index.js';
import type { Session } from '../../src/session/session.js';
import { forEachBackend } from '../helpers/backends.js';

async function rejectsCode(p: Promise<unknown>, code: string) {
  await assert.rejects(p, (e: any) => e.code === code || assert.fail(`expected ${code}, got ${e.code}: ${e.message}`));
}
const text = async (s: Session, p: string) => (await s.read(p, 0, 1 << 20)).toString();

forEachBackend((b) =>
  describe(`session hard links (${b.name})`, () => {
    before(() => b.start());
    after(() => b.stop());
    let n = 0;
    const fresh = async () => Volume.fromName(`links${++n}`, { createIfMissing: true, store: await b.open() });

    it('a linked file held in the journal (small) keeps both names equal as it grows into a staging file', async () => {
      const vol = await fresh();
      const a = await vol.session();
      await a.create('/small');
      await a.write('/small', 0, Buffer.from('tiny'));
      await a.link('/small', '/alias');
      await a.write('/alias', 4, Buffer.from('+more'));
      assert.equal(await text(a, '/small'), 'tiny+more');
      const big = Buffer.alloc(10_000, 'x'); // past the 4 KiB held in the journal: moves to a staging file
      await a.write('/small', 9, big);
      assert.equal((await a.stat('/alias')).size, 9 + big.length);
      assert.equal(await text(a, '/alias'), 'tiny+more' + big.toString());
      await a.write('/alias', 0, Buffer.from('TINY'));
      assert.equal((await a.read('/small', 0, 4)).toString(), 'TINY');
      await a.commit();
      const b = await vol.session();
      assert.equal(await text(b, '/small'), 'TINY+more' + big.toString());
      assert.deepEqual([(await b.stat('/small')).nlink, (await b.stat('/alias')).nlink], [2, 2]);
      for (const s of [a, b]) await s.close();
      await vol.close();
    });

    it('shares content, metadata and a link count between names, kept by commit, a new session and time travel', async () => {
      const vol = await fresh();
      const a = await vol.session();
      await a.mkdir('/d');
      await a.create('/d/f');
      await a.write('/d/f', 0, Buffer.from('one'));
      await a.link('/d/f', '/h');
      const [f, h] = [await a.stat('/d/f'), await a.stat('/h')];
      assert.deepEqual([f.nlink, h.nlink], [2, 2]);
      assert.ok(f.linkId && f.linkId === h.linkId);
      await a.write('/h', 3, Buffer.from('+two')); // through the new name, before any commit
      assert.equal(await text(a, '/d/f'), 'one+two');
      await a.chmod('/d/f', 0o600);
      await a.setxattr('/h', 'user.k', Buffer.from('v'));
      assert.equal((await a.stat('/h')).mode, 0o600);
      assert.equal((await a.getxattr('/d/f', 'user.k')).toString(), 'v');
      const linked = (await a.commit()).seq;
      assert.equal(await text(a, '/h'), 'one+two');
      await a.truncate('/d/f', 3); // after the commit: the committed content is copied once, for both names
      assert.equal(await text(a, '/h'), 'one');
      await a.commit();

      const c = await vol.session();
      assert.deepEqual([(await c.stat('/d/f')).nlink, (await c.stat('/h')).nlink], [2, 2]);
      assert.equal((await c.stat('/d/f')).linkId, (await c.stat('/h')).linkId);
      assert.equal(await text(c, '/h'), 'one');
      await c.write('/d/f', 0, Buffer.from('ONE'));
      await c.commit();
      await a.reload();
      assert.equal(await text(a, '/h'), 'ONE');
      assert.deepEqual((await vol.listdir('/')).find((e) => e.path === 'h')?.nlink, 2);

      const old = await vol.session({ seq: linked });
      assert.equal(await text(old, '/h'), 'one+two');
      assert.equal((await old.stat('/h')).nlink, 2);
      for (const s of [a, c, old]) await s.close();
    });

    it('survives gc (a checkpoint at the floor) and verify', async () => {
      const vol = await fresh();
      const a = await vol.session();
      await a.create('/a');
      await a.write('/a', 0, Buffer.alloc(300_000, 7)); // chunked, not inline
      await a.link('/a', '/b');
      await a.commit();
      await a.write('/b', 0, Buffer.from('x'));
      await a.commit();
      const g = await vol.gc({ keepLast: 1, graceMs: 2000 });
      assert.equal(g.checkpoints.written, 1, 'a checkpoint at the floor, read by the next session');
      const report = await vol.verify({ data: true });
      assert.ok(report.ok, JSON.stringify(report).slice(0, 500));
      const c = await vol.session(); // from the checkpoint gc wrote at the floor
      assert.deepEqual([(await c.stat('/a')).nlink, (await c.stat('/b')).nlink], [2, 2]);
      assert.equal((await c.read('/a', 0, 2)).toString('hex'), '7807');
      await c.write('/a', 1, Buffer.from('y'));
      assert.equal((await c.read('/b', 0, 2)).toString(), 'xy');
      for (const s of [a, c]) await s.close();
    });

    it('recovers a linked file written through one name from a reopened session directory (one staging file)', async () => {
      const vol = await fresh();
      const dir = `${process.env.CAIRN_HOME}/links-recover-${b.name}-${n}`;
      const a = await vol.session({ dir });
      await a.create('/a');
      await a.link('/a', '/b');
      await a.write('/b', 0, Buffer.from('pending'));
      assert.equal(a.journal.get('a')?.staged, a.journal.get('b')?.staged);
      await a.close();
      const again = await vol.session({ dir });
      assert.equal(await text(again, '/a'), 'pending');
      await again.write('/a', 7, Buffer.from('!'));
      await again.commit();
      await again.close();
      const c = await vol.session();
      assert.deepEqual([await text(c, '/b'), (await c.stat('/b')).nlink], ['pending!', 2]);
      await c.close();
    });

    it('unlink drops one name; rename keeps the link; the last name lives on', async () => {
      const vol = await fresh();
      const a = await vol.session();
      await a.create('/a');
      await a.write('/a', 0, Buffer.from('data'));
      await a.link('/a', '/b');
      await a.link('/b', '/c');
      assert.equal((await a.stat('/a')).nlink, 3);
      await a.mkdir('/sub');
      await a.rename('/b', '/c'); // two names of one file: rename(2) does nothing
      assert.deepEqual([(await a.stat('/b')).nlink, (await a.stat('/c')).nlink], [3, 3]);
      await a.rename('/b', '/sub/b2');
      assert.equal((await a.stat('/sub/b2')).nlink, 3);
      await a.unlink('/a');
      assert.deepEqual([(await a.stat('/c')).nlink, (await a.stat('/sub/b2')).nlink], [2, 2]);
      await a.commit();
      await a.write('/sub/b2', 0, Buffer.from('DA'));
      assert.equal(await text(a, '/c'), 'DAta');
      await a.commit();
      const c = await vol.session();
      assert.equal(await text(c, '/c'), 'DAta');
      assert.equal((await c.stat('/c')).nlink, 2);
      await c.unlink('/c');
      assert.equal((await c.stat('/sub/b2')).nlink, 1);
      await c.commit();
      await c.unlink('/sub/b2');
      await c.commit();
      await rejectsCode(c.stat('/sub/b2'), 'NOT_FOUND');
      for (const s of [a, c]) await s.close();
    });

    it('removing one name (unlink, a rename over it) sets the ctime of the names left, and the commit publishes it', async () => {
      const vol = await fresh();
      const a = await vol.session();
      await a.create('/a');
      await a.write('/a', 0, Buffer.from('data'));
      await a.link('/a', '/b');
      await a.link('/a', '/c');
      await a.create('/other');
      await a.commit();
      const ctime = async (s: Session, p: string) => (await s.stat(p)).ctimeMs;
      const before = await ctime(a, '/a');
      await new Promise((r) => setTimeout(r, 20));
      await a.unlink('/c');
      const afterUnlink = await ctime(a, '/a');
      assert.ok(afterUnlink > before, `ctime ${afterUnlink} > ${before}`);
      assert.equal(await ctime(a, '/b'), afterUnlink, 'every name shows it');
      await new Promise((r) => setTimeout(r, 20));
      await a.rename('/other', '/b'); // /b was a name of the file: /a is its last name now
      assert.ok((await ctime(a, '/a')) > afterUnlink);
      assert.equal((await a.stat('/a')).nlink, 1);
      const published = await ctime(a, '/a');
      await a.commit();
      const c = await vol.session();
      assert.equal(await ctime(c, '/a'), published);
      assert.equal(await text(c, '/a'), 'data');
      for (const s of [a, c]) await s.close();
    });

    it('refuses directories (NOT_PERMITTED), existing names (ALREADY_EXISTS), missing parents and sources (NOT_FOUND)', async () => {
      const vol = await fresh();
      const a = await vol.session();
      await a.mkdir('/d');
      await a.create('/f');
      await rejectsCode(a.link('/d', '/d2'), 'NOT_PERMITTED');
      await rejectsCode(a.link('/f', '/d'), 'ALREADY_EXISTS');
      await rejectsCode(a.link('/f', '/f'), 'ALREADY_EXISTS');
      await rejectsCode(a.link('/f', '/nope/g'), 'NOT_FOUND');
      await rejectsCode(a.link('/nope', '/g'), 'NOT_FOUND');
      assert.equal((await a.stat('/f')).nlink, 1);
      assert.equal(a.pendingCount(), 2);
      await a.commit();
      await rejectsCode(vol.link('/d', '/e'), 'NOT_PERMITTED');
      await vol.link('/f', '/d/g');
      assert.equal((await vol.listdir('/d')).find((e) => e.path === 'd/g')?.nlink, 2);
      const ro = await vol.session({ readOnly: true });
      await rejectsCode(ro.link('/f', '/g'), 'READ_ONLY');
      for (const s of [a, ro]) await s.close();
    });

    it('links symlinks and special files too', async () => {
      const vol = await fresh();
      const a = await vol.session();
      await a.symlink('target', '/s');
      await a.mknod('/p', 'fifo', 0o644);
      await a.link('/s', '/s2');
      await a.link('/p', '/p2');
      await a.commit();
      const c = await vol.session();
      assert.equal(await c.readlink('/s2'), 'target');
      assert.deepEqual([(await c.stat('/p2')).type, (await c.stat('/p2')).nlink], ['fifo', 2]);
      for (const s of [a, c]) await s.close();
    });

    it('a copy of a linked file is a new, independent file', async () => {
      const vol = await fresh();
      const a = await vol.session();
      await a.create('/a');
      await a.write('/a', 0, Buffer.from('x'));
      await a.link('/a', '/b');
      await a.copy('/a', '/copy');
      await a.commit();
      await vol.copyFiles(['/b'], '/copy2');
      await a.reload();
      for (const p of ['/copy', '/copy2']) {
        const st = await a.stat(p);
        assert.deepEqual([st.nlink, st.linkId], [1, undefined]);
      }
      await a.write('/copy', 0, Buffer.from('y'));
      assert.equal(await text(a, '/a'), 'x');
      assert.equal((await a.stat('/a')).nlink, 2);
      await a.close();
    });

    it('merges: the last committed put of any name sets the file for every name', async () => {
      const vol = await fresh();
      const s0 = await vol.session();
      await s0.create('/a');
      await s0.write('/a', 0, Buffer.from('base'));
      await s0.link('/a', '/b');
      await s0.commit();
      await s0.close();

      // Writer 1 renames one name away; writer 2 (same base) writes through the other, later.
      const w1 = await vol.session();
      const w2 = await vol.session();
      await w1.rename('/a', '/c');
      await w1.commit();
      await w2.write('/b', 0, Buffer.from('BASE'));
      const r = await w2.commit();
      assert.ok(r.paths.includes('a') && r.paths.includes('b'), `the record holds every name: ${r.paths}`);
      await w1.reload();
      const check = async (s: Session) => {
        // a (written by w2, as a name of the file) is back; c, renamed by w1, is the same file and
        // takes w2's content: w2's record committed last.
        for (const p of ['/a', '/b', '/c']) assert.equal(await text(s, p), 'BASE', p);
        assert.equal((await s.stat('/c')).nlink, 3);
      };
      await check(w1);
      const fresh1 = await vol.session();
      await check(fresh1);

      // The other order: the rename commits last, and its put of /c sets the file (content and all).
      const w3 = await vol.session();
      const w4 = await vol.session();
      await w3.write('/a', 0, Buffer.from('late'));
      await w3.commit();
      await w4.chmod('/c', 0o640);
      await w4.commit();
      const last = await vol.session();
      for (const p of ['/a', '/b', '/c']) {
        assert.equal(await text(last, p), 'BASE', p);
        assert.equal((await last.stat(p)).mode, 0o640, p);
      }

      // A name replaced by another writer's plain file leaves the file; the other names stay linked.
      const w5 = await vol.session();
      await w5.create('/b');
      await w5.write('/b', 0, Buffer.from('own'));
      await w5.commit();
      const end = await vol.session();
      assert.equal(await text(end, '/b'), 'own');
      assert.deepEqual([(await end.stat('/b')).nlink, (await end.stat('/a')).nlink], [1, 2]);
      for (const s of [w1, w2, fresh1, w3, w4, last, w5, end]) await s.close();
    });

    it("keeps pending changes of one name on top of a reload that brings another writer's change to the file", async () => {
      const vol = await fresh();
      const s0 = await vol.session();
      await s0.create('/a');
      await s0.link('/a', '/b');
      await s0.commit();
      const other = await vol.session();
      await other.write('/b', 0, Buffer.from('theirs'));
      await other.commit();
      await s0.write('/a', 0, Buffer.from('mine'));
      await s0.commit(); // lands after theirs: ours wins for the whole file
      await s0.reload();
      assert.equal(await text(s0, '/b'), 'mine');
      await other.reload();
      assert.equal(await text(other, '/b'), 'mine');
      for (const s of [s0, other]) await s.close();
    });
  }),
);
