/**
 * An fsx-style exerciser (test/fixtures/fsx.py) through a real mount: random pwrite, pread,
 * ftruncate, mmap reads and writes, fallocate (mode 0, KEEP_SIZE, PUNCH_HOLE, ZERO_RANGE),
 * copy_file_range, fsync and reopen on one file per seed, compared with a model after every 50
 * operations; then a commit and a remount, after which each file must hold the model's final
 * bytes. scripts/test.sh runs it again with the fuse-native fallback (which answers fallocate with
 * EOPNOTSUPP) and with the kernel's writeback cache.
 */
import '../helpers/env.js';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { controlRequest } from '../../src/fuse/control.js';
import { cleanupAll, q, shOk, startFileDaemon, tmpDir } from '../helpers/mount.js';

const FSX = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/fsx.py');
const SEEDS = [1, 2, 3, 4];
const OPS = 2000;

describe('fsx through a mount', () => {
  after(() => cleanupAll());

  it('every operation matches the model, and the bytes survive a commit and a remount', async () => {
    const base = await tmpDir('fsx-');
    const spec = { mountpoint: path.join(base, 'm'), volume: 'fsx', storeDir: path.join(base, 'store') };
    const start = startFileDaemon();
    let daemon = await start(spec);
    try {
      const runs: { seed: number; unsupported: string[]; md5: string }[] = [];
      for (const seed of SEEDS) {
        const out = await shOk(`python3 ${q(FSX)} ${q(path.join(spec.mountpoint, `f${seed}`))} ${seed} ${OPS}`);
        runs.push(JSON.parse(out) as (typeof runs)[number]);
      }
      const fallback = process.env.CAIRN_FUSE_BINDING === 'fuse-native';
      for (const r of runs) assert.deepEqual(r.unsupported, fallback ? ['falloc', 'punch', 'zero'] : [], `seed ${r.seed}`);
      await controlRequest(spec.mountpoint, 'commit');
      assert.equal(await daemon.stop(), 0);
      daemon = await start(spec);
      for (const r of runs) {
        const md5 = (await shOk(`md5sum < ${q(path.join(spec.mountpoint, `f${r.seed}`))}`)).split(' ')[0];
        assert.equal(md5, r.md5, `f${r.seed} after the remount`);
      }
    } finally {
      await daemon.stop();
    }
  });
});
