/**
 * A full local disk (the session directory on a 32 MiB tmpfs), through a real mount (real session,
 * file store): the write that fills it fails with ENOSPC (not EIO), a delete still works (the
 * session's reserve, src/session/reserve.ts), new data is refused with ENOSPC until a commit frees
 * the deleted file's space, and nothing written before is lost.
 */
import '../helpers/env.js';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { controlRequest } from '../../src/fuse/control.js';
import { Volume } from '../../src/volume/index.js';
import { cleanupAll, q, sh, shOk, startFileDaemon, tmpDir, type RunningDaemon } from '../helpers/mount.js';
import { errnoOf } from './conformance.js';

describe('a full local disk (real session)', () => {
  let small = '';
  after(async () => {
    await cleanupAll();
    if (small) await sh(`umount ${q(small)}`);
  });

  it('answers ENOSPC, still deletes, and loses nothing', async () => {
    const base = await tmpDir();
    small = path.join(base, 'small');
    await fs.mkdir(small);
    await shOk(`mount -t tmpfs -o size=32m tmpfs ${q(small)}`);
    const m = path.join(base, 'mnt');
    const storeDir = path.join(base, 'store');
    const start = startFileDaemon(() => ({ sessionDir: path.join(small, 'session') }));
    let d: RunningDaemon | undefined = await start({ mountpoint: m, volume: 'full', storeDir });
    try {
      await shOk(`printf keep > ${q(`${m}/keep.txt`)}`);
      const fill = await sh(`dd if=/dev/zero of=${q(`${m}/big.bin`)} bs=1M count=64 conv=fsync`);
      assert.notEqual(fill.code, 0);
      assert.match(fill.stderr, /No space left on device/);
      // new data is refused while the disk is full; a delete is answered
      assert.equal(await errnoOf(`fs.writeFile(${JSON.stringify(`${m}/new.txt`)}, 'new')`), 'ENOSPC');
      await shOk(`rm ${q(`${m}/big.bin`)}`);
      assert.equal(await errnoOf(`fs.writeFile(${JSON.stringify(`${m}/new.txt`)}, 'new')`), 'ENOSPC');
      // a commit frees the deleted file's space: writes work again
      await controlRequest(m, 'commit');
      assert.equal(await errnoOf(`fs.writeFile(${JSON.stringify(`${m}/new.txt`)}, 'new')`), 'OK');
      assert.equal(await shOk(`cat ${q(`${m}/keep.txt`)} ${q(`${m}/new.txt`)}`), 'keepnew');
      assert.doesNotMatch(d.logs(), /\n\s+at /, 'no stack trace in the log');
      await d.stop();
      d = undefined;
      const vol = await Volume.fromName('full', { store: `file://${storeDir}` });
      assert.deepEqual((await vol.listdir('/')).map((e) => e.path).sort(), ['keep.txt', 'new.txt']);
      await vol.close();
    } finally {
      await d?.stop();
    }
  });
});
