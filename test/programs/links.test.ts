/**
 * Hard links through a real mount (issue 15): `ln`, link counts and one inode number for every
 * name, content written through one name read through another (before and after a commit, in a
 * second mount after its reload, after a remount), unlink of either name (also while the file is
 * open through the other), rename of a linked name, link(2)'s errors, and the programs that make
 * hard links: `tar` (create, extract into the mount, `tar -d` clean) and `rsync -aH` (a no-op
 * rerun transfers nothing).
 */
import '../helpers/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { controlRequest } from '../../src/fuse/control.js';
import { cleanupAll, q, sh, shOk, startFileDaemon, tmpDir, type DaemonSpec, type RunningDaemon } from '../helpers/mount.js';
import { errnoOf } from '../fuse/conformance.js';

const start = startFileDaemon();

/** `stat -c FORMAT` of each path, one line each. */
async function stat(fmt: string, ...paths: string[]): Promise<string[]> {
  return (await shOk(`stat -c ${q(fmt)} ${paths.map(q).join(' ')}`)).trim().split('\n');
}

describe('hard links through a mount', () => {
  let base: string;
  let spec: DaemonSpec;
  let d: RunningDaemon;
  let m: string;
  let local: string;

  before(async () => {
    base = await tmpDir('links-');
    spec = { mountpoint: path.join(base, 'm'), volume: 'links', storeDir: path.join(base, 'store') };
    d = await start(spec);
    m = spec.mountpoint;
    local = path.join(base, 'local');
    await shOk(`mkdir -p ${q(local)}`);
  });
  after(async () => {
    await d?.stop();
    await cleanupAll();
  });
  const remount = async () => {
    assert.equal(await d.stop(), 0, d.logs());
    d = await start(spec);
  };

  it('ln: one inode, a link count, shared content through commit, a second mount and a remount', async () => {
    const [f, h] = [`${m}/f`, `${m}/sub/h`];
    await shOk(`printf one > ${q(f)} && mkdir ${q(`${m}/sub`)} && ln ${q(f)} ${q(h)}`);
    assert.deepEqual(await stat('%h', f, h), ['2', '2']);
    const [i1, i2] = await stat('%i', f, h);
    assert.equal(i1, i2, 'one inode number for both names');
    assert.match(await shOk(`ls -l ${q(f)}`), /^-\S+ 2 /);
    await shOk(`printf +two >> ${q(h)}`);
    assert.equal(await shOk(`cat ${q(f)}`), 'one+two');
    await controlRequest(m, 'commit');
    await shOk(`printf ONE | dd of=${q(f)} conv=notrunc status=none`);
    assert.equal(await shOk(`cat ${q(h)}`), 'ONE+two');
    await controlRequest(m, 'commit');

    // A second mount of the volume sees the link after its reload.
    const other = await start({ ...spec, mountpoint: path.join(base, 'm2') });
    try {
      const o = other.mountpoint;
      assert.equal(await shOk(`cat ${q(`${o}/sub/h`)}`), 'ONE+two');
      await shOk(`printf 3 >> ${q(`${m}/sub/h`)}`);
      await controlRequest(m, 'commit');
      await controlRequest(o, 'reload');
      assert.equal(await shOk(`cat ${q(`${o}/f`)} ${q(`${o}/sub/h`)}`), 'ONE+two3ONE+two3');
      assert.deepEqual(await stat('%h', `${o}/f`, `${o}/sub/h`), ['2', '2']);
      const [o1, o2] = await stat('%i', `${o}/f`, `${o}/sub/h`);
      assert.equal(o1, o2);
      // A reload that makes two known names one file gives them one inode.
      await shOk(`printf x > ${q(`${m}/p`)} && printf y > ${q(`${o}/q`)} && cat ${q(`${o}/q`)} >/dev/null`);
      await controlRequest(m, 'commit');
      await controlRequest(o, 'reload');
      await shOk(`cat ${q(`${o}/p`)} >/dev/null && rm ${q(`${m}/p`)} && printf z > ${q(`${m}/q`)} && ln ${q(`${m}/q`)} ${q(`${m}/p`)}`);
      await controlRequest(m, 'commit');
      await controlRequest(o, 'reload');
      const [p1, p2] = await stat('%i %h', `${o}/p`, `${o}/q`);
      assert.equal(p1, p2);
      assert.match(p1!, / 2$/);
      assert.equal(await shOk(`cat ${q(`${o}/p`)}`), 'z');
    } finally {
      await other.stop();
    }

    await remount();
    assert.deepEqual(await stat('%h', f, h), ['2', '2']);
    assert.equal(new Set(await stat('%i', f, h)).size, 1);
    assert.equal(await shOk(`cat ${q(h)}`), 'ONE+two3');
    await shOk(`rm ${q(f)}`);
    assert.deepEqual(await stat('%h', h), ['1']);
    assert.equal(await shOk(`cat ${q(h)}`), 'ONE+two3');
    await shOk(`rm ${q(h)}`);
    assert.equal((await sh(`stat ${q(h)}`)).code, 1);
  });

  it('rename of a linked name, unlink while open through the other name, link(2) errors', async () => {
    const t = `${m}/t2`;
    await shOk(`mkdir ${q(t)} && printf data > ${q(`${t}/a`)} && ln ${q(`${t}/a`)} ${q(`${t}/b`)} && mv ${q(`${t}/b`)} ${q(`${t}/c`)}`);
    assert.deepEqual(await stat('%h', `${t}/a`, `${t}/c`), ['2', '2']);
    assert.equal(new Set(await stat('%i', `${t}/a`, `${t}/c`)).size, 1);
    // Open through a, remove a, write through the descriptor: c sees it; c's count drops to 1.
    const out = await shOk(
      `cd ${q(t)} && python3 -c "
import os
fd = os.open('a', os.O_RDWR)
os.unlink('a')
os.pwrite(fd, b'DA', 0)
print(open('c').read(), os.stat('c').st_nlink, os.fstat(fd).st_nlink)
os.close(fd)
"`,
    );
    assert.equal(out.trim(), 'DAta 1 1');
    assert.deepEqual((await shOk(`ls -A ${q(t)}`)).trim().split('\n'), ['c']);
    await shOk(`mkdir ${q(`${t}/dir`)}`);
    const link = (a: string, b: string) => errnoOf(`fs.link(${JSON.stringify(a)}, ${JSON.stringify(b)})`);
    assert.equal(await link(`${t}/dir`, `${t}/dir2`), 'EPERM');
    assert.equal(await link(`${t}/c`, `${t}/nope/x`), 'ENOENT');
    assert.equal(await link(`${t}/nope`, `${t}/x`), 'ENOENT');
    assert.equal(await link(`${t}/c`, `${t}/dir`), 'EEXIST');
    await controlRequest(m, 'commit');
    await remount();
    assert.equal(await shOk(`cat ${q(`${t}/c`)}`), 'DAta');
    assert.deepEqual(await stat('%h', `${t}/c`), ['1']);
  });

  it('tar: a tree with hard links extracts into the mount with its links, and `tar -d` finds no difference', async () => {
    const src = `${local}/tsrc`;
    await shOk(
      `mkdir -p ${q(`${src}/sub`)} && head -c 300000 /dev/urandom > ${q(`${src}/big`)} && ln ${q(`${src}/big`)} ${q(`${src}/sub/big2`)} && ` +
        `printf small > ${q(`${src}/s`)} && ln ${q(`${src}/s`)} ${q(`${src}/s2`)} && ln ${q(`${src}/s`)} ${q(`${src}/sub/s3`)} && ` +
        `tar -C ${q(local)} -cf ${q(`${local}/t.tar`)} tsrc`,
    );
    await shOk(`tar -C ${q(m)} -xf ${q(`${local}/t.tar`)}`);
    await shOk(`tar -C ${q(m)} -df ${q(`${local}/t.tar`)}`);
    const x = `${m}/tsrc`;
    assert.deepEqual(await stat('%h', `${x}/big`, `${x}/sub/big2`, `${x}/s`, `${x}/sub/s3`), ['2', '2', '3', '3']);
    assert.equal(new Set(await stat('%i', `${x}/s`, `${x}/s2`, `${x}/sub/s3`)).size, 1);
    await remount();
    await shOk(`tar -C ${q(m)} -df ${q(`${local}/t.tar`)}`);
    assert.equal(new Set(await stat('%i', `${x}/big`, `${x}/sub/big2`)).size, 1);
    // tar -c in the mount records the links (one member, the others as hard links).
    const listing = await shOk(`tar -C ${q(m)} -cf - tsrc | tar -tvf -`);
    assert.equal((listing.match(/ link to /g) ?? []).length, 3, listing);
  });

  it('rsync -aH copies the links into the mount, and a rerun transfers no file', async () => {
    const src = `${local}/rsrc`;
    await shOk(
      `mkdir -p ${q(`${src}/d`)} && printf aaa > ${q(`${src}/a`)} && ln ${q(`${src}/a`)} ${q(`${src}/d/a2`)} && ` +
        `printf bbb > ${q(`${src}/b`)} && touch -d 2020-01-01 ${q(`${src}/a`)} ${q(`${src}/b`)}`,
    );
    await shOk(`rsync -aH ${q(`${src}/`)} ${q(`${m}/r/`)}`);
    assert.equal(new Set(await stat('%i %h', `${m}/r/a`, `${m}/r/d/a2`)).size, 1);
    assert.deepEqual(await stat('%h', `${m}/r/a`), ['2']);
    const again = await shOk(`rsync -aH --stats ${q(`${src}/`)} ${q(`${m}/r/`)}`);
    assert.match(again, /Number of regular files transferred: 0/);
    await remount();
    const third = await shOk(`rsync -aH --stats ${q(`${src}/`)} ${q(`${m}/r/`)}`);
    assert.match(third, /Number of regular files transferred: 0/);
    assert.equal(new Set(await stat('%i %h', `${m}/r/a`, `${m}/r/d/a2`)).size, 1);
  });
});

describe('hard links through a fuse-native (fallback) mount', () => {
  const startFallback = startFileDaemon(() => ({}), { CAIRN_FUSE_BINDING: 'fuse-native' });
  after(() => cleanupAll());

  it("links with shared content and link counts (inode numbers are libfuse 2's, one per path)", async () => {
    const base = await tmpDir('links-fn-');
    const spec = { mountpoint: path.join(base, 'm'), volume: 'links', storeDir: path.join(base, 'store') };
    const d = await startFallback(spec);
    try {
      const m = spec.mountpoint;
      await shOk(`printf one > ${q(`${m}/f`)} && ln ${q(`${m}/f`)} ${q(`${m}/h`)} && printf +two >> ${q(`${m}/h`)}`);
      assert.equal(await shOk(`cat ${q(`${m}/f`)}`), 'one+two');
      assert.deepEqual(await stat('%h', `${m}/f`, `${m}/h`), ['2', '2']);
      await shOk(`rm ${q(`${m}/f`)}`);
      assert.deepEqual(await stat('%h', `${m}/h`), ['1']);
      assert.match(d.logs(), /fuse-native/);
    } finally {
      await d.stop();
    }
  });
});
