/**
 * POSIX metadata through a real (native) mount: owners, groups, full modes, special files,
 * extended attributes and times are stored, survive a remount (the unmount commits), and the
 * kernel checks permissions by them (`default_permissions`), also for a non-root uid
 * (`setpriv --reuid=65534`) on a mount made with `allowOther`.
 */
import '../helpers/env.js';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { cleanupAll, q, sh, shOk, startFileDaemon, tmpDir } from '../helpers/mount.js';
import { programMount } from './harness.js';

const NOBODY = 'setpriv --reuid=65534 --regid=65534 --clear-groups';
const py = (code: string): string => `python3 -c ${q(code)}`;

describe('POSIX metadata through a mount', () => {
  after(() => cleanupAll());

  it('stores owners, modes, special files, xattrs and times, kept across a remount', async () => {
    const m = await programMount('posix');
    try {
      const D = m.dir;
      await shOk(
        `cd ${q(D)} && echo hi > f && chown 65534:100 f && chmod 4755 f && mkdir -m 2775 d && chown 7:8 d && ` +
          `mkfifo -m 640 p && mknod c c 1 3 && mknod b b 8 1 && ` +
          py(
            `import os\nos.setxattr('f', 'user.mime', b'text/plain')\nos.setxattr('d', 'trusted.t', b'\\x00\\x01')\n` +
              `os.utime('f', (1900000000, 1950000000))`,
          ),
      );
      const check = async (when: string): Promise<void> => {
        const st = await shOk(`cd ${q(D)} && stat -c '%n %u %g %a %F %t:%T' f d p c b && stat -c '%X %Y' f`);
        assert.deepEqual(
          st.trim().split('\n'),
          [
            'f 65534 100 4755 regular file 0:0',
            'd 7 8 2775 directory 0:0',
            'p 0 0 640 fifo 0:0',
            'c 0 0 644 character special file 1:3',
            'b 0 0 644 block special file 8:1',
            '1900000000 1950000000',
          ],
          when,
        );
        const x = await shOk(
          `cd ${q(D)} && ` + py(`import os\nprint(os.listxattr('f'), os.getxattr('f', 'user.mime'), os.getxattr('d', 'trusted.t'))`),
        );
        assert.equal(x.trim(), "['user.mime'] b'text/plain' b'\\x00\\x01'", when);
        assert.equal((await shOk(`cat ${q(path.join(D, 'f'))}`)).trim(), 'hi');
      };
      await check('before the remount');
      // ctime moves with chmod; a parent's mtime with a create in it.
      const before = await shOk(`cd ${q(D)} && stat -c '%Z %Y' f d`);
      await new Promise((r) => setTimeout(r, 1100));
      await shOk(`cd ${q(D)} && chmod 4755 f && touch d/new`);
      const afterCh = await shOk(`cd ${q(D)} && stat -c '%Z %Y' f d`);
      const [[fc0], [, dm0]] = before
        .trim()
        .split('\n')
        .map((l) => l.split(' ').map(Number));
      const [[fc1], [, dm1]] = afterCh
        .trim()
        .split('\n')
        .map((l) => l.split(' ').map(Number));
      assert.ok(fc1! > fc0!, `ctime of f: ${fc0} -> ${fc1}`);
      assert.ok(dm1! > dm0!, `mtime of d: ${dm0} -> ${dm1}`);
      await m.remount();
      await check('after the remount');
      // Errors as a local file system gives them.
      const r = await sh(`cd ${q(D)} && ` + py(`import os\nos.getxattr('f', 'user.none')`));
      assert.match(r.stderr, /No data available/);
      const big = await sh(`cd ${q(D)} && ` + py(`import os\nos.setxattr('f', 'user.big', b'x' * 70000)`));
      assert.match(big.stderr, /Argument list too long|No space left/);
      const ns = await sh(`cd ${q(D)} && ` + py(`import os\nos.setxattr('f', 'other.x', b'1')`));
      assert.match(ns.stderr, /Operation not supported/);
      // A POSIX ACL (what `cp -a` sets on every file it copies) is not stored: refused, nothing changed.
      const acl = `struct.pack('<I', 2) + b''.join(struct.pack('<HHI', t, p, 0xffffffff) for t, p in ((1, 6), (4, 4), (0x20, 4)))`;
      const set = await sh(`cd ${q(D)} && ` + py(`import os, struct\nos.setxattr('f', 'system.posix_acl_access', ${acl})`));
      assert.match(set.stderr, /Operation not supported/);
      assert.equal((await sh(`cd ${q(D)} && ` + py(`import os\nprint(sorted(os.listxattr('f')))`))).stdout.trim(), "['user.mime']");
      assert.equal((await sh(`cp -a ${q(`${D}/f`)} ${q(`${D}/f2`)} && echo ok`)).stdout.trim(), 'ok');
    } finally {
      await m.stop();
    }
  });

  it('checks permissions for a non-root uid (allowOther): modes, sticky directories, ownership', async () => {
    const base = await tmpDir('posix-other-');
    await fs.chmod(base, 0o755);
    const spec = { mountpoint: path.join(base, 'm'), volume: 'other', storeDir: path.join(base, 'store') };
    const start = startFileDaemon(() => ({ allowOther: true }));
    const daemon = await start(spec);
    try {
      const D = spec.mountpoint;
      await shOk(
        `cd ${q(D)} && chmod 755 . && echo secret > secret && chmod 000 secret && mkdir -m 1777 tmp && echo mine > tmp/root && chmod 666 tmp/root`,
      );
      const as = (cmd: string) => sh(`cd ${q(D)} && ${NOBODY} sh -c ${q(cmd)}`);
      assert.match((await as('cat secret')).stderr, /Permission denied/);
      assert.notEqual((await as('rm -f tmp/root')).code, 0, "a sticky directory protects root's file");
      assert.equal((await shOk(`cat ${q(path.join(D, 'tmp/root'))}`)).trim(), 'mine');
      assert.notEqual((await as('echo x > new')).code, 0, 'the root directory is not writable for others');
      const made = await as('echo x > tmp/mine && mkdir tmp/dir && stat -c "%u %g" tmp/mine tmp/dir');
      assert.equal(made.code, 0, made.stderr);
      assert.deepEqual(made.stdout.trim().split('\n'), ['65534 65534', '65534 65534']);
      assert.match((await as('chown 0 tmp/mine')).stderr, /Operation not permitted/);
      assert.equal((await as('chmod 600 tmp/mine && rm tmp/mine')).code, 0);
      assert.match((await as('chmod 777 tmp/root')).stderr, /Operation not permitted/);
      // setuid/setgid go when someone other than root writes; a setgid directory passes its group down.
      await shOk(`cd ${q(D)} && echo s > tmp/suid && chmod 6777 tmp/suid && mkdir -m 2777 tmp/sg && chgrp 50 tmp/sg`);
      const w = await as(
        'echo more >> tmp/suid && touch tmp/sg/x && mkdir tmp/sg/sub && stat -c "%a" tmp/suid && stat -c "%g %a" tmp/sg/x tmp/sg/sub',
      );
      assert.equal(w.code, 0, w.stderr);
      const [suid, x, sub] = w.stdout.trim().split('\n');
      assert.equal(suid, '777');
      assert.equal(x!.split(' ')[0], '50');
      assert.deepEqual(
        sub!.split(' ').map((v, i) => (i === 1 ? v.length === 4 && v.startsWith('2') : v)),
        ['50', true],
      );
    } finally {
      await daemon.stop();
    }
  });
});
