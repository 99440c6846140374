/**
 * Operations programs expect of a Linux file system: renameat2 with RENAME_NOREPLACE and
 * RENAME_EXCHANGE (files, directories, open files), fallocate mode 0, FALLOC_FL_KEEP_SIZE,
 * PUNCH_HOLE and ZERO_RANGE (and EOPNOTSUPP for the modes not supported), each checked after commit
 * and remount.
 */
import '../helpers/env.js';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { controlRequest } from '../../src/fuse/control.js';
import { cleanupAll, q, shOk } from '../helpers/mount.js';
import { programMount } from './harness.js';

/** A Python snippet run in `dir` with `rename2(a, b, flags)` and `falloc(path, mode, off, len)` returning errno (0: ok). */
function py(dir: string, body: string): Promise<string> {
  const lib =
    `import ctypes, os\n` +
    `libc = ctypes.CDLL(None, use_errno=True)\n` +
    `libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]\n` +
    `def rename2(a, b, flags):\n` +
    `    r = libc.renameat2(-100, a.encode(), -100, b.encode(), flags)\n` +
    `    return 0 if r == 0 else ctypes.get_errno()\n` +
    `def falloc(p, mode, off, ln):\n` +
    `    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)\n` +
    `    try:\n` +
    `        r = libc.fallocate(fd, mode, off, ln)\n` +
    `        return 0 if r == 0 else ctypes.get_errno()\n` +
    `    finally:\n` +
    `        os.close(fd)\n` +
    `def rd(p):\n` +
    `    with open(p) as f: return f.read()\n`;
  return shOk(`cd ${q(dir)} && python3 -c ${q(lib + body)}`);
}

const NOREPLACE = 1;
const EXCHANGE = 2;

describe('renameat2 and fallocate through a mount', () => {
  after(() => cleanupAll());

  it('renameat2: RENAME_NOREPLACE to a new name works, to an existing one is EEXIST; RENAME_EXCHANGE swaps', async () => {
    const m = await programMount('rename2');
    try {
      await shOk(
        `cd ${q(m.dir)} && printf A > a && printf B > b && printf C > c && mkdir d e && printf D > d/in && ` +
          `printf E > e/in && touch -d 2001-01-01 a && touch -d 2002-02-02 b`,
      );
      const out = await py(
        m.dir,
        `print(rename2('a', 'a2', ${NOREPLACE}), rename2('a2', 'b', ${NOREPLACE}), rd('a2'), rd('b'))\n` +
          `print(rename2('a2', 'b', ${EXCHANGE}), rd('a2'), rd('b'))\n` +
          `print(rename2('d', 'e', ${EXCHANGE}), rd('d/in'), rd('e/in'))\n` +
          `print(rename2('c', 'd', ${EXCHANGE}), rd('c/in'), rd('d'))\n` +
          `print(rename2('c', 'none', ${EXCHANGE}), rename2('c', 'x', ${EXCHANGE | NOREPLACE}))\n` +
          // An open file exchanged keeps its descriptor on its bytes (now under the other name).
          `f = open('a2'); print(rename2('a2', 'b', ${EXCHANGE}), f.read(), rd('a2'), rd('b')); f.close()\n`,
      );
      assert.equal(out, '0 17 A B\n0 B A\n0 E D\n0 E C\n2 22\n0 B A B\n');
      const view = (): Promise<string> =>
        shOk(`cd ${q(m.dir)} && find . -mindepth 1 -not -name '.cairn*' -printf '%p %y %TY-%Tm-%Td\\n' | sort && cat a2 b c/in d e/in`);
      const before = await view();
      assert.match(before, /^\.\/a2 f 2001-01-01\n\.\/b f 2002-02-02\n/);
      await controlRequest(m.dir, 'commit');
      await m.remount();
      assert.equal(await view(), before);
    } finally {
      await m.stop();
    }
  });

  it("keeps the mount root's mode and mtime set through the mount across commit and remount", async () => {
    const m = await programMount('root');
    try {
      await shOk(`cd ${q(m.dir)} && touch f && chmod 750 . && touch -d 2017-01-01T00:00:00Z .`);
      const root = (): Promise<string> => shOk(`stat -c '%a %Y' ${q(m.dir)}`);
      assert.equal(await root(), `750 ${Date.parse('2017-01-01T00:00:00Z') / 1000}\n`);
      await controlRequest(m.dir, 'commit');
      await m.remount();
      assert.equal(await root(), `750 ${Date.parse('2017-01-01T00:00:00Z') / 1000}\n`);
    } finally {
      await m.stop();
    }
  });

  it('fallocate mode 0 grows the file with zeros, KEEP_SIZE keeps its size, COLLAPSE/INSERT_RANGE are EOPNOTSUPP', async () => {
    const m = await programMount('falloc');
    try {
      const out = await py(
        m.dir,
        `open('f', 'w').write('abc')\n` +
          `print(falloc('f', 0, 0, 2), os.stat('f').st_size)\n` +
          `print(falloc('f', 0, 10, 4086), os.stat('f').st_size)\n` +
          `print(falloc('f', 1, 0, 1 << 20), os.stat('f').st_size)\n` +
          `print(falloc('f', 8, 0, 4096), falloc('f', 0x20, 0, 4096), falloc('f', 2, 0, 2), os.stat('f').st_size)\n` +
          `print(falloc('new', 0, 0, 100), os.stat('new').st_size)\n` +
          `print(rd('f') == 'abc' + '\\0' * 4093)\n`,
      );
      assert.equal(out, '0 3\n0 4096\n0 4096\n95 95 95 4096\n0 100\nTrue\n');
      await shOk(`fallocate -l 8192 ${q(`${m.dir}/g`)} && fallocate -n -l 65536 ${q(`${m.dir}/g`)}`);
      await controlRequest(m.dir, 'commit');
      await m.remount();
      assert.equal(
        await shOk(`cd ${q(m.dir)} && stat -c '%n %s' f g new && md5sum < f && head -c 4096 /dev/zero | md5sum`),
        `f 4096\ng 8192\nnew 100\n${await shOk(`(printf abc; head -c 4093 /dev/zero) | md5sum`)}` +
          `${await shOk('head -c 4096 /dev/zero | md5sum')}`,
      );
    } finally {
      await m.stop();
    }
  });

  it('PUNCH_HOLE and ZERO_RANGE write zeros over a committed file whose pages the kernel holds, kept after commit and remount', async () => {
    const m = await programMount('punch');
    try {
      await py(m.dir, `open('p', 'wb').write(bytes((i * 7 + 3) % 251 for i in range(3 << 20)))\n`);
      await controlRequest(m.dir, 'commit');
      await m.remount();
      const out = await py(
        m.dir,
        `import hashlib\n` +
          `model = bytearray(open('p', 'rb').read())\n` + // the whole file read: the kernel and the addon hold it
          `def zero(a, b): model[a:b] = bytes(b - a)\n` +
          `print(falloc('p', 3, 100000, (1 << 20) + 5), os.stat('p').st_size)\n` + // punch (KEEP_SIZE | PUNCH_HOLE)
          `zero(100000, 100000 + (1 << 20) + 5)\n` +
          `print(falloc('p', 0x10 | 1, 3000000, 500000), os.stat('p').st_size)\n` + // zero range, KEEP_SIZE, past the end
          `zero(3000000, len(model))\n` +
          `print(falloc('p', 0x10, 2900000, 400000), os.stat('p').st_size)\n` + // zero range that grows the file
          `zero(2900000, len(model)); model += bytes(3300000 - len(model))\n` +
          `print(falloc('p', 3, 5000000, 10), os.stat('p').st_size)\n` + // a punch past the end changes nothing
          `print(open('p', 'rb').read() == bytes(model), hashlib.md5(model).hexdigest())\n`,
      );
      const lines = out.trim().split('\n');
      assert.deepEqual(
        lines.slice(0, 5).map((l) => l.split(' ')[0]),
        ['0', '0', '0', '0', 'True'],
        out,
      );
      assert.deepEqual(
        lines.slice(0, 4).map((l) => l.split(' ')[1]),
        ['3145728', '3145728', '3300000', '3300000'],
      );
      const md5 = lines[4]!.split(' ')[1];
      await controlRequest(m.dir, 'commit');
      await m.remount();
      assert.equal((await shOk(`md5sum < ${q(`${m.dir}/p`)}`)).split(' ')[0], md5);
    } finally {
      await m.stop();
    }
  });
});
