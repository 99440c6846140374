/**
 * File capabilities (`security.capability`) through real native mounts: the kernel asks for the
 * attribute before every write; while no entry has it the addon answers ENODATA itself (no request
 * reaches JavaScript), and it never hides a capability that exists — one set through the mount,
 * one that a reload brought in from another mount — and a write removes one as on the local disk.
 * The same for `security.selinux`, which `ls -l` asks of every entry it lists.
 */
import '../helpers/env.js';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { controlRequest } from '../../src/fuse/control.js';
import { loadNative } from '../../src/fuse/lowlevel.js';
import type { MetricsSnapshot } from '../../src/util/metrics.js';
import { cleanupAll, q, shOk, startFileDaemon, tmpDir } from '../helpers/mount.js';

// struct vfs_cap_data, revision 2, effective, permitted CAP_NET_RAW (13): what `setcap cap_net_raw+ep` writes.
const CAP = '0100000200200000000000000000000000000000';

/** Runs python3 with `args`; prints what `script` prints. */
const py = (script: string, ...args: string[]) => shOk(`python3 -c ${q(script)} ${args.map(q).join(' ')}`);
/** The file's capability in hex, or "none" (ENODATA). */
const capOf = async (f: string) =>
  (
    await py(
      `import os,sys,errno
try: print(os.getxattr(sys.argv[1],'security.capability').hex())
except OSError as e:
  if e.errno != errno.ENODATA: raise
  print('none')`,
      f,
    )
  ).trim();
const setCap = (f: string) => py(`import os,sys; os.setxattr(sys.argv[1],'security.capability',bytes.fromhex(sys.argv[2]))`, f, CAP);
/** 50 appends of 4 KiB, each its own write(2) (each preceded by the kernel's getxattr). */
const appends = (f: string) =>
  py(`import os,sys\nfd=os.open(sys.argv[1],os.O_WRONLY|os.O_APPEND)\nfor i in range(50): os.write(fd,b'x'*4096)\nos.close(fd)`, f);
async function getxattrs(mnt: string): Promise<number> {
  const st = (await controlRequest(mnt, 'status')) as { metrics: MetricsSnapshot };
  return st.metrics['cairn_fuse_ops_total{op="getxattr"}'] ?? 0;
}

describe('file capabilities on the native binding', { skip: loadNative() ? false : 'native addon not built' }, () => {
  after(() => cleanupAll());

  it('answers the getxattr before each write natively while no entry has one, and never hides one', async () => {
    const base = await tmpDir();
    const [mnt, mntB, local] = ['mnt', 'mntB', 'local'].map((d) => path.join(base, d));
    const storeDir = path.join(base, 'store');
    await fs.mkdir(local);
    const start = startFileDaemon(() => ({}), { CAIRN_FUSE_BINDING: 'native' });
    const a = await start({ mountpoint: mnt, volume: 'caps', storeDir });
    const f = path.join(mnt, 'f');
    await fs.writeFile(f, 'x');
    const before = await getxattrs(mnt);
    await appends(f);
    assert.equal(await getxattrs(mnt), before, 'no getxattr reached JavaScript for 50 writes');
    assert.equal(await capOf(f), 'none');

    // Set through the mount: read back; a write removes it, as on the local disk.
    const l = path.join(local, 'f');
    await fs.writeFile(l, 'x');
    for (const file of [f, l]) {
      await setCap(file);
      assert.equal(await capOf(file), CAP, file);
      await appends(file);
    }
    assert.equal(await capOf(f), await capOf(l), 'a write removes the capability as on the local disk');
    await setCap(f);
    await controlRequest(mnt, 'commit');
    assert.ok((await getxattrs(mnt)) > before, 'with a capability present, getxattr goes to JavaScript');
    await a.stop();

    // A mount whose view has no capability, then another mount adds one: the reload shows it.
    const b = await start({ mountpoint: mntB, volume: 'caps', storeDir });
    assert.equal(await capOf(path.join(mntB, 'f')), CAP, 'a new mount reads the committed capability');
    await fs.writeFile(path.join(mntB, 'f'), 'replaced'); // the write drops it; commit: no entry has one
    await controlRequest(mntB, 'commit');
    const c = await start({ mountpoint: mnt, volume: 'caps', storeDir });
    await fs.writeFile(path.join(mntB, 'g'), 'g');
    await appends(path.join(mnt, 'f'));
    assert.equal(await capOf(path.join(mnt, 'f')), 'none');
    await setCap(path.join(mntB, 'g'));
    await controlRequest(mntB, 'commit');
    await controlRequest(mnt, 'reload');
    assert.equal(await capOf(path.join(mnt, 'g')), CAP, 'a capability brought by a reload is not hidden');
    await c.stop();
    await b.stop();
  });

  it('answers the getxattr of security.selinux that ls -l makes per entry natively while no entry has one', async () => {
    const base = await tmpDir();
    const mnt = path.join(base, 'mnt');
    const d = await startFileDaemon(() => ({}), { CAIRN_FUSE_BINDING: 'native' })({ mountpoint: mnt, volume: 'selinux' });
    try {
      await shOk(`cd ${q(mnt)} && mkdir d && cd d && for i in $(seq 1 40); do printf x > f$i; done`);
      const before = await getxattrs(mnt);
      assert.equal((await shOk(`ls -l ${q(`${mnt}/d`)} | wc -l`)).trim(), '41');
      // Before: one per file. What is left is the listed directory's system.posix_acl_access.
      const n = (await getxattrs(mnt)) - before;
      assert.ok(n <= 1, `${n} getxattr requests reached JavaScript for ls -l of 40 files`);
      // One set through the mount is never hidden.
      const f = path.join(mnt, 'd', 'f1');
      await py(`import os,sys; os.setxattr(sys.argv[1],'security.selinux',b'system_u:object_r:x_t:s0')`, f);
      assert.equal(
        (await py(`import os,sys; print(os.getxattr(sys.argv[1],'security.selinux').decode())`, f)).trim(),
        'system_u:object_r:x_t:s0',
      );
    } finally {
      await d.stop();
    }
  });
});
