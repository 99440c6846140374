/** Unit tests of the FUSE handle table and the /proc open-file scan. */
import { ReadCursor } from '../../src/chunks/index.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { HandleTable, wantsWrite } from '../../src/fuse/handles.js';
import { processesUsing } from '../../src/fuse/processes.js';

describe('HandleTable', () => {
  it('adds, follows renames of files and directories, and removes', () => {
    const t = new HandleTable();
    const a = t.add('/d/a', 0, 11);
    const b = t.add('/d/sub/b', 1);
    const c = t.add('/other', 2, 13);
    assert.notEqual(a, 0);
    assert.equal(new Set([a, b, c]).size, 3);
    t.rename('/d', '/e');
    assert.deepEqual(t.paths(), ['/e/a', '/e/sub/b', '/other']);
    t.rename('/other', '/o2');
    t.rename('/e/a', '/e/a2');
    assert.equal(t.get(a)?.path, '/e/a2');
    assert.equal(t.get(c)?.path, '/o2');
    t.rename('/e/su', '/x'); // a prefix that is not a path component changes nothing
    assert.equal(t.get(b)?.path, '/e/sub/b');
    assert.equal(t.remove(b)?.path, '/e/sub/b');
    assert.equal(t.remove(b), undefined);
    assert.equal(t.size, 2);
  });

  it('builds the one VOLUME_BUSY naming the open files and their openers', () => {
    const t = new HandleTable();
    const a = t.add('/a', 0, 4242);
    t.add('/b', 0);
    const h = t.get(a)!;
    h.cursor = new ReadCursor(); // per-handle read state rides along with the handle
    assert.equal(t.get(a)?.cursor, h.cursor);
    const e = t.busy('reload', { volume: 'v', mountpoint: '/mnt/v' }, 'close these files, then reload again');
    assert.equal(e.code, 'VOLUME_BUSY');
    assert.equal(e.message, 'cannot reload /mnt/v: 2 file(s) open: /a (pid 4242), /b');
    assert.equal(e.hint, 'close these files, then reload again');
    assert.deepEqual(e.context.openFiles, [{ path: '/a', pid: 4242 }, { path: '/b' }]);
  });

  it('counts handles opened outside it (native opens) in size, list, busy and settle', async () => {
    const t = new HandleTable();
    t.add('/js', 0, 11);
    let native = [{ fh: 2 ** 32 + 1, path: '/d/f5', flags: 0, pid: 4242 }];
    t.setExternal(() => native);
    assert.equal(t.size, 2);
    assert.deepEqual(t.paths(), ['/js', '/d/f5']);
    const e = t.busy('unmount', { volume: 'v', mountpoint: '/mnt/v' }, 'close the files');
    assert.equal(e.code, 'VOLUME_BUSY');
    assert.deepEqual(e.context.openFiles, [
      { path: '/js', pid: 11 },
      { path: '/d/f5', pid: 4242 },
    ]);
    // A native release in flight (its opener gone) is waited for like any other.
    const gone = spawn(process.execPath, ['-e', '0']);
    const deadPid = await new Promise<number>((res) => gone.on('exit', () => res(gone.pid!)));
    t.remove(t.list()[0]!.fh);
    native = [{ fh: 2 ** 32 + 2, path: '/d/f6', flags: 0, pid: deadPid }];
    setTimeout(() => (native = []), 60);
    await t.settle();
    assert.equal(t.size, 0);
    t.setExternal(undefined);
  });

  it('settle waits for the release of a handle whose opener has exited, not of one still held', async () => {
    // The kernel sends RELEASE after close(2) returned: `cat f; reload` must not see cat's file open.
    const t = new HandleTable();
    const gone = spawn(process.execPath, ['-e', '0']);
    const deadPid = await new Promise<number>((res) => gone.on('exit', () => res(gone.pid!)));
    const fh = t.add('/f', 0, deadPid);
    setTimeout(() => t.remove(fh), 60);
    await t.settle();
    assert.equal(t.size, 0, 'the in-flight release was waited for');
    t.add('/held', 0, process.pid);
    const first = await Promise.race([t.settle().then(() => 'settled'), new Promise((r) => setTimeout(() => r('a timer'), 0))]);
    assert.equal(first, 'settled', 'a file held by a live process is refused at once, without a wait');
    assert.equal(t.size, 1);
    const t1 = Date.now();
    const stuck = new HandleTable();
    stuck.add('/g', 0, deadPid);
    await stuck.settle(200);
    assert.ok(Date.now() - t1 >= 190 && stuck.size === 1, 'bounded: a release that never comes is waited for at most the bound');
  });

  it('classifies open flags', () => {
    assert.equal(wantsWrite(0), false); // O_RDONLY
    assert.equal(wantsWrite(1), true); // O_WRONLY
    assert.equal(wantsWrite(2), true); // O_RDWR
    assert.equal(wantsWrite(0o1000), true); // O_RDONLY|O_TRUNC
    assert.equal(wantsWrite(0o100000), false); // O_LARGEFILE
  });
});

describe('processesUsing', () => {
  it('finds a process holding a file open under a directory', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'cairn-handles-'));
    await fsp.writeFile(path.join(dir, 'held'), 'x');
    const child = spawn('bash', ['-c', `exec 3<${path.join(dir, 'held')}; echo open; exec sleep 30`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    try {
      const found = await processesUsing(dir);
      assert.ok(
        found.some((p) => p.pid === child.pid && p.path === path.join(dir, 'held') && p.command === 'sleep'),
        JSON.stringify(found),
      );
      assert.deepEqual(await processesUsing(path.join(dir, 'nothing-here')), []);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
