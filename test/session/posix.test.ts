/**
 * The POSIX metadata of entries through a session: owners and groups (with the caller's
 * credentials: chown/chmod rules, setuid/setgid cleared, setgid directories), special files
 * (mknod), extended attributes, atime/ctime, and the parent directory's times; all of it kept by
 * commit, reload and a new session.
 */
import '../helpers/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Volume } from '../../src/volume/index.js';
import type { Session } from '../../src/session/session.js';
import { forEachBackend } from '../helpers/backends.js';

const NOBODY = { uid: 65534, gid: 65534 };
const USER = { uid: 1000, gid: 1000, groups: [1000, 27] };

async function rejectsCode(p: Promise<unknown>, code: string) {
  await assert.rejects(p, (e: any) => e.code === code || assert.fail(`expected ${code}, got ${e.code}: ${e.message}`));
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

forEachBackend((b) =>
  describe(`session POSIX metadata (${b.name})`, () => {
    before(() => b.start());
    after(() => b.stop());
    let n = 0;
    const fresh = async () => Volume.fromName(`posix${++n}`, { createIfMissing: true, store: await b.open() });

    it('stores owner, group, full mode, times, devices and xattrs, kept by commit, reload and a new session', async () => {
      const vol = await fresh();
      const a = await vol.session();
      await a.mkdir('/d', 0o1777, USER);
      await a.create('/d/f', 0o644, USER);
      await a.write('/d/f', 0, Buffer.from('hi'), USER);
      await a.chown('/d/f', 0, 27);
      await a.chmod('/d/f', 0o4755);
      await a.setTimes('/d/f', { atimeMs: 1_000_000, mtimeMs: 2_000_000 });
      await a.mknod('/d/p', 'fifo', 0o640, 0, NOBODY);
      await a.mknod('/d/tty', 'chardev', 0o620, 0x0501);
      await a.setxattr('/d/f', 'user.mime', Buffer.from('text/plain'));
      await a.setxattr('/d', 'security.selinux', Buffer.from([1, 2, 3]));
      const check = async (s: Session) => {
        const f = await s.stat('/d/f');
        assert.deepEqual([f.uid, f.gid, f.mode, f.atimeMs, f.mtimeMs, f.nlink], [0, 27, 0o4755, 1_000_000, 2_000_000, 1]);
        const d = await s.stat('/d');
        assert.deepEqual([d.uid, d.gid, d.mode, d.type], [1000, 1000, 0o1777, 'directory']);
        const p = await s.stat('/d/p');
        assert.deepEqual([p.type, p.mode, p.uid, p.gid, p.size], ['fifo', 0o640, 65534, 65534, 0]);
        const t = await s.stat('/d/tty');
        assert.deepEqual([t.type, t.rdev], ['chardev', 0x0501]);
        assert.deepEqual(await s.listxattr('/d/f'), ['user.mime']);
        assert.equal((await s.getxattr('/d/f', 'user.mime')).toString(), 'text/plain');
        assert.deepEqual([...(await s.getxattr('/d', 'security.selinux'))], [1, 2, 3]);
        assert.equal((await s.read('/d/f', 0, 10)).toString(), 'hi');
      };
      await check(a);
      await a.commit();
      await check(a);
      const c = await vol.session();
      await check(c);
      const listed = (await vol.listdir('/d')).find((e) => e.path === 'd/f')!;
      assert.deepEqual([listed.uid, listed.gid, listed.mode, listed.atime, listed.mtime, listed.nlink], [0, 27, 0o4755, 1000, 2000, 1]);
      await c.chown('/d/f', 5, 5);
      await c.commit();
      await a.reload();
      assert.equal((await a.stat('/d/f')).uid, 5);
      await a.close();
      await c.close();
      await vol.close();
    });

    it('entries without a stored owner belong to the serving user; nlink counts subdirectories', async () => {
      const vol = await fresh();
      const s = await vol.session();
      await s.mkdir('/d');
      await s.mkdir('/d/x');
      await s.mkdir('/d/y');
      await s.create('/d/f');
      const st = await s.stat('/d/f');
      assert.deepEqual([st.uid, st.gid, st.ctimeMs, st.atimeMs], [process.getuid!(), process.getgid!(), st.mtimeMs, st.mtimeMs]);
      assert.equal((await s.stat('/d')).nlink, 4);
      assert.equal((await s.readdir('/')).find((e) => e.path === 'd')!.nlink, 4);
      await s.close();
      await vol.close();
    });

    it('enforces chown and chmod rules for a caller with credentials, and clears setuid/setgid', async () => {
      const vol = await fresh();
      const s = await vol.session();
      await s.create('/f', 0o6775, USER);
      await rejectsCode(s.chown('/f', 0, -1, USER), 'NOT_PERMITTED'); // only root gives files away
      await rejectsCode(s.chown('/f', -1, 5, USER), 'NOT_PERMITTED'); // not one of its groups
      await rejectsCode(s.chown('/f', -1, 27, NOBODY), 'NOT_PERMITTED'); // not the owner
      await rejectsCode(s.chmod('/f', 0o777, NOBODY), 'NOT_PERMITTED');
      assert.equal((await s.stat('/f')).mode, 0o6775);
      await s.chown('/f', -1, 27, USER); // the owner, to one of its groups: fine; setuid/setgid go
      let st = await s.stat('/f');
      assert.deepEqual([st.uid, st.gid, st.mode], [1000, 27, 0o775]);
      await s.chmod('/f', 0o6755, USER);
      assert.equal((await s.stat('/f')).mode, 0o6755);
      await s.write('/f', 0, Buffer.from('x'), NOBODY); // a write by anyone but root clears them
      assert.equal((await s.stat('/f')).mode, 0o755);
      await s.chmod('/f', 0o6755);
      await s.write('/f', 1, Buffer.from('x')); // root's write keeps them
      assert.equal((await s.stat('/f')).mode, 0o6755);
      await s.truncate('/f', 0, USER);
      assert.equal((await s.stat('/f')).mode, 0o755);
      await s.chown('/f', 0, 0); // root: anything
      st = await s.stat('/f');
      assert.deepEqual([st.uid, st.gid], [0, 0]);
      await rejectsCode(s.chown('/f', 2 ** 32, -1), 'INVALID_ARGUMENT');
      // A setgid directory passes its group down, and its setgid bit to new directories.
      await s.mkdir('/g', 0o2775, USER);
      await s.chown('/g', -1, 27);
      await s.create('/g/f', 0o644, NOBODY);
      await s.mkdir('/g/sub', 0o755, NOBODY);
      assert.deepEqual([(await s.stat('/g/f')).gid, (await s.stat('/g/f')).uid], [27, 65534]);
      assert.deepEqual([(await s.stat('/g/sub')).gid, (await s.stat('/g/sub')).mode], [27, 0o2755]);
      await s.close();
      await vol.close();
    });

    it('mknod makes fifos, sockets and devices; refuses what exists and bad types', async () => {
      const vol = await fresh();
      const s = await vol.session();
      await s.mknod('/s', 'socket', 0o755);
      await s.mknod('/b', 'blockdev', 0o660, 0x0801);
      await s.mknod('/r', 'file', 0o600);
      assert.deepEqual(
        (await s.readdir('/')).map((e) => [e.path, e.type]),
        [
          ['b', 'blockdev'],
          ['r', 'file'],
          ['s', 'socket'],
        ],
      );
      await rejectsCode(s.mknod('/s', 'fifo', 0o644), 'ALREADY_EXISTS');
      await rejectsCode(s.mknod('/x', 'directory' as any, 0o644), 'INVALID_ARGUMENT');
      await rejectsCode(s.read('/s', 0, 1), 'INVALID_ARGUMENT');
      await s.commit();
      const t = await vol.session();
      assert.equal((await t.stat('/b')).rdev, 0x0801);
      await t.close();
      await s.close();
      await vol.close();
    });

    it('extended attributes: flags, limits, removal, namespaces', async () => {
      const vol = await fresh();
      const s = await vol.session();
      await s.create('/f', 0o644, USER);
      await rejectsCode(s.getxattr('/f', 'user.none'), 'NO_ATTRIBUTE');
      await rejectsCode(s.setxattr('/f', 'user.a', Buffer.from('1'), 'replace'), 'NO_ATTRIBUTE');
      await s.setxattr('/f', 'user.a', Buffer.from('1'), 'create');
      await rejectsCode(s.setxattr('/f', 'user.a', Buffer.from('2'), 'create'), 'ALREADY_EXISTS');
      await s.setxattr('/f', 'user.a', Buffer.from('2'), 'replace');
      await s.setxattr('/f', 'trusted.t', Buffer.alloc(0));
      assert.equal((await s.getxattr('/f', 'user.a')).toString(), '2');
      assert.equal((await s.getxattr('/f', 'trusted.t')).length, 0);
      assert.deepEqual(await s.listxattr('/f'), ['trusted.t', 'user.a']);
      assert.deepEqual(await s.listxattr('/f', NOBODY), ['user.a']);
      await rejectsCode(s.setxattr('/f', 'trusted.x', Buffer.from('1'), undefined, USER), 'NOT_PERMITTED');
      await rejectsCode(s.setxattr('/f', 'system.posix_acl_access', Buffer.from('1')), 'INVALID_ARGUMENT');
      await rejectsCode(s.setxattr('/f', `user.${'x'.repeat(251)}`, Buffer.from('1')), 'TOO_LARGE');
      await rejectsCode(s.setxattr('/f', 'user.big', Buffer.alloc((64 << 10) + 1)), 'TOO_LARGE');
      for (let i = 0; i < 3; i++) await s.setxattr('/f', `user.v${i}`, Buffer.alloc(64 << 10));
      await rejectsCode(s.setxattr('/f', 'user.v3', Buffer.alloc(64 << 10)), 'TOO_LARGE');
      await s.removexattr('/f', 'user.a');
      await rejectsCode(s.removexattr('/f', 'user.a'), 'NO_ATTRIBUTE');
      assert.deepEqual(await s.listxattr('/f'), ['trusted.t', 'user.v0', 'user.v1', 'user.v2']);
      await s.commit();
      const t = await vol.session();
      assert.equal((await t.getxattr('/f', 'user.v2')).length, 64 << 10);
      await t.close();
      await s.close();
      await vol.close();
    });

    it("ctime follows chmod, chown, rename, truncate and xattr changes; a parent directory's mtime/ctime follow its entries", async () => {
      const vol = await fresh();
      const s = await vol.session();
      await s.mkdir('/d');
      await s.mkdir('/e');
      await s.create('/d/f');
      await s.setTimes('/d/f', { atimeMs: 1000, mtimeMs: 1000 });
      await s.setTimes('/d', { atimeMs: 1000, mtimeMs: 1000 });
      await s.setTimes('/e', { atimeMs: 1000, mtimeMs: 1000 });
      const ctime = async (p: string) => (await s.stat(p)).ctimeMs;
      let last = await ctime('/d/f');
      for (const change of [
        () => s.chmod('/d/f', 0o600),
        () => s.chown('/d/f', 1, 1),
        () => s.truncate('/d/f', 10),
        () => s.setxattr('/d/f', 'user.k', Buffer.from('v')),
        () => s.removexattr('/d/f', 'user.k'),
      ]) {
        await sleep(3);
        await change();
        const now = await ctime('/d/f');
        assert.ok(now > last, `${change}: ctime ${now} after ${last}`);
        last = now;
      }
      assert.equal((await s.stat('/d/f')).mtimeMs > 1000, true); // truncate set it
      // Parent times: create, remove, rename (both parents) change them.
      await s.setTimes('/d', { atimeMs: 1000, mtimeMs: 1000 });
      await s.create('/d/g');
      let d = await s.stat('/d');
      assert.ok(d.mtimeMs > 1000 && d.ctimeMs >= d.mtimeMs, 'create changes the parent');
      await s.setTimes('/d', { atimeMs: 1000, mtimeMs: 1000 });
      await s.unlink('/d/g');
      assert.ok((await s.stat('/d')).mtimeMs > 1000, 'unlink changes the parent');
      await s.setTimes('/d', { atimeMs: 1000, mtimeMs: 1000 });
      await s.setTimes('/e', { atimeMs: 1000, mtimeMs: 1000 });
      await sleep(3);
      const before = await ctime('/d/f');
      await s.rename('/d/f', '/e/f');
      assert.ok((await s.stat('/d')).mtimeMs > 1000 && (await s.stat('/e')).mtimeMs > 1000, 'rename changes both parents');
      assert.ok((await ctime('/e/f')) > before, "rename changes the moved entry's ctime");
      await s.commit();
      // A directory's new times are committed, merged with other writers' changes to it, and not
      // reported as a change of its own.
      const other = await vol.session();
      await s.create('/d/h');
      d = await s.stat('/d');
      await other.chmod('/d', 0o700);
      await other.commit();
      const r = await s.commit();
      assert.deepEqual(r.paths, ['d/h']);
      const t = await vol.session();
      const td = await t.stat('/d');
      assert.deepEqual([td.mtimeMs, td.ctimeMs, td.mode], [d.mtimeMs, d.ctimeMs, 0o700]);
      await other.close();
      await t.close();
      await s.close();
      await vol.close();
    });
  }),
);
