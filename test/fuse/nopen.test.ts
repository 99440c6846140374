/**
 * Native opens (native/nopen.c, src/fuse/lowlevel-nread.ts, HandleTable.setExternal) through a real
 * native mount of a file store: once one file of a directory was opened through JavaScript, the
 * read-only OPENs and RELEASEs of its other committed, unchanged small files are answered by the
 * addon (no OPEN or RELEASE reaches JavaScript) and read right; a file held open that way is still
 * an open file: reload and unmount are refused with VOLUME_BUSY naming it and its opener's pid,
 * and allowed once it is closed; one unlinked while open natively stays readable, hidden, and is
 * removed at its last close; a file opened for writing is no longer opened natively (its new
 * bytes are read); a file another mount changed is read new after a reload. Skipped without the addon.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { isCairnError } from '../../src/errors.js';
import { controlRequest } from '../../src/fuse/control.js';
import type { NreadStats } from '../../src/fuse/lowlevel-addon.js';
import { loadNative } from '../../src/fuse/lowlevel.js';
import { cleanupAll, committedFiles, q, shOk } from '../helpers/mount.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const env = { CAIRN_FUSE_BINDING: 'native' };
/** Files `/d/f0`, `/d/f1`, … with these bytes. */
const inDir = (files: Buffer[]): Record<string, Buffer> => Object.fromEntries(files.map((b, i) => [`/d/f${i}`, b]));

interface Status {
  nativeReads: Required<NreadStats> | null;
  metrics: Record<string, number>;
  openFiles: { path: string }[];
}
const status = async (mnt: string): Promise<Status> => (await controlRequest(mnt, 'status')) as Status;
/** OPENs and RELEASEs JavaScript answered. */
const jsOps = (s: Status): number =>
  (s.metrics['cairn_fuse_ops_total{op="open"}'] ?? 0) + (s.metrics['cairn_fuse_ops_total{op="release"}'] ?? 0);

async function until(what: string, ok: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('native opens', { skip: loadNative() ? false : 'native addon not built' }, () => {
  after(() => cleanupAll());

  it('answers read-only opens of unchanged files natively; such a file still refuses reload and unmount with its pid', async () => {
    const files = Array.from({ length: 12 }, () => randomBytes(64 << 10));
    const { mnt, mntW, start } = await committedFiles('nopen', inDir(files), { env });

    const d = await start();
    const f = (i: number): string => path.join(mnt, 'd', `f${i}`);
    try {
      await shOk(`ls -l ${q(path.join(mnt, 'd'))} > /dev/null`); // the kernel knows the files (readdirplus)
      assert.equal(sha(await fs.readFile(f(0))), sha(files[0]!)); // opened through JavaScript: registers the directory
      // The opened file's layout first, then its directory's (off the request): until they stop growing.
      let last = -1;
      let same = 0;
      await until('the layouts', async () => {
        const b = (await status(mnt)).nativeReads?.layoutBytes ?? 0;
        same = b > 0 && b === last ? same + 1 : 0;
        last = b;
        return same >= 3;
      });
      const s0 = await status(mnt);
      for (let i = 1; i < 10; i++) assert.equal(sha(await fs.readFile(f(i))), sha(files[i]!), `f${i}`);
      const s1 = await status(mnt);
      assert.equal(s1.nativeReads!.nativeOpens - s0.nativeReads!.nativeOpens, 9, 'nine opens answered natively');
      assert.equal(jsOps(s1), jsOps(s0), 'no OPEN or RELEASE reached JavaScript');
      await until('the releases', async () => (await status(mnt)).nativeReads!.nativeOpen === 0);

      // A file held open natively: reload and unmount refused, naming it and the holder's pid.
      const holder = spawn(
        'python3',
        ['-c', 'import os,sys; fd=os.open(sys.argv[1],os.O_RDONLY); print("open",flush=True); sys.stdin.read()', f(5)],
        {
          stdio: ['pipe', 'pipe', 'inherit'],
        },
      );
      await new Promise((r) => holder.stdout!.once('data', r));
      const held = await status(mnt);
      assert.equal(held.nativeReads!.nativeOpen, 1, 'opened natively');
      assert.deepEqual(
        held.openFiles.map((o) => o.path),
        ['/d/f5'],
      );
      for (const op of ['reload', 'unmount'] as const) {
        const err = await controlRequest(mnt, op).then(
          () => undefined,
          (e: unknown) => e,
        );
        assert.ok(isCairnError(err) && err.code === 'VOLUME_BUSY', `${op}: ${String(err)}`);
        assert.deepEqual(err.context.openFiles, [{ path: '/d/f5', pid: holder.pid }], op);
      }
      holder.stdin!.end();
      await new Promise((r) => holder.once('exit', r));
      assert.equal((await controlRequest(mnt, 'reload')) !== undefined, true, 'reload once it is closed');

      // Unlinked while open natively: hidden, still read right, removed at its last close.
      const h3 = spawn(
        'python3',
        [
          '-c',
          `import os,sys,hashlib
fd=os.open(sys.argv[1],os.O_RDONLY); print("open",flush=True); sys.stdin.readline()
print(hashlib.sha256(os.pread(fd,1<<20,0)).hexdigest(),flush=True); sys.stdin.read()`,
          f(3),
        ],
        { stdio: ['pipe', 'pipe', 'inherit'] },
      );
      h3.stdout!.setEncoding('utf8');
      const lines: string[] = [];
      h3.stdout!.on('data', (c: string) => lines.push(...c.split('\n').filter(Boolean)));
      await until('the open', async () => lines.length > 0);
      assert.equal((await status(mnt)).nativeReads!.nativeOpen, 1);
      await fs.unlink(f(3));
      h3.stdin!.write('read\n');
      await until('the read', async () => lines.length > 1);
      assert.equal(lines[1], sha(files[3]!), 'the unlinked file reads right');
      const hiddenAs = (await status(mnt)).openFiles.map((o) => o.path);
      assert.match(hiddenAs.join(), /^\/d\/\.fuse_hidden/, 'hidden while open');
      const hidden = path.join(mnt, hiddenAs[0]!);
      h3.stdin!.end();
      await new Promise((r) => h3.once('exit', r));
      await until(
        'the hidden file removed',
        async () =>
          !(await fs.stat(hidden).then(
            () => true,
            () => false,
          )),
      );

      // Opened for writing: no longer opened natively; the new bytes are read.
      const fresh = randomBytes(1000);
      await fs.writeFile(f(7), fresh);
      const s2 = await status(mnt);
      assert.equal(sha(await fs.readFile(f(7))), sha(fresh));
      const s3 = await status(mnt);
      assert.equal(s3.nativeReads!.nativeOpens, s2.nativeReads!.nativeOpens, 'the changed file went to JavaScript');
      assert.equal(sha(await fs.readFile(f(11))), sha(files[11]!));

      // Another mount changes f9 (read natively above) and commits; this one reloads: the new bytes,
      // never the old layout; the unchanged f10 is still opened natively.
      const dB = await start(mntW);
      const newer = randomBytes(70_000);
      await fs.writeFile(path.join(mntW, 'd', 'f9'), newer);
      await controlRequest(mntW, 'commit');
      await dB.stop();
      await controlRequest(mnt, 'reload');
      assert.equal(sha(await fs.readFile(f(9))), sha(newer), 'the reloaded bytes');
      const s4 = await status(mnt);
      assert.equal(sha(await fs.readFile(f(10))), sha(files[10]!));
      assert.equal((await status(mnt)).nativeReads!.nativeOpens, s4.nativeReads!.nativeOpens + 1, 'f10 opened natively');
    } finally {
      await d.stop();
    }
  });

  it('opens files natively that are opened by name without a listing, once their directory was', async () => {
    // A reader that opens paths it already knows (no readdir): each file's LOOKUP comes just
    // before its OPEN, so the directory's registration at the first open knew none of them.
    const files = Array.from({ length: 6 }, () => randomBytes(20_000));
    const { mnt, start } = await committedFiles('byname', inDir(files), { env });
    const d = await start();
    const f = (i: number): string => path.join(mnt, 'd', `f${i}`);
    try {
      assert.equal(sha(await fs.readFile(f(0))), sha(files[0]!)); // through JavaScript: the directory is registered
      await until('the directory registered', async () => ((await status(mnt)).nativeReads?.layoutBytes ?? 0) > 0);
      await new Promise((r) => setTimeout(r, 100)); // the registration runs after the open's answer
      const s0 = await status(mnt);
      for (let i = 1; i < 6; i++) assert.equal(sha(await fs.readFile(f(i))), sha(files[i]!), `f${i}`);
      const s1 = await status(mnt);
      assert.equal(s1.nativeReads!.nativeOpens - s0.nativeReads!.nativeOpens, 5, 'five opens answered natively');
      assert.equal(jsOps(s1), jsOps(s0), 'no OPEN or RELEASE reached JavaScript');
    } finally {
      await d.stop();
    }
  });
});
