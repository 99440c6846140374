/**
 * Unit tests of the FUSE adapter, calling its callbacks directly over the in-memory session
 * (no kernel): return codes, errno mapping, stat translation, handles, read-only refusals.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../src/errors.js';
import { createOps, toFuseStat, type FuseOps } from '../../src/fuse/adapter.js';
import { HandleTable } from '../../src/fuse/handles.js';
import { MemSession } from '../helpers/memfs-session.js';

/** Calls an op and resolves with its callback arguments. */
function call(ops: FuseOps, name: string, ...args: unknown[]): Promise<unknown[]> {
  return new Promise((resolve) => ops[name](...args, (...r: unknown[]) => resolve(r)));
}

async function setup(readOnly = false): Promise<{ ops: FuseOps; s: MemSession; handles: HandleTable }> {
  const s = new MemSession({ readOnly });
  const handles = new HandleTable();
  return { ops: createOps(s, { readOnly }, { handles, uid: 1000, gid: 100 }), s, handles };
}

describe('FUSE adapter', () => {
  it('creates, writes, reads and stats through handles', async () => {
    const { ops, handles } = await setup();
    const [code, fh] = await call(ops, 'create', '/f', 0o100640);
    assert.equal(code, 0);
    assert.equal(typeof fh, 'number');
    const data = Buffer.from('hello');
    assert.deepEqual(await call(ops, 'write', '/f', fh, data, 5, 0), [5]);
    const buf = Buffer.alloc(16);
    assert.deepEqual(await call(ops, 'read', '/f', fh, buf, 16, 1), [4]);
    assert.equal(buf.subarray(0, 4).toString(), 'ello');
    const [c2, st] = (await call(ops, 'getattr', '/f')) as [number, Record<string, any>];
    assert.equal(c2, 0);
    assert.equal(st.mode, 0o100640);
    assert.equal(st.size, 5);
    // The session's owner (MemSession: this process's), not the adapter's fallback (1000:100).
    assert.equal(st.uid, process.getuid!());
    assert.equal(st.gid, process.getgid!());
    assert.equal(st.nlink, 1);
    assert.deepEqual(handles.paths(), ['/f']);
    // Nothing to flush without fsyncOnClose: ENOSYS, and the kernel sends no more FLUSH.
    assert.deepEqual(await call(ops, 'flush', '/f', fh), [-Errno.ENOSYS]);
    assert.deepEqual(await call(ops, 'release', '/f', fh), [0]);
    assert.equal(handles.size, 0);
  });

  it('fsyncs written files on close unless fsyncOnClose is off', async () => {
    for (const fsyncOnClose of [true, false]) {
      const s = new MemSession();
      let fsyncs = 0;
      const orig = s.fsync.bind(s);
      s.fsync = async (p: string) => {
        fsyncs++;
        return orig(p);
      };
      const ops = createOps(s, { readOnly: false, fsyncOnClose });
      const [, fh] = await call(ops, 'create', '/f', 0o644);
      await call(ops, 'flush', '/f', fh); // nothing written yet
      await call(ops, 'write', '/f', fh, Buffer.from('x'), 1, 0);
      await call(ops, 'flush', '/f', fh);
      await call(ops, 'flush', '/f', fh); // clean again
      assert.equal(fsyncs, fsyncOnClose ? 1 : 0);
      await call(ops, 'fsync', '/f', 0, fh);
      assert.equal(fsyncs, fsyncOnClose ? 2 : 1);
    }
  });

  it('maps session errors to negative errno', async () => {
    const { ops } = await setup();
    assert.deepEqual(await call(ops, 'getattr', '/missing'), [-Errno.ENOENT]);
    await call(ops, 'mkdir', '/d', 0o755);
    await call(ops, 'create', '/d/x', 0o644);
    assert.deepEqual(await call(ops, 'rmdir', '/d'), [-Errno.ENOTEMPTY]);
    assert.deepEqual(await call(ops, 'mkdir', '/d', 0o755), [-Errno.EEXIST]);
    assert.deepEqual(await call(ops, 'unlink', '/d'), [-Errno.EISDIR]);
    assert.deepEqual(await call(ops, 'link', '/d/x', '/y'), [-Errno.EPERM]);
    assert.deepEqual(await call(ops, 'mknod', '/fifo', 0o010644, 0), [-Errno.EPERM]);
    assert.deepEqual(await call(ops, 'chown', '/d/x', 0, 0), [-Errno.EPERM]);
    assert.deepEqual(await call(ops, 'chown', '/d/x', 1000, 0xffffffff), [0]);
    assert.deepEqual(await call(ops, 'open', '/d', 1), [-Errno.EISDIR]);
  });

  it('lists directories with . and .. and typed stats', async () => {
    const { ops } = await setup();
    await call(ops, 'mkdir', '/d', 0o755);
    await call(ops, 'symlink', 'target', '/d/l');
    await call(ops, 'mkdir', '/d/sub', 0o700);
    const [code, names, stats] = (await call(ops, 'readdir', '/d')) as [number, string[], Record<string, any>[]];
    assert.equal(code, 0);
    assert.deepEqual(names, ['.', '..', 'l', 'sub']);
    assert.equal(stats.length, names.length);
    assert.equal(stats[2].mode, 0o120777);
    assert.equal(stats[2].size, 'target'.length);
    assert.equal(stats[3].mode, 0o040700);
    assert.deepEqual(await call(ops, 'readlink', '/d/l'), [0, 'target']);
  });

  it('truncates on open with O_TRUNC and follows renames of open files', async () => {
    const { ops, s, handles } = await setup();
    const [, fh] = await call(ops, 'create', '/a', 0o644);
    await call(ops, 'write', '/a', fh, Buffer.from('abcdef'), 6, 0);
    await call(ops, 'release', '/a', fh);
    const [, fh2] = await call(ops, 'open', '/a', 0o1001);
    assert.equal((await s.stat('/a')).size, 0);
    assert.deepEqual(await call(ops, 'rename', '/a', '/b'), [0]);
    assert.equal(handles.get(fh2 as number)?.path, '/b');
    assert.deepEqual(await call(ops, 'write', '/b', fh2, Buffer.from('xy'), 2, 0), [2]);
    assert.equal((await s.read('/b', 0, 10)).toString(), 'xy');
  });

  it('sets mtime from utimens, treating UTIME_NOW as now', async () => {
    const { ops, s } = await setup();
    await call(ops, 'create', '/t', 0o644);
    assert.deepEqual(await call(ops, 'utimens', '/t', 981173106000, 981173106000), [0]);
    assert.equal((await s.stat('/t')).mtimeMs, 981173106000);
    const before = Date.now();
    await call(ops, 'utimens', '/t', 1073, 1073);
    assert.ok((await s.stat('/t')).mtimeMs >= before);
  });

  it('refuses every write on a read-only mount with EROFS', async () => {
    const { ops } = await setup(true);
    for (const [name, args] of [
      ['create', ['/x', 0o644]],
      ['open', ['/', 2]],
      ['mkdir', ['/d', 0o755]],
      ['unlink', ['/x']],
      ['rmdir', ['/d']],
      ['rename', ['/a', '/b']],
      ['symlink', ['t', '/l']],
      ['chmod', ['/', 0o700]],
      ['truncate', ['/x', 0]],
      ['utimens', ['/', 1, 1]],
      ['write', ['/x', 1, Buffer.alloc(1), 1, 0]],
      ['link', ['/a', '/b']],
    ] as [string, unknown[]][]) {
      assert.deepEqual(await call(ops, name, ...args), [-Errno.EROFS], name);
    }
    assert.deepEqual(await call(ops, 'access', '/', 2), [-Errno.EROFS]);
    assert.deepEqual(await call(ops, 'access', '/', 4), [0]);
    const [code] = await call(ops, 'open', '/', 0);
    assert.equal(code, 0);
  });

  it('translates stats: type bits, symlink size, blocks', () => {
    const st = toFuseStat(
      { path: 'f', type: 'file', mode: 0o644, size: 1000, mtimeMs: 5000, atimeMs: 5000, ctimeMs: 5000, uid: 1, gid: 2, nlink: 1 },
      1,
      2,
    );
    assert.equal(st.mode, 0o100644);
    assert.equal(st.blocks, 2);
    assert.equal((st.mtime as Date).getTime(), 5000);
    assert.equal(
      toFuseStat({ path: '', type: 'directory', mode: 0o755, size: 0, mtimeMs: 0, atimeMs: 0, ctimeMs: 0, uid: 1, gid: 2, nlink: 2 }, 1, 2)
        .nlink,
      2,
    );
  });
});
