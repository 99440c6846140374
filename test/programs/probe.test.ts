/**
 * A pjdfstest-style probe (test/fixtures/posix-probe.py: ~200 cases of creation modes and owners,
 * the times each call changes, utimensat, chmod/chown and setuid clearing, permissions of another
 * uid, sticky directories, link/unlink/rmdir/rename errors, truncation, holes, O_APPEND, xattrs,
 * symlinks, special files, trailing slashes, readdir) run as root in a local directory and in an
 * allow_other mount, in the same run. The mount must answer every case as the local file system
 * does, except the differences docs/SEMANTICS.md states; for those the mount's own answer is
 * asserted.
 */
import '../helpers/env.js';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanupAll, q, shOk, startFileDaemon, tmpDir } from '../helpers/mount.js';

const PROBE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/posix-probe.py');

/** Where the mount answers otherwise, on purpose or by the local file system's own limits: its answer. */
const MOUNT_ONLY: Record<string, string> = {
  // Times are kept to the millisecond (SEMANTICS "Times"): a finer part is cut.
  'utime set ns': '(1000000000, 2000000000)',
  'utime omit atime': '(7000000000, 3000000000)',
  // ext4 clamps times past 2446; the mount keeps them.
  'utime far future': '(1099511627776000000000, 1099511627776000000000)',
  // ext4 holds a block of xattrs (ENOSPC); the mount takes values up to 64 KiB.
  'xattr big value': '60000',
  // chown(-1, -1) changes nothing, ctime included (POSIX: "need not"; Linux's local file systems set it).
  'chown -1 -1: m c': 'm= c=',
  // Before a write the kernel's FUSE clears setgid only when group-executable (its rule, not ext4's).
  'write by other clears sgid without group x': '0o102767',
  // Names are UTF-8 in the format (SEMANTICS "Names"); ext4 takes any bytes.
  'name of invalid utf-8': 'EILSEQ',
};

function parse(out: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of out.trim().split('\n')) {
    const i = line.indexOf('\t');
    assert.ok(i > 0, `a probe line: ${line}`);
    m.set(line.slice(0, i), line.slice(i + 1));
  }
  return m;
}

describe('a pjdfstest-style probe: the mount answers as a local file system', () => {
  after(() => cleanupAll());

  it('answers every case as the local directory does, but for the documented differences', async () => {
    const base = await tmpDir('probe-');
    await fs.chmod(base, 0o755);
    const local = path.join(base, 'local');
    await fs.mkdir(local, { mode: 0o755 });
    const spec = { mountpoint: path.join(base, 'm'), volume: 'probe', storeDir: path.join(base, 'store') };
    const daemon = await startFileDaemon(() => ({ allowOther: true }))(spec);
    try {
      const want = parse(await shOk(`python3 ${q(PROBE)} ${q(local)}`));
      const got = parse(await shOk(`chmod 755 ${q(spec.mountpoint)} && python3 ${q(PROBE)} ${q(spec.mountpoint)}`));
      assert.ok(want.size > 170, `the probe ran to its end locally (${want.size} cases)`);
      assert.deepEqual([...got.keys()], [...want.keys()], 'the same cases, in order');
      const wrong: string[] = [];
      for (const [name, local] of want) {
        const expected = MOUNT_ONLY[name] ?? local;
        if (got.get(name) !== expected) wrong.push(`${name}: mount ${got.get(name)}, expected ${expected} (local ${local})`);
      }
      assert.deepEqual(wrong, []);
    } finally {
      await daemon.stop();
    }
  });
});
