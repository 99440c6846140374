/**
 * Native cached reads (native/nread.c, src/fuse/lowlevel-nread.ts) through real native mounts of a
 * file store: reads answered on the addon's threads return the file's bytes; a damaged host chunk
 * cache never yields wrong bytes (while a natively served file is open, and in a new mount that
 * loads from the damaged cache); a write through the mount to a file open for reading, and a
 * reload that changed a file, stop native reads of the old bytes. Skipped without the addon.
 */
import { testHome } from '../helpers/env.js';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { controlRequest } from '../../src/fuse/control.js';
import { loadNative } from '../../src/fuse/lowlevel.js';
import { cleanupAll, q, shOk, startFileDaemon, tmpDir } from '../helpers/mount.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const env = { CAIRN_FUSE_BINDING: 'native' };

interface Nread {
  served: number;
  servedBytes: number;
  misses: number;
  puts: number;
}
async function nread(mnt: string): Promise<Nread> {
  const st = (await controlRequest(mnt, 'status')) as { binding: string; nativeReads: Nread | null };
  assert.equal(st.binding, 'native');
  assert.ok(st.nativeReads, 'native reads are on by default');
  return st.nativeReads;
}

/** sha256 of a file read through the mount after its pages were dropped from the page cache. */
async function fresh(file: string): Promise<string> {
  const py = `import os,hashlib,sys
fd=os.open(sys.argv[1],os.O_RDONLY); os.posix_fadvise(fd,0,0,os.POSIX_FADV_DONTNEED)
h=hashlib.sha256()
while True:
  b=os.read(fd,1<<20)
  if not b: break
  h.update(b)
print(h.hexdigest())`;
  return (await shOk(`python3 -c ${q(py)} ${q(file)}`)).trim();
}

/**
 * A reader that keeps `file` open: each line on stdin ("read") drops its pages and prints the
 * sha256 of the whole file read through the same descriptor.
 */
function holder(file: string): { proc: ChildProcess; hash(): Promise<string> } {
  const py = `import os,hashlib,sys
fd=os.open(sys.argv[1],os.O_RDONLY)
print('open',flush=True)
for line in sys.stdin:
  os.posix_fadvise(fd,0,0,os.POSIX_FADV_DONTNEED)
  h=hashlib.sha256(); off=0
  while True:
    b=os.pread(fd,1<<20,off)
    if not b: break
    h.update(b); off+=len(b)
  print(h.hexdigest(),flush=True)`;
  const proc = spawn('python3', ['-c', py, file], { stdio: ['pipe', 'pipe', 'inherit'] });
  proc.stdout!.setEncoding('utf8');
  let buf = '';
  const waiters: ((l: string) => void)[] = [];
  proc.stdout!.on('data', (c: string) => {
    buf += c;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      waiters.shift()?.(line);
    }
  });
  const next = (): Promise<string> => new Promise((r) => waiters.push(r));
  const opened = next();
  return {
    proc,
    async hash() {
      await opened;
      const l = next();
      proc.stdin!.write('read\n');
      return l;
    },
  };
}

async function corruptCache(): Promise<number> {
  const dir = path.join(testHome, 'cache');
  let n = 0;
  for (const sub of await fs.readdir(dir).catch(() => [] as string[])) {
    if (sub === 'leases' || sub.length !== 2) continue;
    for (const name of await fs.readdir(path.join(dir, sub))) {
      if (name.startsWith('.')) continue;
      const p = path.join(dir, sub, name);
      const b = await fs.readFile(p);
      for (let i = 0; i < b.length; i += 4096) b[i] ^= 0xff;
      await fs.writeFile(p, b);
      n++;
    }
  }
  return n;
}

describe('native cached reads', { skip: loadNative() ? false : 'native addon not built' }, () => {
  after(() => cleanupAll());

  it('serves committed files from verified chunks, never from a damaged cache, and drops old bytes on write and reload', async () => {
    const base = await tmpDir();
    const mnt = path.join(base, 'mnt');
    const mntB = path.join(base, 'mntB');
    const storeDir = path.join(base, 'store');
    const start = startFileDaemon(() => ({}), env);
    const big = randomBytes(12 << 20);
    const small = randomBytes(64 << 10);
    // Write and commit through a first mount, then read through a new one (committed, unchanged files).
    // (Another mount point: a mount's own session keeps its written files staged, read from local disk.)
    const dW = await start({ mountpoint: mntB, volume: 'nr', storeDir });
    await fs.writeFile(path.join(mntB, 'big.bin'), big);
    await fs.writeFile(path.join(mntB, 'small.bin'), small);
    await fs.writeFile(path.join(mntB, 'w.bin'), small);
    await controlRequest(mntB, 'commit');
    await dW.stop();

    let d = await start({ mountpoint: mnt, volume: 'nr', storeDir });
    let h: ReturnType<typeof holder> | undefined;
    try {
      // 1. The bytes are right, and reads were answered natively.
      assert.equal(await fresh(path.join(mnt, 'big.bin')), sha(big));
      assert.equal(await fresh(path.join(mnt, 'small.bin')), sha(small));
      const s1 = await nread(mnt);
      assert.ok(s1.served > 0 && s1.servedBytes > 0, `native reads served: ${JSON.stringify(s1)}`);
      // A small file's chunks are loaded at open: none of its reads reach JavaScript.
      const before = await nread(mnt);
      assert.equal(await fresh(path.join(mnt, 'small.bin')), sha(small));
      const after1 = await nread(mnt);
      assert.ok(after1.served > before.served, 'the small file was read natively');
      assert.equal(after1.misses, before.misses, 'and never missed');

      // 2. Damage every host cache file while the big file is open and natively served.
      h = holder(path.join(mnt, 'big.bin'));
      assert.equal(await h.hash(), sha(big));
      assert.ok((await corruptCache()) > 0, 'the host cache holds the chunks');
      const s2 = await nread(mnt);
      assert.equal(await h.hash(), sha(big));
      assert.ok((await nread(mnt)).served > s2.served, 'read natively after the damage');
      h.proc.stdin!.end();
      await new Promise((r) => h!.proc.on('exit', r));
      h = undefined;
      await d.stop();
      // A new mount loads its chunks from the damaged cache: verification refuses them, the store has them.
      await corruptCache();
      d = await start({ mountpoint: mnt, volume: 'nr', storeDir });
      assert.equal(await fresh(path.join(mnt, 'big.bin')), sha(big));
      assert.equal(await fresh(path.join(mnt, 'small.bin')), sha(small));
      assert.ok((await nread(mnt)).served > 0);

      // 3. A write through the mount to a file open for reading: the reader sees the new bytes.
      h = holder(path.join(mnt, 'w.bin'));
      assert.equal(await h.hash(), sha(small));
      const w = Buffer.from(small);
      w.fill(7, 1000);
      await shOk(
        `python3 -c ${q(`import os,sys
fd=os.open(sys.argv[1],os.O_WRONLY); os.pwrite(fd,bytes([7])*(65536-1000),1000); os.close(fd)`)} ${q(path.join(mnt, 'w.bin'))}`,
      );
      assert.equal(await h.hash(), sha(w));
      h.proc.stdin!.end();
      await new Promise((r) => h!.proc.on('exit', r));
      h = undefined;
      await controlRequest(mnt, 'commit');

      // 4. Another mount changes big.bin and commits; a reload of this one shows the new bytes.
      assert.equal(await fresh(path.join(mnt, 'big.bin')), sha(big));
      const dB = await start({ mountpoint: mntB, volume: 'nr', storeDir });
      const big2 = Buffer.from(big);
      big2.fill(1, 5 << 20, 6 << 20);
      await fs.writeFile(path.join(mntB, 'big.bin'), big2);
      await controlRequest(mntB, 'commit');
      await dB.stop();
      await controlRequest(mnt, 'reload');
      assert.equal(await fresh(path.join(mnt, 'big.bin')), sha(big2));
      assert.equal(sha(await fs.readFile(path.join(mnt, 'big.bin'))), sha(big2));
    } finally {
      h?.proc.kill('SIGKILL');
      await d.stop();
    }
  });

  it('opens of cold small files fetch their pack blocks, not one GET per file', async () => {
    const base = await tmpDir();
    const [mnt, mntW] = [path.join(base, 'mnt'), path.join(base, 'mntW')];
    const storeDir = path.join(base, 'store');
    const start = startFileDaemon(() => ({}), env);
    const files = Array.from({ length: 40 }, () => randomBytes(16 << 10));
    const dW = await start({ mountpoint: mntW, volume: 'cold', storeDir });
    await fs.mkdir(path.join(mntW, 'd'));
    for (const [i, b] of files.entries()) await fs.writeFile(path.join(mntW, 'd', `f${i}`), b);
    await controlRequest(mntW, 'commit'); // one commit: the 40 files share a pack
    await dW.stop();
    await fs.rm(path.join(testHome, 'cache'), { recursive: true, force: true });
    const d = await start({ mountpoint: mnt, volume: 'cold', storeDir });
    try {
      for (const [i, b] of files.entries()) assert.equal(sha(await fs.readFile(path.join(mnt, 'd', `f${i}`))), sha(b), `f${i}`);
      const st = (await controlRequest(mnt, 'status')) as { metrics: Record<string, number> };
      const gets = st.metrics.cairn_store_gets_total ?? 0;
      assert.ok(gets > 0 && gets < files.length / 4, `${gets} GETs for ${files.length} cold small files`);
    } finally {
      await d.stop();
    }
  });
});
