/**
 * utimens through a real mount, as tools use it: `touch -m -d` (atime UTIME_OMIT, mtime given),
 * `touch -a` (mtime UTIME_OMIT), `os.utime(p, (1e9, 2e9))` (both given, different: `cp -p`,
 * `touch -r`, `shutil.copy2`), UTIME_NOW for one of the two, on files, directories and
 * symlinks (`touch -h`); every mtime checked again after a commit and a remount.
 * atime is not stored (docs/SEMANTICS.md): only mtime is asserted.
 */
import '../helpers/env.js';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { controlRequest } from '../../src/fuse/control.js';
import { cleanupAll, q, shOk } from '../helpers/mount.js';
import { programMount } from './harness.js';

/** utimensat(AT_FDCWD, path, [atime, mtime], flags) from Python's ctypes; a time is [sec, nsec] or 'now'/'omit'. */
function utimensat(p: string, at: [number, number] | 'now' | 'omit', mt: [number, number] | 'now' | 'omit', nofollow = false): string {
  const ts = (t: typeof at): string => (t === 'now' ? '(0, (1<<30)-1)' : t === 'omit' ? '(0, (1<<30)-2)' : `(${t[0]}, ${t[1]})`);
  return `python3 -c ${q(
    `import ctypes, os\n` +
      `class T(ctypes.Structure): _fields_ = [('s', ctypes.c_long), ('ns', ctypes.c_long)]\n` +
      `libc = ctypes.CDLL(None, use_errno=True)\n` +
      `a = (T * 2)(T(*${ts(at)}), T(*${ts(mt)}))\n` +
      `r = libc.utimensat(-100, ${JSON.stringify(p)}.encode(), a, ${nofollow ? 0x100 : 0})\n` +
      `assert r == 0, os.strerror(ctypes.get_errno())\n`,
  )}`;
}

/** "name mtime_ns" lines (lstat) of `names` in `dir`. */
async function mtimes(dir: string, names: string[]): Promise<Record<string, number>> {
  const out = await shOk(
    `cd ${q(dir)} && python3 -c ${q(
      `import os, sys, json\nprint(json.dumps({n: os.lstat(n).st_mtime_ns for n in sys.argv[1:]}))`,
    )} ${names.map(q).join(' ')}`,
  );
  return JSON.parse(out) as Record<string, number>;
}

const S = 1e9;

describe('utimens through a mount (touch, os.utime, utimensat)', () => {
  after(() => cleanupAll());

  it('sets mtime with UTIME_OMIT / UTIME_NOW / both given, and keeps it across commit and remount', async () => {
    const m = await programMount('times');
    try {
      const D = m.dir;
      const t0 = Math.floor(Date.now() / 1000);
      await shOk(
        `cd ${q(D)} && touch -d 2001-01-01T00:00:00Z f && touch -m -d 2005-05-05T00:00:00Z f && ` +
          `touch -d 2001-01-01T00:00:00Z a && touch -a -d 2010-01-01T00:00:00Z a && ` +
          `touch u && python3 -c "import os; os.utime('u', (1e9, 2e9))" && ` +
          `touch ns && python3 -c "import os; os.utime('ns', ns=(1, 1234567891234000000))" && ` +
          // Sub-millisecond parts are cut, never rounded up into the next second (rsync compares seconds).
          `touch end && python3 -c "import os; os.utime('end', ns=(1, 1600000000999999999))" && ` +
          `mkdir enddir && python3 -c "import os; os.utime('enddir', ns=(1, 1600000000999500000))" && ` +
          `touch neg && python3 -c "import os; os.utime('neg', ns=(1, -1500000))" && ` +
          `touch -d 2001-01-01T00:00:00Z mnow && ${utimensat('mnow', 'omit', 'now')} && ` +
          `touch -d 2001-01-01T00:00:00Z anow && ${utimensat('anow', 'now', 'omit')} && ` +
          `touch -d 2001-01-01T00:00:00Z aset && ${utimensat('aset', [5, 0], 'omit')} && ` +
          `touch -d 2001-01-01T00:00:00Z both && ${utimensat('both', 'omit', 'omit')} && ` +
          `mkdir d && touch -m -d 2003-03-03T00:00:00Z d && ln -s f l && touch -h -m -d 2004-04-04T00:00:00Z l && ` +
          `touch -d 2001-01-01T00:00:00Z r && touch -r u r && cp -p u cpp`,
      );
      const names = ['end', 'enddir', 'neg', 'f', 'a', 'u', 'ns', 'mnow', 'anow', 'aset', 'both', 'd', 'l', 'r', 'cpp'];
      const want = {
        f: Date.parse('2005-05-05T00:00:00Z') * 1e6,
        a: Date.parse('2001-01-01T00:00:00Z') * 1e6,
        u: 2e9 * S,
        ns: 1234567891234000000,
        end: 1600000000999000000,
        enddir: 1600000000999000000,
        neg: -2000000,
        anow: Date.parse('2001-01-01T00:00:00Z') * 1e6,
        aset: Date.parse('2001-01-01T00:00:00Z') * 1e6,
        both: Date.parse('2001-01-01T00:00:00Z') * 1e6,
        d: Date.parse('2003-03-03T00:00:00Z') * 1e6,
        l: Date.parse('2004-04-04T00:00:00Z') * 1e6,
        r: 2e9 * S,
        cpp: 2e9 * S,
      } as Record<string, number>;
      const check = (got: Record<string, number>, when: string): void => {
        for (const [n, v] of Object.entries(want)) assert.equal(got[n], v, `${n} ${when}`);
        // UTIME_NOW for mtime alone: now (seconds), not 2001.
        assert.ok(got.mnow! >= (t0 - 2) * S && got.mnow! <= (Date.now() / 1000 + 2) * S, `mnow ${when}: ${got.mnow}`);
      };
      const before = await mtimes(D, names);
      check(before, 'before commit');
      await controlRequest(D, 'commit');
      assert.deepEqual(await mtimes(D, names), before, 'after commit');
      await m.remount();
      assert.deepEqual(await mtimes(D, names), before, 'after remount');
    } finally {
      await m.stop();
    }
  });
});
