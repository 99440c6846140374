/**
 * Limits through a real mount (real session on the file store, src/fuse/main.js): sizes past the
 * maximum file size are EFBIG (also 64-bit positions past JavaScript's safe integers), names over
 * 255 bytes ENAMETOOLONG, names and symlink targets that are not UTF-8 EILSEQ, and none of them
 * changes anything nor reaches the daemon log as a failure (no EIO, no stack trace).
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

  it('a position past the safe integers (2^54, 2^63) is EFBIG too, for truncate, pwrite and fallocate', async () => {
    const f = path.join(m, 'far');
    await shOk(`printf 'hello' > ${q(f)}`);
    // (stress-ng's fsize stressor probes these; JavaScript numbers are exact only up to 2^53)
    const py = `
import os, errno, sys
fd = os.open(sys.argv[1], os.O_RDWR)
for off in (2**54 - 2, 2**62, 2**63 - 2):
    for name, call in (('truncate', lambda: os.ftruncate(fd, off)), ('pwrite', lambda: os.pwrite(fd, b'x', off)),
                       ('fallocate', lambda: os.posix_fallocate(fd, off, 1))):
        try:
            call(); print(name, off, 'OK')
        except OSError as e:
            print(name, off, errno.errorcode[e.errno])
`;
    const out = (await shOk(`python3 -c ${q(py)} ${q(f)}`)).trim().split('\n');
    assert.equal(out.length, 9, out.join('\n'));
    for (const line of out) assert.match(line, / EFBIG$/);
    assert.equal(await shOk(`stat -c %s ${q(f)}; cat ${q(f)}`), '5\nhello');
    assert.doesNotMatch(d.logs(), /failed|\n\s+at /, 'nothing reached the daemon log as a failure');
  });

  it('a name or symlink target that is not UTF-8 is EILSEQ and changes nothing; U+FFFD itself is a name', async () => {
    const dir = path.join(m, 'utf8');
    const fallback = process.env.CAIRN_FUSE_BINDING === 'fuse-native';
    await shOk(`mkdir ${q(dir)}`);
    // Names are UTF-8 in a volume: other bytes must not be stored as U+FFFD (two names would share one entry).
    const py = `
import os, errno, sys
d = sys.argv[1].encode()
def run(name, call):
    try:
        call(); print(name, 'OK')
    except OSError as e:
        print(name, errno.errorcode[e.errno])
bad = d + b'/caf\\xe9'
run('create', lambda: os.close(os.open(bad, os.O_CREAT | os.O_WRONLY, 0o644)))
run('mkdir', lambda: os.mkdir(d + b'/\\xff\\xfe'))
run('mknod', lambda: os.mknod(d + b'/\\xc0\\xaf'))
run('surrogate', lambda: os.mkdir(d + b'/\\xed\\xa0\\x80'))
run('stat', lambda: os.stat(bad))
with open(d + b'/ok', 'w') as f: f.write('x')
run('link', lambda: os.link(d + b'/ok', d + b'/l\\xe9'))
run('rename', lambda: os.rename(d + b'/ok', d + b'/r\\xe9'))
run('symlink-name', lambda: os.symlink(b'ok', d + b'/s\\xe9'))
run('symlink-target', lambda: os.symlink(b't\\xe9', d + b'/s'))
run('fffd', lambda: open(d + b'/caf\\xef\\xbf\\xbd', 'w').write('y'))
print(sorted(n.decode() for n in os.listdir(d)))
`;
    const out = (await shOk(`python3 -c ${q(py)} ${q(dir)}`)).trim().split('\n');
    assert.deepEqual(out, [
      'create EILSEQ',
      'mkdir EILSEQ',
      'mknod EILSEQ',
      'surrogate EILSEQ',
      'stat ENOENT',
      'link EILSEQ',
      'rename EILSEQ',
      'symlink-name EILSEQ',
      'symlink-target EILSEQ',
      // (fuse-native receives names already decoded: it cannot tell U+FFFD from bytes it replaced)
      ...(fallback ? ['fffd EILSEQ', "['ok']"] : ['fffd OK', "['caf\ufffd', 'ok']"]),
    ]);
    if (!fallback) assert.equal(await shOk(`cat ${q(dir)}/ok; cat ${q(dir)}/caf$'\\xef\\xbf\\xbd'`), 'xy');
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
