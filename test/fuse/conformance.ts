/**
 * The POSIX conformance suite of a Cairn mount, parameterised by how a daemon is started
 * (real.test.ts: `conformanceSuite('real session, file store', startFileDaemon())`).
 *
 * Every check drives the mount from child processes (shell tools, or Node scripts), never from
 * this process; teardown always unmounts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { cleanupAll, nodeScript, q, shOk, tmpDir, type RunningDaemon, type StartDaemon } from '../helpers/mount.js';

/** Errno code (e.g. 'ENOTEMPTY') of a Node fs.promises call run in a child; 'OK' on success. */
export async function errnoOf(call: string): Promise<string> {
  const out = await nodeScript(
    `import fs from 'node:fs/promises'; try { await ${call}; console.log('OK'); } catch (e) { console.log(e.code); }`,
  );
  return out.trim();
}

/** Registers the conformance tests for daemons made by `start`. */
export function conformanceSuite(name: string, start: StartDaemon): void {
  describe(`FUSE conformance (${name})`, () => {
    let d: RunningDaemon;
    let m: string;
    let n = 0;
    /** A fresh directory inside the mount for one test. */
    const fresh = async (): Promise<string> => {
      const dir = path.join(m, `t${++n}`);
      await shOk(`mkdir ${q(dir)}`);
      return dir;
    };

    before(async () => {
      m = path.join(await tmpDir(), 'mnt');
      d = await start({ mountpoint: m, volume: 'conf', storeDir: path.join(path.dirname(m), 'store') });
    });
    after(async () => {
      await d?.stop();
      await cleanupAll();
    });

    it('creates, reads, overwrites (O_TRUNC) and appends', async () => {
      const t = await fresh();
      const f = q(`${t}/f.txt`);
      assert.equal(await shOk(`printf 'hello world' > ${f}; cat ${f}`), 'hello world');
      assert.equal(await shOk(`printf 'bye' > ${f}; cat ${f}`), 'bye');
      assert.equal(await shOk(`printf ' again' >> ${f}; printf '!' >> ${f}; cat ${f}`), 'bye again!');
      assert.equal((await shOk(`stat -c %s ${f}`)).trim(), '10');
    });

    it('random writes with dd conv=notrunc seek=', async () => {
      const t = await fresh();
      const f = q(`${t}/r.bin`);
      await shOk(`printf 'aaaaaaaaaa' > ${f}; printf 'XY' | dd of=${f} bs=1 seek=4 conv=notrunc status=none`);
      assert.equal(await shOk(`cat ${f}`), 'aaaaXYaaaa');
      await shOk(`printf 'Z' | dd of=${f} bs=1 seek=12 conv=notrunc status=none`);
      assert.equal(await shOk(`od -An -c ${f} | tr -s ' '`), ' a a a a X Y a a a a \\0 \\0 Z\n');
    });

    it('truncates down and up', async () => {
      const t = await fresh();
      const f = q(`${t}/t`);
      await shOk(`printf '0123456789' > ${f}; truncate -s 4 ${f}`);
      assert.equal(await shOk(`cat ${f}`), '0123');
      await shOk(`truncate -s 8 ${f}`);
      assert.equal(await shOk(`od -An -c ${f} | tr -s ' '`), ' 0 1 2 3 \\0 \\0 \\0 \\0\n');
      await shOk(`truncate -s 0 ${f}`);
      assert.equal((await shOk(`stat -c %s ${f}`)).trim(), '0');
    });

    it('copies a multi-megabyte file byte for byte', async () => {
      const t = await fresh();
      const src = path.join(path.dirname(m), 'src.bin');
      await shOk(`head -c 7340033 /dev/urandom > ${q(src)}`);
      await shOk(`cp ${q(src)} ${q(`${t}/copy.bin`)}`);
      const sums = await shOk(`sha256sum < ${q(src)}; sha256sum < ${q(`${t}/copy.bin`)}`);
      const [a, b] = sums.trim().split('\n');
      assert.equal(a, b);
    });

    it('renames a file over an existing one', async () => {
      const t = await fresh();
      await shOk(`cd ${q(t)} && printf new > a && printf old > b && mv a b`);
      assert.equal(await shOk(`cat ${q(`${t}/b`)}`), 'new');
      assert.equal((await shOk(`ls ${q(t)}`)).trim(), 'b');
    });

    it('renames a non-empty directory', async () => {
      const t = await fresh();
      await shOk(`cd ${q(t)} && mkdir -p d/sub && printf 1 > d/x && printf 2 > d/sub/y && mv d e`);
      assert.equal((await shOk(`cd ${q(t)} && find . | sort`)).trim(), ['.', './e', './e/sub', './e/sub/y', './e/x'].join('\n'));
      assert.equal(await shOk(`cat ${q(`${t}/e/sub/y`)}`), '2');
    });

    it('reports ENOTEMPTY, ENOENT, EEXIST, EISDIR, ENOTDIR', async () => {
      const t = await fresh();
      await shOk(`cd ${q(t)} && mkdir -p full/x empty && printf 1 > file`);
      assert.equal(await errnoOf(`fs.rmdir(${JSON.stringify(`${t}/full`)})`), 'ENOTEMPTY');
      assert.equal(await errnoOf(`fs.rename(${JSON.stringify(`${t}/empty`)}, ${JSON.stringify(`${t}/full`)})`), 'ENOTEMPTY');
      assert.equal(await errnoOf(`fs.readFile(${JSON.stringify(`${t}/missing`)})`), 'ENOENT');
      assert.equal(await errnoOf(`fs.mkdir(${JSON.stringify(`${t}/full`)})`), 'EEXIST');
      assert.equal(await errnoOf(`fs.unlink(${JSON.stringify(`${t}/full`)})`), 'EISDIR');
      assert.equal(await errnoOf(`fs.writeFile(${JSON.stringify(`${t}/file/x`)}, 'x')`), 'ENOTDIR');
      assert.equal(await errnoOf(`fs.rmdir(${JSON.stringify(`${t}/empty`)})`), 'OK');
    });

    it('keeps an unlinked open file readable through its descriptor', async () => {
      const t = await fresh();
      const f = `${t}/open.txt`;
      const out = await nodeScript(`
        import fs from 'node:fs/promises';
        const h = await fs.open(${JSON.stringify(f)}, 'w+');
        await h.write('still here', 0);
        await fs.unlink(${JSON.stringify(f)});
        let missing = 'no';
        try { await fs.stat(${JSON.stringify(f)}); } catch (e) { missing = e.code; }
        const b = Buffer.alloc(10);
        await h.read(b, 0, 10, 0);
        await h.close();
        console.log(missing + ' ' + b.toString());`);
      assert.equal(out.trim(), 'ENOENT still here');
      // libfuse keeps the data under a hidden name until the last close, then removes it.
      for (let i = 0; i < 50; i++) {
        if ((await shOk(`ls -A ${q(t)}`)).trim() === '') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal((await shOk(`ls -A ${q(t)}`)).trim(), '');
    });

    it('supports symlinks (ln -s, readlink, following)', async () => {
      const t = await fresh();
      await shOk(`cd ${q(t)} && printf target-data > real && ln -s real link && ln -s ../nowhere dangling`);
      assert.equal((await shOk(`readlink ${q(`${t}/link`)}`)).trim(), 'real');
      assert.equal((await shOk(`readlink ${q(`${t}/dangling`)}`)).trim(), '../nowhere');
      assert.equal(await shOk(`cat ${q(`${t}/link`)}`), 'target-data');
      assert.equal((await shOk(`stat -c %F ${q(`${t}/link`)}`)).trim(), 'symbolic link');
    });

    it('chmod changes permission bits', async () => {
      const t = await fresh();
      await shOk(`cd ${q(t)} && printf x > f && chmod 600 f && mkdir d && chmod 750 d`);
      assert.equal((await shOk(`stat -c %a ${q(`${t}/f`)} ${q(`${t}/d`)}`)).trim(), '600\n750');
    });

    it('sets mtime (touch -d) with second precision at least', async () => {
      const t = await fresh();
      await shOk(`cd ${q(t)} && printf x > f && touch -d '2001-02-03 04:05:06 UTC' f`);
      assert.equal((await shOk(`stat -c %Y ${q(`${t}/f`)}`)).trim(), '981173106');
      const before = Math.floor(Date.now() / 1000) - 2;
      await shOk(`touch ${q(`${t}/f`)}`);
      assert.ok(Number((await shOk(`stat -c %Y ${q(`${t}/f`)}`)).trim()) >= before);
    });

    it('writes at a 100 MiB offset (sparse-ish file)', async () => {
      const t = await fresh();
      const f = q(`${t}/sparse.bin`);
      await shOk(`printf 'TAIL' | dd of=${f} bs=1 seek=104857600 status=none`, { timeoutMs: 300_000 });
      assert.equal((await shOk(`stat -c %s ${f}`)).trim(), '104857604');
      assert.equal(await shOk(`tail -c 4 ${f}`), 'TAIL');
      assert.equal(await shOk(`dd if=${f} bs=1 skip=52428800 count=4 status=none | od -An -tx1 | tr -d ' \\n'`), '00000000');
    });

    it('lists 10,000 files in one directory', async () => {
      const t = await fresh();
      await nodeScript(
        `
        import fs from 'node:fs/promises';
        const dir = ${JSON.stringify(`${t}/many`)};
        await fs.mkdir(dir);
        const N = 10000, C = 64; let next = 0;
        await Promise.all(Array.from({ length: C }, async () => {
          for (let i = next++; i < N; i = next++) await fs.writeFile(dir + '/f' + i, String(i));
        }));`,
        { timeoutMs: 300_000 },
      );
      assert.equal((await shOk(`ls ${q(`${t}/many`)} | wc -l`)).trim(), '10000');
      assert.equal(await shOk(`cat ${q(`${t}/many/f9999`)}`), '9999');
    });

    it('handles names with spaces and UTF-8', async () => {
      const t = await fresh();
      const name = 'a b ü 日本 ☃.txt';
      await shOk(`printf snow > ${q(`${t}/${name}`)} && mkdir ${q(`${t}/dir with space`)}`);
      assert.equal((await shOk(`ls ${q(t)}`)).trim().split('\n').sort().join('|'), [name, 'dir with space'].sort().join('|'));
      assert.equal(await shOk(`cat ${q(`${t}/${name}`)}`), 'snow');
    });

    it('makes hard links (test/programs/links.test.ts has the rest) and reports statfs', async () => {
      const t = await fresh();
      await shOk(`printf x > ${q(`${t}/f`)}`);
      assert.equal(await errnoOf(`fs.link(${JSON.stringify(`${t}/f`)}, ${JSON.stringify(`${t}/g`)})`), 'OK');
      assert.equal((await shOk(`printf y >> ${q(`${t}/g`)} && cat ${q(`${t}/f`)} && stat -c %h ${q(`${t}/f`)}`)).trim(), 'xy2');
      const df = await shOk(`df -P ${q(m)} | tail -1`);
      assert.match(df, /cairn:/);
    });
  });
}
