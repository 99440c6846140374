import '../helpers/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { Volume } from '../../src/volume/index.js';
import type { Session } from '../../src/session/session.js';
import { forEachBackend } from '../helpers/backends.js';
import { MAX_FILE_SIZE } from '../../src/util/limits.js';

const text = async (s: Session, p: string) => (await s.read(p, 0, 1 << 30)).toString();
async function writeFile(s: Session, p: string, data: string | Buffer) {
  await s.create(p, 0o644);
  await s.write(p, 0, Buffer.from(data));
}
async function rejectsCode(p: Promise<unknown>, code: string) {
  await assert.rejects(p, (e: any) => e.code === code || assert.fail(`expected ${code}, got ${e.code}: ${e.message}`));
}

forEachBackend((b) =>
  describe(`session (${b.name})`, () => {
    before(() => b.start());
    after(() => b.stop());
    let n = 0;
    const fresh = async () => Volume.fromName(`v${++n}`, { createIfMissing: true, store: await b.open() });

    it('isolates writes until commit, and others until reload', async () => {
      const vol = await fresh();
      const a = await vol.session();
      const c = await vol.session();
      await writeFile(a, '/x.txt', 'hello');
      await rejectsCode(c.stat('/x.txt'), 'NOT_FOUND');
      const res = await a.commit();
      assert.equal(res.committed, true);
      assert.deepEqual(res.paths, ['x.txt']);
      await rejectsCode(c.stat('/x.txt'), 'NOT_FOUND');
      const r = await c.reload();
      assert.equal(r.seq, res.seq);
      assert.equal(await text(c, '/x.txt'), 'hello');
      assert.equal((await vol.listdir('/')).map((e) => e.path).join(), 'x.txt');
      await a.close();
      await c.close();
      await vol.close();
    });

    it('keeps concurrent commits to distinct paths, and the last writer wins on one path', async () => {
      const vol = await fresh();
      const a = await vol.session();
      const c = await vol.session();
      await writeFile(a, '/a', 'from a');
      await writeFile(c, '/c', 'from c');
      await writeFile(a, '/same', 'a wrote');
      await writeFile(c, '/same', 'c wrote');
      const ra = await a.commit();
      const rc = await c.commit();
      assert.equal(rc.seq, ra.seq + 1);
      assert.deepEqual(ra.overwrote, []);
      assert.deepEqual(rc.overwrote, ['same']);
      // c's view is still its own snapshot + its changes: a's file is invisible until reload
      await rejectsCode(c.stat('/a'), 'NOT_FOUND');
      await c.reload();
      await a.reload();
      for (const s of [a, c]) {
        assert.equal(await text(s, '/a'), 'from a');
        assert.equal(await text(s, '/c'), 'from c');
        assert.equal(await text(s, '/same'), 'c wrote');
      }
      await Promise.all([a.close(), c.close()]);
      await vol.close();
    });

    it('delete vs modify, and a directory replaced by a file and the reverse', async () => {
      const vol = await fresh();
      const a = await vol.session();
      await a.mkdir('/d', 0o755);
      await writeFile(a, '/d/f', 'in dir');
      await writeFile(a, '/g', 'file g');
      await writeFile(a, '/m', 'm0');
      await a.commit();
      const c = await vol.session();
      // a deletes /m, c modifies it afterwards: c's later commit wins
      await a.unlink('/m');
      await c.write('/m', 0, Buffer.from('m1'));
      // a replaces directory /d by a file; c replaces file /g by a directory
      await a.rmdir('/d').catch(() => undefined);
      await a.unlink('/d/f');
      await a.rmdir('/d');
      await writeFile(a, '/d', 'now a file');
      await c.unlink('/g');
      await c.mkdir('/g', 0o755);
      await writeFile(c, '/g/inner', 'inner');
      await a.commit();
      await c.commit();
      const v = await vol.session();
      assert.equal(await text(v, '/m'), 'm1');
      assert.equal((await v.stat('/d')).type, 'file');
      assert.equal(await text(v, '/d'), 'now a file');
      assert.equal((await v.stat('/g')).type, 'directory');
      assert.equal(await text(v, '/g/inner'), 'inner');
      await Promise.all([a.close(), c.close(), v.close()]);
      await vol.close();
    });

    it('a later delete of a directory removes the subtree as it stands', async () => {
      const vol = await fresh();
      const a = await vol.session();
      await a.mkdir('/d', 0o755);
      await writeFile(a, '/d/old', 'x');
      await a.commit();
      const c = await vol.session();
      await writeFile(a, '/d/new', 'y');
      await a.commit();
      await c.unlink('/d/old');
      await c.rmdir('/d');
      await c.commit();
      const v = await vol.session();
      await rejectsCode(v.stat('/d'), 'NOT_FOUND');
      await rejectsCode(v.stat('/d/new'), 'NOT_FOUND');
      await Promise.all([a.close(), c.close(), v.close()]);
      await vol.close();
    });

    it('random writes, appends, truncate and large files round-trip through a commit', async () => {
      const vol = await fresh();
      const a = await vol.session();
      const big = crypto.randomBytes(5 * 1024 * 1024 + 123);
      await writeFile(a, '/big', big);
      await a.commit();
      const c = await vol.session();
      assert.ok((await c.read('/big', 0, big.length)).equals(big));
      await c.write('/big', 1000, Buffer.from('PATCH'));
      big.write('PATCH', 1000);
      await c.write('/big', big.length, Buffer.from('TAIL'));
      const grown = Buffer.concat([big, Buffer.from('TAIL')]);
      assert.ok((await c.read('/big', 0, grown.length + 10)).equals(grown));
      await c.truncate('/big', 3000000);
      await c.commit();
      const v = await vol.session();
      assert.equal((await v.stat('/big')).size, 3000000);
      assert.ok((await v.read('/big', 0, 3000000)).equals(grown.subarray(0, 3000000)));
      assert.equal((await v.read('/big', 1000, 5)).toString(), 'PATCH');
      await Promise.all([a.close(), c.close(), v.close()]);
      await vol.close();
    });

    it('renames files and non-empty directories, refuses bad moves', async () => {
      const vol = await fresh();
      const a = await vol.session();
      await a.mkdir('/d', 0o755);
      await writeFile(a, '/d/f', 'f');
      await writeFile(a, '/x', 'x');
      await writeFile(a, '/y', 'y');
      await a.rename('/x', '/y');
      assert.equal(await text(a, '/y'), 'x');
      await a.rename('/d', '/e');
      assert.equal(await text(a, '/e/f'), 'f');
      await rejectsCode(a.rename('/e', '/e/sub'), 'INVALID_ARGUMENT');
      await a.mkdir('/full', 0o755);
      await writeFile(a, '/full/z', 'z');
      await rejectsCode(a.rename('/e', '/full'), 'NOT_EMPTY');
      await rejectsCode(a.rmdir('/full'), 'NOT_EMPTY');
      await a.commit();
      const v = await vol.session();
      assert.deepEqual(
        (await v.readdir('/')).map((s) => s.path),
        ['e', 'full', 'y'],
      );
      assert.equal(await text(v, '/e/f'), 'f');
      await Promise.all([a.close(), v.close()]);
      await vol.close();
    });

    it('time travel; history', async () => {
      const vol = await fresh();
      const a = await vol.session();
      await writeFile(a, '/one', '1');
      const first = await a.commit();
      await a.write('/one', 0, Buffer.from('2'));
      await a.symlink('one', '/link');
      await a.chmod('/one', 0o600);
      await a.commit();
      await a.reload();
      const old = await vol.session({ seq: first.seq });
      assert.equal(await text(old, '/one'), '1');
      await rejectsCode(old.stat('/link'), 'NOT_FOUND');
      await rejectsCode(old.create('/new', 0o644), 'READ_ONLY');
      await rejectsCode(vol.session({ seq: 99 }), 'NOT_FOUND');
      const hist = await vol.history();
      assert.deepEqual(
        hist.map((x) => x.seq),
        [1, 2],
      );
      assert.deepEqual(hist[1]!.paths.sort(), ['/link', '/one']);
      assert.equal(await a.readlink('/link'), 'one');
      assert.equal((await a.stat('/one')).mode, 0o600);
      await Promise.all([a.close(), old.close()]);
      await vol.close();
    });

    it('recovers pending changes of a closed (or killed) session directory', async () => {
      const vol = await fresh();
      const dir = `${process.env.CAIRN_HOME}/recover-${b.name}-${n}`;
      const a = await vol.session({ dir });
      await writeFile(a, '/kept', 'pending data');
      await a.close();
      const again = await vol.session({ dir });
      assert.equal(again.pendingCount(), 1);
      assert.equal(await text(again, '/kept'), 'pending data');
      await again.commit();
      await again.close();
      assert.equal((await vol.listdir('/')).length, 1);
      await vol.close();
    });

    it('rejects bad offsets, lengths, sizes, modes and times before changing anything', async () => {
      const vol = await fresh();
      const a = await vol.session();
      await writeFile(a, '/f', 'hello');
      await a.commit();
      await writeFile(a, '/p', 'abc'); // pending: a staging file that must not change either
      const before = a.pendingCount();
      const x = Buffer.from('XYZ');
      for (const f of ['/f', '/p']) {
        for (const off of [-1, -10, 1.5, NaN, Infinity]) {
          await rejectsCode(a.write(f, off, x), 'INVALID_ARGUMENT');
        }
        // integers past the safe range are positions past the maximum file size (EFBIG at the mount)
        for (const off of [2 ** 53, 2 ** 60, 2 ** 63]) await rejectsCode(a.write(f, off, x), 'TOO_LARGE');
        await rejectsCode(a.write(f, '3' as any, x), 'INVALID_ARGUMENT');
        await rejectsCode(a.write(f, 0, 'XYZ' as any), 'INVALID_ARGUMENT');
        await rejectsCode(a.write(f, MAX_FILE_SIZE, x), 'TOO_LARGE');
        await rejectsCode(a.write(f, MAX_FILE_SIZE - 2, x), 'TOO_LARGE');
        for (const size of [-1, 1.5, NaN]) await rejectsCode(a.truncate(f, size), 'INVALID_ARGUMENT');
        for (const size of [MAX_FILE_SIZE + 1, 999_999_999_999_999, 2 ** 54, 2 ** 63]) {
          await rejectsCode(a.truncate(f, size), 'TOO_LARGE');
        }
        for (const [off, len] of [
          [-10, 100],
          [0, -1],
          [0, NaN],
          [1.5, 2],
          [0, 2 ** 53],
          [MAX_FILE_SIZE + 1, 1],
        ]) {
          await rejectsCode(a.read(f, off!, len!), 'INVALID_ARGUMENT');
          assert.equal(a.readCached(f, off!, len!, Buffer.alloc(16)), undefined);
        }
        for (const mode of [-1, 0o10000, 1.5, NaN]) await rejectsCode(a.chmod(f, mode), 'INVALID_ARGUMENT');
        for (const t of [NaN, Infinity, 1e300]) await rejectsCode(a.utimes(f, t), 'INVALID_ARGUMENT');
      }
      for (const mode of [-1, 0o100644, 0.5]) {
        await rejectsCode(a.create('/new', mode), 'INVALID_ARGUMENT');
        await rejectsCode(a.mkdir('/newdir', mode), 'INVALID_ARGUMENT');
      }
      const sized = (size: number) => ({ type: 'file' as const, mode: 0o644, mtimeMs: 0, size });
      assert.throws(
        () => a.putEntry('/e', sized(-1)),
        (e: any) => e.code === 'INVALID_ARGUMENT',
      );
      assert.throws(
        () => a.putEntry('/e', sized(MAX_FILE_SIZE + 1)),
        (e: any) => e.code === 'TOO_LARGE',
      );
      await rejectsCode(
        (async () => {
          for await (const _ of a.stream('/f', 0));
        })(),
        'INVALID_ARGUMENT',
      );
      // nothing changed: the same content, sizes, pending ops; the committed file is still clean
      assert.equal(await text(a, '/f'), 'hello');
      assert.equal(await text(a, '/p'), 'abc');
      assert.equal((await a.stat('/f')).size, 5);
      assert.equal((await a.stat('/p')).size, 3);
      assert.equal(a.pendingCount(), before);
      await rejectsCode(a.stat('/new'), 'NOT_FOUND');
      const res = await a.commit();
      assert.deepEqual(res.paths, ['p']);
      const c = await vol.session();
      assert.equal(await text(c, '/f'), 'hello');
      assert.equal(await text(c, '/p'), 'abc');
      // what is valid still works: reads past the end are short, times before 1970 are fine
      assert.equal((await a.read('/f', 3, MAX_FILE_SIZE)).toString(), 'lo');
      assert.equal((await a.read('/f', MAX_FILE_SIZE, 1)).length, 0);
      await a.utimes('/f', -86_400_000);
      assert.equal((await a.stat('/f')).mtimeMs, -86_400_000);
      await Promise.all([a.close(), c.close()]);
      await vol.close();
    });

    it('refuses names over 255 bytes and paths over 4096 bytes with NAME_TOO_LONG, lone surrogates with INVALID_ARGUMENT', async () => {
      const vol = await fresh();
      const a = await vol.session();
      await a.create(`/${'n'.repeat(255)}`, 0o644);
      await rejectsCode(a.create(`/${'n'.repeat(256)}`, 0o644), 'NAME_TOO_LONG');
      await rejectsCode(a.mkdir(`/${'é'.repeat(128)}`, 0o755), 'NAME_TOO_LONG'); // 256 bytes of UTF-8
      await rejectsCode(a.stat(`/${Array(20).fill('d'.repeat(250)).join('/')}`), 'NAME_TOO_LONG');
      await rejectsCode(a.stat('/a/../b'), 'INVALID_ARGUMENT');
      // a lone surrogate has no UTF-8 encoding: refused, not stored as U+FFFD
      await rejectsCode(a.create('/lone-\ud800', 0o644), 'INVALID_ARGUMENT');
      await rejectsCode(a.mkdir('/x\udc00y', 0o755), 'INVALID_ARGUMENT');
      await rejectsCode(a.symlink('t\ud800', '/lone-link'), 'INVALID_ARGUMENT');
      await a.create('/pair-\ud83d\ude00', 0o644); // a surrogate pair is one character (U+1F600)
      assert.equal(a.pendingCount(), 2);
      await a.close();
      await vol.close();
    });

    it('a commit to a deleted volume fails with NOT_FOUND and keeps the changes pending', async () => {
      const store = await b.open();
      const vol = await Volume.fromName('doomed', { createIfMissing: true, store });
      const a = await vol.session();
      await writeFile(a, '/saved', 'precious');
      await a.commit();
      await writeFile(a, '/late', 'unsaved work');
      await Volume.objects.delete('doomed', { store });
      await rejectsCode(a.commit(), 'NOT_FOUND');
      await assert.rejects(a.commit(), (e: any) => /no longer exists/.test(e.message) && e.context.volume === 'doomed');
      assert.deepEqual(await store.list(`volumes/${vol.id}/`), [], 'nothing was written under the deleted id');
      assert.equal(a.pendingCount(), 1);
      assert.equal(await text(a, '/late'), 'unsaved work');
      assert.equal(await text(a, '/saved'), 'precious');
      await a.close();
      await vol.close();
    });

    it('a reopened session directory starts at the newest snapshot, its pending changes on top', async () => {
      const vol = await fresh();
      const dir = `${process.env.CAIRN_HOME}/reopen-${b.name}-${n}`;
      const a = await vol.session({ dir });
      await writeFile(a, '/mine', 'pending');
      await writeFile(a, '/both', 'mine');
      await a.close();
      const other = await vol.session();
      await writeFile(other, '/theirs', 'committed meanwhile');
      await writeFile(other, '/both', 'theirs');
      await other.commit();
      await writeFile(other, '/theirs2', 'and again');
      const head = await other.commit();
      await other.close();
      const again = await vol.session({ dir });
      assert.equal(again.seq, head.seq);
      assert.equal(await text(again, '/theirs'), 'committed meanwhile');
      assert.equal(await text(again, '/theirs2'), 'and again');
      assert.equal(await text(again, '/mine'), 'pending');
      assert.equal(await text(again, '/both'), 'mine', 'pending changes stay on top');
      assert.equal(again.pendingCount(), 2);
      const r = await again.commit();
      assert.equal(r.seq, head.seq + 1);
      assert.deepEqual(r.overwrote, ['both']);
      await again.close();
      // the others see the recovered changes once committed
      const c = await vol.session();
      assert.equal(await text(c, '/both'), 'mine');
      await c.close();
      await vol.close();
    });

    it('commits many files of every size class (inline, read whole, streamed) intact', async () => {
      const vol = await fresh();
      const a = await vol.session();
      const sizes = [0, 100, 4096, 4097, 70_000, 1 << 20, (1 << 20) + 1, 3 << 20];
      const data = new Map<string, Buffer>();
      for (let i = 0; i < 40; i++) {
        const p = `/m/f${i}`;
        data.set(p, crypto.randomBytes(sizes[i % sizes.length]!));
        if (i === 0) await a.mkdir('/m');
        await writeFile(a, p, data.get(p)!);
      }
      await a.commit();
      const c = await vol.session();
      for (const [p, bytes] of data) assert.ok((await c.read(p, 0, 4 << 20)).equals(bytes), `${p} (${bytes.length} bytes)`);
      await Promise.all([a.close(), c.close()]);
      await vol.close();
    });

    it('putEntries lands every entry with its parents in one go, or none of them', async () => {
      const vol = await fresh();
      const a = await vol.session();
      const entry = (text: string) => ({
        type: 'file' as const,
        mode: 0o644,
        mtimeMs: 1_700_000_000_123.4,
        size: text.length,
        inline: Buffer.from(text),
      });
      await writeFile(a, '/blocker', 'a file');
      const before = a.pendingCount();
      assert.throws(
        () =>
          a.putEntries(
            ['/empty'],
            [
              ['/d/x', entry('x')],
              ['/blocker/y', entry('y')],
            ],
          ),
        (e: any) => e.code === 'NOT_A_DIRECTORY',
      );
      assert.equal(a.pendingCount(), before);
      await rejectsCode(a.stat('/d'), 'NOT_FOUND');
      await rejectsCode(a.stat('/empty'), 'NOT_FOUND');
      a.putEntries(
        ['/empty'],
        [
          ['/d/x', entry('x')],
          ['/d/e/z', entry('z')],
        ],
      );
      const res = await a.commit();
      assert.deepEqual([...res.paths].sort(), ['d', 'd/e', 'd/e/z', 'd/x', 'empty', 'blocker'].sort());
      assert.equal(await text(a, '/d/e/z'), 'z');
      assert.equal((await a.stat('/empty')).type, 'directory');
      assert.equal((await a.stat('/d/x')).mtimeMs, 1_700_000_000_123);
      const c = await vol.session();
      assert.equal(await text(c, '/d/x'), 'x');
      // A directory put before its children keeps its own mode and mtime (a restore does this);
      // a file put in the batch is no parent for a later item.
      const dir = { type: 'directory' as const, mode: 0o700, mtimeMs: 1_600_000_000_000, size: 0 };
      c.putEntries(
        [],
        [
          ['/r', dir],
          ['/r/f', entry('f')],
        ],
      );
      assert.equal((await c.stat('/r')).mtimeMs, 1_600_000_000_000);
      assert.equal((await c.stat('/r')).mode & 0o777, 0o700);
      assert.throws(
        () =>
          c.putEntries(
            [],
            [
              ['/g', entry('g')],
              ['/g/h', entry('h')],
            ],
          ),
        (e: any) => e.code === 'NOT_A_DIRECTORY',
      );
      await rejectsCode(c.stat('/g'), 'NOT_FOUND');
      await Promise.all([a.close(), c.close()]);
      await vol.close();
    });
  }),
);
