/**
 * LOOKUPs the native addon answers itself (native/nattr.h, "Names"; src/fuse/lowlevel-lookups.ts):
 * once JavaScript answered enough LOOKUPs in a directory, the names it left answer the rest on the
 * worker threads. Never a name from before a change: each step below changes the directory, then
 * drops the kernel's dentries (`drop_caches`), so the next stats by name are LOOKUPs again, and
 * compares with the same steps on local disk. The kernel's lookup counts: after the dentries are
 * dropped (FORGETs of lookups the addon answered), the inodes are let go and names still resolve.
 * A reload (another mount's commit) leaves no name from before it.
 */
import '../helpers/env.js';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { promises as fsp } from 'node:fs';
import { controlRequest } from '../../src/fuse/control.js';
import { loadNative } from '../../src/fuse/lowlevel.js';
import type { DispatchStats } from '../../src/fuse/lowlevel-addon.js';
import { cleanupAll, q, shOk, startFileDaemon, tmpDir } from '../helpers/mount.js';

const native = { CAIRN_FUSE_BINDING: 'native' };
const N = 60;

/** Drops the kernel's dentries and inodes (each LOOKUP after it reaches the file system again). */
const DROP = 'sync; echo 2 > /proc/sys/vm/drop_caches';

/** Stats of every name `f0..f{N-1}`, `new*`, `sub` in d, by name (a LOOKUP each after a drop). */
const STATS = `for i in $(seq 0 ${N + 3}); do for n in d/f$i d/new$i; do if [ -f $n ]; then stat -c '%n %F %s %h' $n; elif [ -e $n ]; then stat -c '%n %F %h' $n; else echo "$n absent"; fi; done; done; [ -d d/sub ] && stat -c '%n %F' d/sub/* || true`;

const STEPS = `
set -e
mkdir d; for i in $(seq 0 ${N - 1}); do printf "%0$((i % 7 + 1))d" $i > d/f$i; done
${DROP}; ${STATS}
${DROP}; ${STATS}
mv d/f1 d/new1; rm d/f2; printf changed > d/f3; ln d/f4 d/new4; mkdir d/sub; mv d/f5 d/sub/
${DROP}; ${STATS}
mv d/new1 d/f2; printf grown >> d/f6; truncate -s 0 d/f7; rm d/new4; printf z > d/new9
${DROP}; ${STATS}
mv d/f8 d/f9; mv d/sub d/f10 2>/dev/null || { rm -r d/f10; mv d/sub d/f10; }
${DROP}; ${STATS}
`;

async function dispatch(mountpoint: string): Promise<DispatchStats> {
  return ((await controlRequest(mountpoint, 'status')) as { nativeDispatch: DispatchStats }).nativeDispatch;
}

describe('LOOKUP answered by the native addon', { skip: loadNative() ? false : 'native addon not built' }, () => {
  after(() => cleanupAll());

  it('answers only current names: after renames, removals, links, writes and new names', async () => {
    const base = await tmpDir();
    const local = path.join(base, 'local');
    await fsp.mkdir(local);
    const d = await startFileDaemon(() => ({}), native)({ mountpoint: path.join(base, 'mnt'), volume: 'nlookup' });
    try {
      const want = await shOk(`cd ${q(local)} && ${STEPS}`);
      const got = await shOk(`cd ${q(d.mountpoint)} && ${STEPS}`);
      assert.equal(got, want);
      const s = await dispatch(d.mountpoint);
      assert.ok(s.lookupHits >= N, `LOOKUPs answered natively: ${JSON.stringify(s)}`);
    } finally {
      await d.stop();
    }
  });

  it('lets inodes go once the kernel forgets the lookups it answered, and names resolve again', async () => {
    const base = await tmpDir();
    const d = await startFileDaemon(() => ({}), native)({ mountpoint: path.join(base, 'mnt'), volume: 'nlookup2' });
    try {
      const m = q(d.mountpoint);
      // 1,500 inodes: past the addon's first table of held inodes (1,024 slots, half full), so it
      // grows, and the FORGETs of the drop remove most of them again.
      await shOk(`cd ${m} && mkdir d && for i in $(seq 0 1499); do printf $i > d/f$i; done`);
      const cat = `cd ${m} && ${DROP} && for i in $(seq 0 1499); do cat d/f$i; echo; done | md5sum`;
      const want = await shOk(`for i in $(seq 0 1499); do printf $i; echo; done | md5sum`);
      assert.equal(await shOk(cat), want);
      const held = (await dispatch(d.mountpoint)).inodesHeld;
      assert.ok(held >= 1400, `inodes held: ${held}`);
      const hits = (await dispatch(d.mountpoint)).lookupHits;
      assert.equal(await shOk(cat), want); // the FORGETs of the drop, then the same names again
      const after = await dispatch(d.mountpoint);
      assert.ok(after.lookupHits > hits, JSON.stringify(after));
      await shOk(DROP);
      await new Promise((r) => setTimeout(r, 300));
      const gone = await dispatch(d.mountpoint);
      assert.ok(gone.inodesHeld < held / 2, `inodes still held after the kernel forgot them: ${JSON.stringify(gone)}`);
      assert.equal(await shOk(cat), want);
    } finally {
      await d.stop();
    }
  });

  it('answers no name from before a reload', async () => {
    const base = await tmpDir();
    const storeDir = path.join(base, 'store');
    const a = await startFileDaemon(() => ({}), native)({ mountpoint: path.join(base, 'a'), volume: 'nlookup3', storeDir });
    const b = await startFileDaemon(() => ({}), native)({ mountpoint: path.join(base, 'b'), volume: 'nlookup3', storeDir });
    try {
      await shOk(`cd ${q(b.mountpoint)} && mkdir d && for i in $(seq 0 59); do printf old$i > d/f$i; done`);
      await controlRequest(b.mountpoint, 'commit');
      await controlRequest(a.mountpoint, 'reload');
      const list = `cd ${q(a.mountpoint)} && ${DROP} && for i in $(seq 0 61); do cat d/f$i 2>/dev/null || printf absent; echo; done`;
      await shOk(list);
      assert.ok((await dispatch(a.mountpoint)).lookupHits > 0);
      await shOk(`cd ${q(b.mountpoint)} && rm d/f0 && mv d/f1 d/f60 && printf new2 > d/f2 && mv d/f3 d/f4 && printf n61 > d/f61`);
      await controlRequest(b.mountpoint, 'commit');
      await controlRequest(a.mountpoint, 'reload');
      const got = (await shOk(list)).split('\n');
      assert.deepEqual(got.slice(0, 5), ['absent', 'absent', 'new2', 'absent', 'old3']);
      assert.deepEqual(got.slice(60, 62), ['old1', 'n61']);
      assert.equal(got[5], 'old5');
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});
