/**
 * Limits through a real mount (real session on the file store, src/fuse/main.js): sizes past the
 * maximum file size are EFBIG, names over 255 bytes ENAMETOOLONG, and neither changes the file
 * nor reaches the daemon log as a failure (no EIO, no stack trace).
 */
import '../helpers/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { cleanupAll, q, sh, shOk, startFileDaemon, tmpDir, type RunningDaemon } from '../helpers/mount.js';
import { errnoOf } from './conformance.js';
import { MAX_FILE_SIZE } from '../../src/util/limits.js';

const start = startFileDaemon();

describe('FUSE limits (real session)', () => {
  let d: RunningDaemon;
  let m = '';
  before(async () => {
    m = path.join(await tmpDir(), 'mnt');
    d = await start({ mountpoint: m, volume: 'limits', storeDir: path.join(path.dirname(m), 'store') });
  });
  after(async () => {
    await d?.stop();
    await cleanupAll();
  });

  it('a size or write past the maximum file size is EFBIG and changes nothing', async () => {
    const f = path.join(m, 'f');
    await shOk(`printf 'hello' > ${q(f)}`);
    const r = await sh(`truncate -s 999999999999999 ${q(f)}`);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /File too large/);
    assert.equal(await errnoOf(`fs.truncate(${JSON.stringify(f)}, ${MAX_FILE_SIZE + 1})`), 'EFBIG');
    const write = (pos: number) =>
      errnoOf(`(async () => { const fh = await fs.open(${JSON.stringify(f)}, 'r+');
        try { await fh.write(Buffer.from('XY'), 0, 2, ${pos}); } finally { await fh.close(); } })()`);
    // (a write across the limit is cut short by the kernel, as write(2) allows: the unit tests cover it)
    assert.equal(await write(MAX_FILE_SIZE), 'EFBIG');
    assert.equal(await write(MAX_FILE_SIZE + 4096), 'EFBIG');
    assert.equal(await shOk(`stat -c %s ${q(f)}; cat ${q(f)}`), '5\nhello');
    // the largest size is allowed (a sparse file; removed before the final commit could read it)
    const big = path.join(m, 'big');
    try {
      const b = JSON.stringify(big);
      assert.equal(await errnoOf(`fs.writeFile(${b}, '').then(() => fs.truncate(${b}, ${MAX_FILE_SIZE}))`), 'OK');
      assert.equal((await shOk(`stat -c %s ${q(big)}`)).trim(), String(MAX_FILE_SIZE));
    } finally {
      await shOk(`rm -f ${q(big)}`);
    }
    assert.doesNotMatch(d.logs(), /failed|\n\s+at /, 'nothing reached the daemon log as a failure');
  });

  it('a name over 255 bytes is ENAMETOOLONG; 255 bytes work', async () => {
    const long = path.join(m, 'n'.repeat(256));
    assert.equal(await errnoOf(`fs.writeFile(${JSON.stringify(long)}, 'x')`), 'ENAMETOOLONG');
    assert.equal(await errnoOf(`fs.mkdir(${JSON.stringify(long)})`), 'ENAMETOOLONG');
    assert.equal(await errnoOf(`fs.stat(${JSON.stringify(long)})`), 'ENAMETOOLONG');
    const r = await sh(`touch ${q(long)}`);
    assert.match(r.stderr, /File name too long/);
    await shOk(`touch ${q(path.join(m, 'n'.repeat(255)))}`);
    assert.equal((await shOk(`ls ${q(m)} | grep -c '^n*$'`)).trim(), '1');
  });
});
