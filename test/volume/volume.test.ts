import '../helpers/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { Volume, mountControl, type CairnError } from '../../src/index.js';
import { Volume as VolumeApi, type MountControl } from '../../src/volume/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { waitFor } from '../helpers/wait.js';

async function rejectsCode(p: Promise<unknown> | (() => unknown), code: string) {
  const run = typeof p === 'function' ? async () => p() : () => p;
  await assert.rejects(run, (e: any) => e.code === code || assert.fail(`expected ${code}, got ${e.code}: ${e.message}`));
}
async function readAll(vol: Volume, p: string) {
  const bufs: Buffer[] = [];
  for await (const b of vol.readFile(p)) bufs.push(b);
  return Buffer.concat(bufs);
}

forEachBackend((b) =>
  describe(`Volume API (${b.name})`, () => {
    let url = '';
    let local = '';
    before(async () => {
      await b.start();
      url = b.url();
      local = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-local-'));
      await fs.mkdir(path.join(local, 'tree/sub'), { recursive: true });
      await fs.writeFile(path.join(local, 'tree/a.txt'), 'A');
      await fs.writeFile(path.join(local, 'tree/sub/b.bin'), crypto.randomBytes(300_000));
      await fs.writeFile(path.join(local, 'one.txt'), 'one');
    });
    after(async () => {
      await b.stop();
      await fs.rm(local, { recursive: true, force: true });
    });

    it('commit/reload reach mounts through the mount control option; the package Volume passes the host one', async () => {
      const calls: string[] = [];
      const control: MountControl = async (name, op) => {
        calls.push(`${op} ${name}`);
        return undefined;
      };
      const name = `mc-${crypto.randomBytes(4).toString('hex')}`;
      const vol = await VolumeApi.fromName(name, { store: url, createIfMissing: true, mountControl: control });
      await vol.commit();
      await vol.readOnly().reload();
      assert.deepEqual(calls, [`commit ${name}`, `reload ${name}`]);
      await vol.close();
      const plain = await VolumeApi.fromName(name, { store: url });
      assert.equal((plain as unknown as { mountControl?: MountControl }).mountControl, undefined, 'the layer has no default');
      await plain.commit();
      await plain.close();
      const pkg = await Volume.fromName(name, { store: url });
      assert.ok(pkg instanceof Volume && pkg instanceof VolumeApi);
      assert.equal(
        (pkg as unknown as { mountControl?: MountControl }).mountControl,
        mountControl,
        'the package entry passes the host mounts',
      );
      assert.equal((pkg.readOnly() as unknown as { mountControl?: MountControl }).mountControl, mountControl);
      await pkg.close();
      assert.equal(calls.length, 2);
      await Volume.objects.delete(name, { store: url });
    });

    it('creates, lists newest first, renames and deletes volumes', async () => {
      await rejectsCode(Volume.fromName('missing', { store: url }), 'NOT_FOUND');
      await Volume.objects.create('first', { store: url });
      await rejectsCode(Volume.objects.create('first', { store: url }), 'ALREADY_EXISTS');
      await Volume.objects.create('first', { store: url, allowExisting: true });
      const created = Date.now();
      await waitFor(() => Date.now() > created, { everyMs: 1, what: 'the clock to tick (createdAt orders the list)' });
      const second = await Volume.fromName('second', { store: url, createIfMissing: true });
      const info = await second.info();
      assert.equal(info.name, 'second');
      assert.ok(info.createdAt instanceof Date && info.createdBy.includes('@'));
      await second.close();
      let list = await Volume.objects.list({ store: url });
      assert.deepEqual(
        list.map((v) => v.name),
        ['second', 'first'],
      );
      assert.deepEqual(
        (await Volume.objects.list({ store: url, maxObjects: 1 })).map((v) => v.name),
        ['second'],
      );
      assert.deepEqual(
        (await Volume.objects.list({ store: url, createdBefore: list[0]!.createdAt })).map((v) => v.name),
        ['first'],
      );
      await Volume.rename('first', 'renamed', { store: url });
      await rejectsCode(Volume.rename('renamed', 'second', { store: url }), 'ALREADY_EXISTS');
      const byId = await Volume.fromId(list[1]!.id, { store: url });
      assert.equal(byId.name, 'renamed');
      await byId.close();
      await Volume.objects.delete('renamed', { store: url });
      await rejectsCode(Volume.objects.delete('renamed', { store: url }), 'NOT_FOUND');
      await Volume.objects.delete('renamed', { store: url, allowMissing: true });
      list = await Volume.objects.list({ store: url });
      assert.deepEqual(
        list.map((v) => v.name),
        ['second'],
      );
      for (const bad of ['', 'has space', 'a/b', 'x'.repeat(64), '..']) {
        await rejectsCode(Volume.objects.create(bad, { store: url }), 'INVALID_ARGUMENT');
      }
      assert.deepEqual(
        (await Volume.objects.list({ store: url })).map((v) => v.name),
        ['second'],
      );
    });

    it('batch uploads all or nothing, with force and directory rules', async () => {
      const vol = await Volume.fromName('batch', { store: url, createIfMissing: true });
      await vol.batchUpload({}, (batch) => {
        batch.putFile(path.join(local, 'one.txt'), '/docs/one.txt');
        batch.putFile(Buffer.from('bytes'), '/docs/bytes.txt', { mode: 0o600 });
        batch.putDirectory(path.join(local, 'tree'), '/tree');
      });
      const all = await vol.listdir('/', { recursive: true });
      assert.deepEqual(
        all.map((e) => e.path),
        ['docs', 'docs/bytes.txt', 'docs/one.txt', 'tree', 'tree/a.txt', 'tree/sub', 'tree/sub/b.bin'],
      );
      const bin = all.find((e) => e.path === 'tree/sub/b.bin')!;
      assert.equal(bin.type, 'file');
      assert.equal(bin.size, 300_000);
      assert.ok(Number.isInteger(bin.mtime));
      assert.ok((await readAll(vol, '/tree/sub/b.bin')).equals(await fs.readFile(path.join(local, 'tree/sub/b.bin'))));
      const seqBefore = (await vol.history()).length;
      // existing file without force: error, and nothing of the batch lands
      await rejectsCode(
        vol.batchUpload({}, (batch) => {
          batch.putFile(Buffer.from('new'), '/fresh.txt');
          batch.putFile(Buffer.from('clobber'), '/docs/one.txt');
        }),
        'ALREADY_EXISTS',
      );
      await rejectsCode(vol.listdir('/fresh.txt'), 'NOT_FOUND');
      // a directory is never overwritten, even with force
      await rejectsCode(
        vol.batchUpload({ force: true }, (batch) => batch.putFile(Buffer.from('x'), '/tree')),
        'IS_A_DIRECTORY',
      );
      await rejectsCode(
        vol.batchUpload({}, (batch) => batch.putFile(Buffer.from('x'), '/dir/')),
        'INVALID_ARGUMENT',
      );
      await rejectsCode(
        vol.batchUpload({}, (batch) => batch.putFile(path.join(local, 'nope'), '/nope')),
        'NOT_FOUND',
      );
      // a local name that is not UTF-8 (Latin-1 "café"): named in the error, nothing lands
      const latin = path.join(local, 'latin1');
      await fs.mkdir(latin);
      await fs.writeFile(Buffer.concat([Buffer.from(`${latin}/caf`), Buffer.from([0xe9])]), 'x');
      const err = await vol
        .batchUpload({}, (batch) => batch.putDirectory(latin, '/latin1'))
        .then(
          () => assert.fail('uploaded a name that is not UTF-8'),
          (e: CairnError) => e,
        );
      assert.equal(err.code, 'INVALID_ARGUMENT');
      assert.match(err.message, /not UTF-8: .*latin1\/caf\\xe9/);
      await rejectsCode(vol.listdir('/latin1'), 'NOT_FOUND');
      assert.equal((await vol.history()).length, seqBefore);
      await vol.batchUpload({ force: true }, (batch) => batch.putFile(Buffer.from('clobbered'), '/docs/one.txt'));
      assert.equal((await readAll(vol, '/docs/one.txt')).toString(), 'clobbered');
      await vol.close();
    });

    it("batch uploads put a directory's files into packs in name order, whatever the local listing order", async () => {
      const tree = path.join(local, 'ordered');
      await fs.mkdir(path.join(tree, 'sub'), { recursive: true });
      const names = Array.from({ length: 40 }, (_, i) => `f${String(i).padStart(2, '0')}`);
      for (const n of [...names].reverse()) await fs.writeFile(path.join(tree, n), crypto.randomBytes(9000));
      await fs.writeFile(path.join(tree, 'sub', 'z'), crypto.randomBytes(9000));
      const vol = await Volume.fromName('batch-order', { store: url, createIfMissing: true });
      await vol.batchUpload({}, (batch) => batch.putDirectory(tree, '/o'));
      const s = await vol.session({ readOnly: true });
      const at = (p: string) => s.journal.get(p)!.chunks![0]!;
      const order = [...names.map((n) => `o/${n}`), 'o/sub/z'];
      const refs = order.map(at);
      for (let i = 1; i < refs.length; i++) {
        const [a, b] = [refs[i - 1]!, refs[i]!];
        assert.ok(a.pack < b.pack || (a.pack === b.pack && a.offset < b.offset), `${order[i - 1]} before ${order[i]} in the packs`);
      }
      await s.close();
      await vol.close();
    });

    it('batch uploads follow symlinks to files and skip the rest of what is not a file or directory', async () => {
      const tree = path.join(local, 'links');
      await fs.mkdir(path.join(tree, 'sub'), { recursive: true });
      await fs.writeFile(path.join(tree, 'a.txt'), 'aaa');
      await fs.symlink('a.txt', path.join(tree, 'to-file'));
      await fs.symlink('nowhere', path.join(tree, 'dangling'));
      await fs.symlink('..', path.join(tree, 'sub', 'up')); // a cycle, never followed
      execFileSync('mkfifo', [path.join(tree, 'fifo')]);
      const vol = await Volume.fromName('batch-links', { store: url, createIfMissing: true });
      const r = await vol.batchUpload({}, (batch) => batch.putDirectory(tree, '/t'));
      assert.deepEqual([r.files, r.skipped], [2, 3]);
      assert.deepEqual(
        (await vol.listdir('/t', { recursive: true })).map((e) => `${e.path} ${e.type}`),
        ['t/a.txt file', 't/sub directory', 't/to-file file'],
      );
      assert.equal((await readAll(vol, '/t/to-file')).toString(), 'aaa');
      await vol.close();
    });

    it('listdir, iterdir, readFile, readFileInto and their errors', async () => {
      const vol = await Volume.fromName('batch', { store: url });
      assert.deepEqual(
        (await vol.listdir('/')).map((e) => [e.path, e.type]),
        [
          ['docs', 'directory'],
          ['tree', 'directory'],
        ],
      );
      assert.deepEqual(
        (await vol.listdir('/docs/one.txt')).map((e) => e.path),
        ['docs/one.txt'],
      );
      const it: string[] = [];
      for await (const e of vol.iterdir('/tree')) it.push(e.path);
      assert.deepEqual(it, ['tree/a.txt', 'tree/sub', 'tree/sub/b.bin']);
      const flat: string[] = [];
      for await (const e of vol.iterdir('/tree', { recursive: false })) flat.push(e.path);
      assert.deepEqual(flat, ['tree/a.txt', 'tree/sub']);
      await rejectsCode(vol.listdir('/tree/*.txt'), 'INVALID_ARGUMENT');
      await rejectsCode(vol.listdir('/missing'), 'NOT_FOUND');
      await rejectsCode(vol.listdir('/../etc'), 'INVALID_ARGUMENT');
      await rejectsCode(readAll(vol, '/missing'), 'NOT_FOUND');
      await rejectsCode(readAll(vol, '/tree'), 'IS_A_DIRECTORY');
      const sink = new PassThrough();
      const got: Buffer[] = [];
      sink.on('data', (d) => got.push(d));
      const n = await vol.readFileInto('/tree/sub/b.bin', sink);
      assert.equal(n, 300_000);
      assert.equal(Buffer.concat(got).length, 300_000);
      await vol.close();
    });

    it('copyFiles follows cp and copies references; removeFile needs recursive for directories', async () => {
      const vol = await Volume.fromName('batch', { store: url });
      await vol.copyFiles(['/docs/one.txt'], '/copy.txt');
      assert.equal((await readAll(vol, '/copy.txt')).toString(), 'clobbered');
      await vol.copyFiles(['/docs/one.txt', '/docs/bytes.txt'], '/tree');
      assert.deepEqual(
        (await vol.listdir('/tree')).map((e) => e.path),
        ['tree/a.txt', 'tree/bytes.txt', 'tree/one.txt', 'tree/sub'],
      );
      await rejectsCode(vol.copyFiles(['/tree'], '/tree2'), 'IS_A_DIRECTORY');
      await vol.copyFiles(['/tree'], '/tree2', { recursive: true });
      assert.ok((await readAll(vol, '/tree2/sub/b.bin')).equals(await readAll(vol, '/tree/sub/b.bin')));
      await rejectsCode(vol.copyFiles(['/docs/one.txt', '/copy.txt'], '/nodir'), 'NOT_FOUND');
      await rejectsCode(vol.copyFiles(['/missing'], '/x'), 'NOT_FOUND');
      await rejectsCode(vol.removeFile('/tree2'), 'IS_A_DIRECTORY');
      await rejectsCode(vol.removeFile('/missing'), 'NOT_FOUND');
      await vol.removeFile('/tree2', { recursive: true });
      await vol.removeFile('/copy.txt');
      assert.deepEqual(
        (await vol.listdir('/')).map((e) => e.path),
        ['docs', 'tree'],
      );
      await vol.close();
    });

    it('read-only handles reject every write and change nothing', async () => {
      const vol = await Volume.fromName('batch', { store: url });
      const ro = vol.readOnly();
      const before = (await vol.history()).length;
      await rejectsCode(ro.removeFile('/docs/one.txt'), 'READ_ONLY');
      await rejectsCode(ro.copyFiles(['/docs/one.txt'], '/c'), 'READ_ONLY');
      await rejectsCode(
        ro.batchUpload({}, (bt) => bt.putFile(Buffer.from('x'), '/x')),
        'READ_ONLY',
      );
      const s = await ro.session();
      await rejectsCode(s.create('/x', 0o644), 'READ_ONLY');
      await s.close();
      assert.equal((await ro.listdir('/docs')).length, 2);
      assert.equal((await vol.history()).length, before);
      await ro.close();
      await vol.close();
    });

    it('rejects bad numbers with INVALID_ARGUMENT before changing anything', async () => {
      const vol = await Volume.fromName('numbers', { store: url, createIfMissing: true });
      await vol.batchUpload({}, (bt) => bt.putFile(Buffer.from('x'), '/x'));
      for (const limit of [0, -1, 1.5, NaN]) await rejectsCode(vol.history({ limit }), 'INVALID_ARGUMENT');
      for (const maxObjects of [-1, 0.5]) {
        await rejectsCode(Volume.objects.list({ store: url, maxObjects }), 'INVALID_ARGUMENT');
      }
      await rejectsCode(Volume.objects.list({ store: url, createdBefore: new Date(NaN) }), 'INVALID_ARGUMENT');
      for (const seq of [-1, 1.5, NaN]) await rejectsCode(vol.session({ seq }), 'INVALID_ARGUMENT');
      for (const mode of [-1, 0o100644, 0.5]) {
        const upload = vol.batchUpload({}, (bt) => bt.putFile(Buffer.from('y'), '/y', { mode }));
        await rejectsCode(upload, 'INVALID_ARGUMENT');
      }
      assert.deepEqual(
        (await vol.listdir('/')).map((e) => e.path),
        ['x'],
      );
      assert.equal((await vol.history()).length, 1);
      assert.equal((await vol.history({ limit: 1 }))[0]!.seq, 1);
      assert.equal((await Volume.objects.list({ store: url, maxObjects: 0 })).length, 0);
      await vol.close();
    });

    it('a write through a handle of a deleted volume fails with NOT_FOUND and writes nothing', async () => {
      const store = await b.open();
      const vol = await Volume.fromName('gone', { store, createIfMissing: true });
      await vol.batchUpload({}, (bt) => bt.putFile(Buffer.from('1'), '/one'));
      await Volume.objects.delete('gone', { store });
      await rejectsCode(
        vol.batchUpload({}, (bt) => bt.putFile(Buffer.from('2'), '/two')),
        'NOT_FOUND',
      );
      await rejectsCode(vol.removeFile('/one'), 'NOT_FOUND');
      assert.deepEqual(await store.list(`volumes/${vol.id}/`), []);
      await vol.close();
      await store.close();
    });

    it('each call sees the latest committed state; ephemeral volumes vanish on close', async () => {
      const a = await Volume.fromName('batch', { store: url });
      const c = await Volume.fromName('batch', { store: url });
      await a.batchUpload({}, (bt) => bt.putFile(Buffer.from('seen'), '/latest.txt'));
      assert.equal((await readAll(c, '/latest.txt')).toString(), 'seen');
      await a.close();
      await c.close();
      let name = '';
      {
        await using eph = await Volume.ephemeral({ store: url });
        name = eph.name;
        await eph.batchUpload({}, (bt) => bt.putFile(Buffer.from('tmp'), '/t'));
        assert.ok((await Volume.objects.list({ store: url })).some((v) => v.name === name));
      }
      assert.ok(!(await Volume.objects.list({ store: url })).some((v) => v.name === name));
    });
  }),
);

describe('batch upload by a user who cannot follow a symlink (file store)', () => {
  it('fails with PERMISSION_DENIED naming the link and commits nothing; a dangling link is still skipped', async () => {
    const base = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-batch-perm-'));
    try {
      await fs.chmod(base, 0o755);
      const tree = path.join(base, 'tree');
      const secret = path.join(base, 'secret');
      await fs.mkdir(tree);
      await fs.mkdir(secret, { mode: 0o700 });
      await fs.writeFile(path.join(secret, 'f'), 'not for nobody');
      await fs.writeFile(path.join(tree, 'a.txt'), 'aaa');
      await fs.symlink('nowhere', path.join(tree, 'dangling'));
      for (const d of ['store', 'home']) {
        await fs.mkdir(path.join(base, d));
        await fs.chown(path.join(base, d), 65534, 65534);
      }
      const index = new URL('../../src/index.js', import.meta.url).href;
      const script = `
        import { Volume } from ${JSON.stringify(index)};
        const vol = await Volume.fromName('v', { store: ${JSON.stringify(pathToFileURL(path.join(base, 'store')).href)}, createIfMissing: true });
        const put = () => vol.batchUpload({ force: true }, (b) => b.putDirectory(${JSON.stringify(tree)}, '/t'));
        const out = [];
        try { await put(); out.push('uploaded'); } catch (e) { out.push(e.code + ' ' + e.message); }
        out.push(JSON.stringify((await vol.listdir('/', { recursive: true })).map((e) => e.path)));
        await vol.close();
        console.log(out.join('\\n'));`;
      const nobody = (): string =>
        execFileSync(
          'setpriv',
          ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--input-type=module', '-e', script],
          {
            env: { ...process.env, CAIRN_HOME: path.join(base, 'home'), HOME: path.join(base, 'home') },
            encoding: 'utf8',
          },
        );
      // Without the unreadable link: the dangling one is skipped, the file goes up.
      assert.deepEqual(nobody().trim().split('\n'), ['uploaded', '["t","t/a.txt"]']);
      await fs.writeFile(path.join(tree, 'b.txt'), 'bbb');
      await fs.symlink(path.join(secret, 'f'), path.join(tree, 'hidden'));
      const [err, listing] = nobody().trim().split('\n');
      assert.match(err!, /^PERMISSION_DENIED cannot follow the symlink .*tree\/hidden: EACCES/);
      assert.equal(listing, '["t","t/a.txt"]', 'nothing of the failed batch was committed (b.txt neither)');
    } finally {
      await fs.rm(base, { recursive: true, force: true });
    }
  });
});
