/**
 * The usual POSIX error cases, through a real mount and, in the same run, in a local directory:
 * the mount must answer each as the local file system does (issue 15's list: rename over
 * directories, a directory into its own subtree, O_EXCL, O_TRUNC on a read-only open, an unlinked
 * open file still readable, ftruncate of a read-only fd, symlink loops, names over 255 bytes).
 */
import '../helpers/env.js';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { cleanupAll, q, shOk } from '../helpers/mount.js';
import { programMount } from './harness.js';

/** Each case prints `name: result` (0 or the errno name), run in `dir` by python3. */
const CASES = `
import errno, os
def run(name, fn):
    try:
        r = fn()
        print(f"{name}: {'0' if r is None else r}")
    except OSError as e:
        print(f"{name}: {errno.errorcode.get(e.errno, e.errno)}")
os.mkdir('d1'); os.mkdir('d2'); os.mkdir('full'); open('full/x', 'w').close(); open('f', 'w').write('data')
run('rename dir over empty dir', lambda: os.rename('d1', 'd2'))
run('rename dir over non-empty dir', lambda: os.rename('d2', 'full'))
run('rename dir into its own subtree', lambda: os.rename('full', 'full/x/y'))
os.mkdir('full/sub')
run('rename dir into its own child', lambda: os.rename('full', 'full/sub/z'))
run('rename file over dir', lambda: os.rename('f', 'full'))
run('rename dir over file', lambda: os.rename('d2', 'f'))
run('O_EXCL on existing', lambda: os.open('f', os.O_CREAT | os.O_EXCL | os.O_WRONLY))
def trunc_ro():
    fd = os.open('f', os.O_RDONLY | os.O_TRUNC)
    os.close(fd)
    return os.stat('f').st_size
run('O_TRUNC with O_RDONLY: size after', trunc_ro)
open('g', 'w').write('still here')
def unlinked_open():
    fd = os.open('g', os.O_RDONLY)
    os.unlink('g')
    data = os.read(fd, 100).decode()
    os.close(fd)
    return data.replace(' ', '_')
run('read of an unlinked open file', unlinked_open)
run('unlinked name gone', lambda: os.stat('g'))
def ftrunc_ro():
    fd = os.open('f', os.O_RDONLY)
    try:
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)
run('ftruncate of a read-only fd', ftrunc_ro)
os.symlink('loop2', 'loop1'); os.symlink('loop1', 'loop2')
run('open of a symlink loop', lambda: open('loop1').read())
run('name of 256 bytes', lambda: open('n' * 256, 'w').close())
run('name of 255 bytes', lambda: open('n' * 255, 'w').close())
run('rmdir of a non-empty dir', lambda: os.rmdir('full'))
run('unlink of a dir', lambda: os.unlink('full'))
run('mkdir over a file', lambda: os.mkdir('f'))
run('open dir for writing', lambda: os.open('full', os.O_WRONLY))
run('link count of a dir with 1 subdir', lambda: os.stat('full').st_nlink)
`;

async function cases(dir: string): Promise<string[]> {
  return (await shOk(`cd ${q(dir)} && python3 -c ${q(CASES)}`)).trim().split('\n');
}

describe('POSIX errors through a mount, as a local file system gives them', () => {
  after(() => cleanupAll());

  it('answers every case as the local directory does', async () => {
    const m = await programMount('errnos');
    try {
      await fs.mkdir(m.local, { recursive: true });
      const local = await cases(m.local);
      const mounted = await cases(m.dir);
      assert.equal(mounted.length, local.length);
      for (let i = 0; i < local.length; i++) assert.equal(mounted[i], local[i], `local: ${local[i]}`);
    } finally {
      await m.stop();
    }
  });
});
