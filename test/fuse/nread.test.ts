/**
 * Native cached reads (native/nread.c, native/ncache.c, src/fuse/lowlevel-nread.ts) through real
 * native mounts of a file store: reads answered on the addon's threads return the file's bytes; a
 * warm read through a new mount loads its chunks from the host cache on the addon's threads,
 * verified by its C BLAKE3, without a READ or a chunk load in JavaScript; a damaged host cache
 * entry (one flipped byte, or every entry) never yields wrong bytes (while a natively served file
 * is open, and in a new mount that loads from the damaged cache): it is counted, removed, and the
 * read falls back to JavaScript, as does one whose entry is missing; a write through the mount to a
 * file open for reading, and a reload that changed a file, stop native reads of the old bytes.
 * Skipped without the addon.
 */
import { testHome } from '../helpers/env.js';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { hashChunk } from '../../src/chunks/hash.js';
import { controlRequest } from '../../src/fuse/control.js';
import { loadNative } from '../../src/fuse/lowlevel.js';
import { cleanupAll, committedFiles, freshSha, q, shOk } from '../helpers/mount.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const env = { CAIRN_FUSE_BINDING: 'native' };

interface Nread {
  served: number;
  servedBytes: number;
  misses: number;
  puts: number;
  cacheOn: boolean;
  cacheLoads: number;
  cacheMisses: number;
  cacheCorrupt: number;
  cachePartLoads?: number;
}
async function nread(mnt: string): Promise<Nread> {
  const st = (await controlRequest(mnt, 'status')) as { binding: string; nativeReads: Nread | null };
  assert.equal(st.binding, 'native');
  assert.ok(st.nativeReads, 'native reads are on by default');
  return st.nativeReads;
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

/** The host cache's chunk entries (not side entries, temp files or leases). */
async function cacheEntries(): Promise<{ file: string; name: string; size: number }[]> {
  const dir = path.join(testHome, 'cache');
  const out: { file: string; name: string; size: number }[] = [];
  for (const sub of await fs.readdir(dir).catch(() => [] as string[])) {
    if (sub.length !== 2) continue;
    for (const name of await fs.readdir(path.join(dir, sub)).catch(() => [] as string[])) {
      if (!/^[0-9a-f]{64}$/.test(name)) continue;
      const file = path.join(dir, sub, name);
      const st = await fs.stat(file).catch(() => undefined);
      if (st) out.push({ file, name, size: st.size });
    }
  }
  return out;
}

/** The figures a test compares around a read: native reads, and JavaScript's READs and chunk loads. */
async function figures(mnt: string): Promise<{ n: Nread; jsReads: number; cacheHits: number; cacheMisses: number; gets: number }> {
  const st = (await controlRequest(mnt, 'status')) as { nativeReads: Nread | null; metrics: Record<string, number> };
  assert.ok(st.nativeReads);
  const m = st.metrics;
  return {
    n: st.nativeReads,
    jsReads: m['cairn_fuse_ops_total{op="read"}'] ?? 0,
    cacheHits: m.cairn_cache_hits_total ?? 0,
    cacheMisses: m.cairn_cache_misses_total ?? 0,
    gets: m.cairn_store_gets_total ?? 0,
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
    const big = randomBytes(12 << 20);
    const small = randomBytes(64 << 10);
    // Written and committed through a first mount, read through a new one (committed, unchanged files).
    const { mnt, mntW: mntB, start } = await committedFiles('nr', { '/big.bin': big, '/small.bin': small, '/w.bin': small }, { env });

    let d = await start();
    let h: ReturnType<typeof holder> | undefined;
    try {
      // 1. The bytes are right, and reads were answered natively (the first read is cold: JavaScript
      // fetches the chunks, verifies them and hands them over; the second is served from them).
      for (let round = 0; round < 2; round++) {
        assert.equal(await freshSha(path.join(mnt, 'big.bin')), sha(big));
        assert.equal(await freshSha(path.join(mnt, 'small.bin')), sha(small));
      }
      const s1 = await nread(mnt);
      assert.ok(s1.served > 0 && s1.servedBytes > 0, `native reads served: ${JSON.stringify(s1)}`);
      // A small file's chunks are loaded at open: none of its reads reach JavaScript.
      const before = await nread(mnt);
      assert.equal(await freshSha(path.join(mnt, 'small.bin')), sha(small));
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
      d = await start();
      assert.equal(await freshSha(path.join(mnt, 'big.bin')), sha(big));
      assert.equal(await freshSha(path.join(mnt, 'small.bin')), sha(small));
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
      assert.equal(await freshSha(path.join(mnt, 'big.bin')), sha(big));
      const dB = await start(mntB);
      const big2 = Buffer.from(big);
      big2.fill(1, 5 << 20, 6 << 20);
      await fs.writeFile(path.join(mntB, 'big.bin'), big2);
      await controlRequest(mntB, 'commit');
      await dB.stop();
      await controlRequest(mnt, 'reload');
      assert.equal(await freshSha(path.join(mnt, 'big.bin')), sha(big2));
      assert.equal(sha(await fs.readFile(path.join(mnt, 'big.bin'))), sha(big2));
    } finally {
      h?.proc.kill('SIGKILL');
      await d.stop();
    }
  });

  it('opens of cold small files fetch their pack blocks, not one GET per file', async () => {
    const files = Array.from({ length: 40 }, () => randomBytes(16 << 10));
    // One commit: the 40 files share a pack.
    const inDir = Object.fromEntries(files.map((b, i) => [`/d/f${i}`, b]));
    const { mnt, start } = await committedFiles('cold', inDir, { env, emptyCache: true });
    const d = await start();
    try {
      for (const [i, b] of files.entries()) assert.equal(sha(await fs.readFile(path.join(mnt, 'd', `f${i}`))), sha(b), `f${i}`);
      const st = (await controlRequest(mnt, 'status')) as { metrics: Record<string, number> };
      const gets = st.metrics.cairn_store_gets_total ?? 0;
      assert.ok(gets > 0 && gets < files.length / 4, `${gets} GETs for ${files.length} cold small files`);
    } finally {
      await d.stop();
    }
  });

  it('warm reads through a new mount load verified chunks from the host cache natively; a damaged or missing entry falls back', async () => {
    const big = randomBytes(6 << 20);
    const small = randomBytes(64 << 10);
    const { mnt, start } = await committedFiles('warm', { '/big.bin': big, '/small.bin': small }, { env, emptyCache: true });
    const readBoth = async (): Promise<void> => {
      assert.equal(await freshSha(path.join(mnt, 'big.bin')), sha(big));
      assert.equal(await freshSha(path.join(mnt, 'small.bin')), sha(small));
    };
    // A first mount reads the files cold: JavaScript fetches the chunks and writes them to the host cache.
    let d = await start();
    try {
      await readBoth();
      const want = big.length + small.length;
      for (let i = 0; i < 200 && (await cacheEntries()).reduce((n, e) => n + e.size, 0) < want; i++)
        await new Promise((r) => setTimeout(r, 50));
      await d.stop();
      const entries = await cacheEntries();
      assert.equal(
        entries.reduce((n, e) => n + e.size, 0),
        want,
      );

      // 1. Warm, through a new mount: every READ answered by the addon, every chunk loaded from the
      // host cache and verified there; JavaScript served no READ and loaded no chunk.
      d = await start();
      const f0 = await figures(mnt);
      assert.equal(f0.n.cacheOn, true, 'the addon reads the host cache (its C BLAKE3 passed its self-test)');
      await readBoth();
      const f1 = await figures(mnt);
      assert.ok(f1.n.served > f0.n.served, 'read natively');
      assert.equal(f1.n.cacheLoads - f0.n.cacheLoads, entries.length, 'each chunk loaded once from the host cache');
      assert.equal(f1.n.misses, f0.n.misses, 'no READ went to JavaScript');
      assert.equal(f1.jsReads, f0.jsReads, 'JavaScript answered no READ');
      assert.deepEqual([f1.cacheHits, f1.cacheMisses, f1.gets], [f0.cacheHits, f0.cacheMisses, f0.gets], 'JavaScript loaded no chunk');
      assert.equal(f1.n.cacheCorrupt, 0);
      await d.stop();

      // 2. One flipped byte in one entry (the big file's first chunk: the first READ needs it, before
      // any look-ahead): the right bytes all the same; the entry counted and removed (JavaScript
      // fetched the chunk from the store instead, and may have cached it again, whole).
      let victim: (typeof entries)[number] | undefined;
      for (const e of entries) if ((await fs.readFile(e.file)).equals(big.subarray(0, e.size))) victim = e;
      assert.ok(victim && victim.size < big.length);
      const bad = await fs.readFile(victim.file);
      bad[bad.length >> 1]! ^= 0x01;
      await fs.writeFile(victim.file, bad);
      d = await start();
      await readBoth();
      const f2 = await figures(mnt);
      assert.equal(f2.n.cacheCorrupt, 1, 'the damaged entry was counted');
      assert.ok(f2.n.misses >= 1 && f2.jsReads >= 1, 'its READ fell back to JavaScript');
      // Every other chunk came from the host cache: loaded by the addon (whole, or the blocks a READ
      // needed when it looked random: a sequential reader's READs may reach the workers out of order
      // on a loaded machine), or by JavaScript's look-ahead after the fallback, which loads the next
      // chunks into the addon's store and may get there first.
      const fromCache2 = f2.n.cacheLoads + (f2.n.cachePartLoads ?? 0) + f2.cacheHits;
      assert.ok(
        f2.n.cacheLoads <= entries.length - 1 && fromCache2 >= entries.length - 1,
        `every other chunk came from the host cache: ${JSON.stringify({ ...f2.n, jsCacheHits: f2.cacheHits })}`,
      );
      const again = await fs.readFile(victim.file).catch(() => undefined);
      assert.ok(again === undefined || hashChunk(again) === victim.name, 'the damaged entry is gone (or whole again)');
      await d.stop();

      // 3. A missing entry: a miss, read through JavaScript.
      await fs.rm(victim.file, { force: true });
      d = await start();
      await readBoth();
      const f3 = await figures(mnt);
      assert.ok(f3.n.cacheMisses >= 1 && f3.n.misses >= 1, `the missing entry fell back: ${JSON.stringify(f3.n)}`);
      assert.equal(f3.n.cacheCorrupt, 0);
      assert.ok(
        f3.n.cacheLoads <= entries.length - 1 && f3.n.cacheLoads + (f3.n.cachePartLoads ?? 0) + f3.cacheHits >= entries.length - 1,
        JSON.stringify({ ...f3.n, jsCacheHits: f3.cacheHits }),
      );
    } finally {
      await d.stop();
    }
  });
});
