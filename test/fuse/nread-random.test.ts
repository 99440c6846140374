/**
 * Native random reads of the host cache (native/nread.c, ncache.c, ntree.c): a random reader's
 * READ loads only the blocks it needs, each verified against the chunk's outboard, itself verified
 * against the chunk's name. Through real native mounts of a file store: a first random reader loads
 * whole chunks (their verification yields the outboards, written to the host cache as `<hash>.ob`);
 * a reader in a new mount then loads verified blocks, hashing a fraction of the bytes; one flipped
 * byte in a chunk entry or in an outboard never yields wrong bytes (counted, removed, read right).
 * A cold random reader (served by JavaScript) leaves the outboards of its chunks behind (computed
 * by the addon off the JavaScript thread), so a new mount loads only blocks; so does `cairn volume
 * warmup` (JavaScript computes them). Skipped without the addon.
 */
import { testHome } from '../helpers/env.js';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { controlRequest } from '../../src/fuse/control.js';
import { loadNative } from '../../src/fuse/lowlevel.js';
import type { NreadStats } from '../../src/fuse/lowlevel-addon.js';
import { cleanupAll, committedFiles, freshSha, q, shOk } from '../helpers/mount.js';
import { cliWithStore } from '../cli/harness.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const env = { CAIRN_FUSE_BINDING: 'native' };
const READ = 128 << 10;

async function stats(mnt: string): Promise<Required<NreadStats>> {
  const st = (await controlRequest(mnt, 'status')) as { nativeReads: Required<NreadStats> | null };
  assert.ok(st.nativeReads);
  return st.nativeReads;
}

/** sha256 of the bytes of `reads` (offset, length) read in that order, each after dropping the file's pages. */
async function readAt(file: string, reads: number[]): Promise<string> {
  const py = `import os,hashlib,sys
fd=os.open(sys.argv[1],os.O_RDONLY); h=hashlib.sha256()
for off in map(int, sys.argv[2:]):
  os.posix_fadvise(fd,0,0,os.POSIX_FADV_DONTNEED)
  h.update(os.pread(fd,${READ},off))
print(h.hexdigest())`;
  return (await shOk(`python3 -c ${q(py)} ${q(file)} ${reads.join(' ')}`)).trim();
}

/** Chunk entries of the host cache, and their outboards. */
async function entries(): Promise<{ chunks: string[]; outboards: string[] }> {
  const dir = path.join(testHome, 'cache');
  const out = { chunks: [] as string[], outboards: [] as string[] };
  for (const sub of await fs.readdir(dir).catch(() => [] as string[])) {
    if (sub.length !== 2) continue;
    for (const name of await fs.readdir(path.join(dir, sub)).catch(() => [] as string[])) {
      if (/^[0-9a-f]{64}$/.test(name)) out.chunks.push(path.join(dir, sub, name));
      if (/^[0-9a-f]{64}\.ob$/.test(name)) out.outboards.push(path.join(dir, sub, name));
    }
  }
  return out;
}

/**
 * Waits until the host cache holds at least 5 outboards and no more come for 600 ms (they are
 * computed on libuv's pool, off the JavaScript thread: on a busy host one can take longer than a
 * single 150 ms look — a CI run's second mount then hashed a whole chunk whose outboard was late).
 */
async function settledOutboards(): Promise<void> {
  let seen = -1;
  let same = 0;
  for (let i = 0; i < 200; i++) {
    const n = (await entries()).outboards.length;
    same = n === seen ? same + 1 : 0;
    if (n >= 5 && same >= 4) return;
    seen = n;
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** Ten 128 KiB reads at offsets at least 8 MiB apart (many chunks from the last read's: a random reader) in a 24 MiB file, and the sha256 of what they read. */
function randomReads(big: Buffer, skew: number): { reads: number[]; want: string } {
  const reads = [20.3, 2.6, 12.1, 22.05, 4.05, 16.4, 0.8, 9.3, 23.3, 6.2].map((m) => Math.floor(m * (1 << 20)) + skew);
  return { reads, want: sha(Buffer.concat(reads.map((o) => big.subarray(o, o + READ)))) };
}

/**
 * Reads `reads` of `file` through a new mount (`mnt`) whose host cache holds the chunks and their
 * outboards: right bytes, verified blocks loaded (not whole chunks), nothing damaged.
 */
async function readsBlocksOnly(mnt: string, file: string, reads: number[], want: string): Promise<void> {
  assert.equal(await readAt(file, reads), want);
  const s = await stats(mnt);
  assert.ok(s.cachePartLoads >= 5 && s.cacheOutboardLoads >= 5, JSON.stringify(s));
  // Whole chunks would be ~8 bytes hashed per byte served (1 MiB per 128 KiB); blocks ~1.3.
  assert.ok(s.cacheHashed <= 3 * s.servedBytes, `hashed ${s.cacheHashed} bytes for ${s.servedBytes} served`);
  assert.equal(s.cacheCorrupt, 0);
}

describe('native random reads', { skip: loadNative() ? false : 'native addon not built' }, () => {
  after(() => cleanupAll());

  it('a sequential reader verifies whole chunks and computes or writes no outboards', async () => {
    // Whether a READ is sequential is a heuristic (READs in flight reach the workers out of order):
    // one READ in a few hundred may still look random, so each mount may compute one chunk's
    // outboard (at most 4 KiB of CVs: a 4 MiB chunk) and load parts of one chunk. Before, every
    // chunk's outboard was computed (~1 KiB per MiB: ~24 KiB here).
    const ONE = 4096;
    const big = randomBytes(24 << 20);
    const { mnt, start } = await committedFiles('seq', { '/big.bin': big }, { env, emptyCache: true });
    const file = path.join(mnt, 'big.bin');
    let d = await start();
    try {
      assert.equal(await freshSha(file), sha(big)); // cold: JavaScript fetches the chunks and caches them
      let bytes = 0;
      for (let i = 0; i < 200 && bytes < big.length; i++) {
        bytes = (await Promise.all((await entries()).chunks.map((c) => fs.stat(c)))).reduce((n, st) => n + st.size, 0);
        if (bytes < big.length) await new Promise((r) => setTimeout(r, 50));
      }
      const cold = await stats(mnt);
      // (JavaScript, which serves the cold READs, sees them more out of order still: two chunks at most.)
      assert.ok(cold.outboardBytes <= 2 * ONE && cold.cacheOutboardPuts <= 2, `no outboards: ${JSON.stringify(cold)}`);
      await d.stop();
      assert.equal(bytes, big.length, 'the host cache holds the file');
      for (let round = 0; round < 2; round++) {
        d = await start(); // warm, a new mount: every chunk loaded whole from the host cache and verified
        assert.equal(await freshSha(file), sha(big));
        const s = await stats(mnt);
        assert.equal(s.servedBytes, big.length, `served natively: ${JSON.stringify(s)}`);
        // Each chunk hashed once, whole (and at most the blocks of one chunk besides).
        assert.ok(s.cacheHashed >= big.length && s.cacheHashed <= big.length + (4 << 20), `hashed: ${JSON.stringify(s)}`);
        assert.ok(s.outboardBytes <= ONE && s.cacheOutboardPuts <= 1 && s.cachePartLoads <= 1, `no outboards: ${JSON.stringify(s)}`);
        await d.stop();
        assert.ok((await entries()).outboards.length <= round + 3, 'no `.ob` files written (but one or two per mount at most)');
      }
    } finally {
      await d.stop();
    }
  });

  it('load verified blocks of a chunk, never wrong bytes from a damaged entry or outboard', async () => {
    const big = randomBytes(24 << 20);
    const { mnt, start } = await committedFiles('rand', { '/big.bin': big }, { env, emptyCache: true });
    const { reads, want } = randomReads(big, 4321);
    const file = path.join(mnt, 'big.bin');

    // Cold: JavaScript fetches the chunks and writes them to the host cache.
    let d = await start();
    try {
      assert.equal(sha(await fs.readFile(file)), sha(big));
      for (let i = 0; i < 200 && (await entries()).chunks.length < 15; i++) await new Promise((r) => setTimeout(r, 50));
      await d.stop();
      const { chunks } = await entries();
      assert.ok(chunks.length >= 15, `${chunks.length} chunks cached`);

      // 1. A random reader in a new mount: whole chunks loaded and verified; their outboards written.
      d = await start();
      assert.equal(await readAt(file, reads), want);
      const s1 = await stats(mnt);
      assert.ok(s1.cacheLoads > 0 && s1.cacheOutboardPuts > 0, JSON.stringify(s1));
      await d.stop();
      assert.ok((await entries()).outboards.length > 0, 'outboards in the host cache');

      // 2. The same reads in a new mount: blocks loaded and verified against the outboards, a fraction hashed.
      d = await start();
      assert.equal(await readAt(file, reads), want);
      const s2 = await stats(mnt);
      assert.ok(s2.partServed > 0 && s2.cachePartLoads > 0 && s2.cacheOutboardLoads > 0, JSON.stringify(s2));
      assert.equal(s2.cacheCorrupt, 0);
      assert.ok(s2.cacheHashed * 2 < s1.cacheHashed, `hashed ${s2.cacheHashed} bytes with outboards, ${s1.cacheHashed} without`);
      assert.ok(s2.cacheHashed <= 2 * s2.servedBytes, `hashed ${s2.cacheHashed} bytes for ${s2.servedBytes} served`);
      await d.stop();

      // 3. One flipped byte in the block the first read needs: the right bytes all the same; counted.
      const at = reads[0]! + 100;
      let victim: string | undefined;
      let start0 = 0;
      for (const c of chunks) {
        const b = await fs.readFile(c);
        const i = big.indexOf(b.subarray(0, 4096));
        if (i >= 0 && i <= at && at < i + b.length) [victim, start0] = [c, i];
      }
      assert.ok(victim);
      const bad = await fs.readFile(victim);
      bad[at - start0]! ^= 0x01;
      await fs.writeFile(victim, bad);
      d = await start();
      assert.equal(await readAt(file, reads), want);
      const s3 = await stats(mnt);
      assert.ok(s3.cacheCorrupt >= 1, `the damaged block was counted: ${JSON.stringify(s3)}`);
      await d.stop();

      // 4. A damaged outboard (one CV byte flipped): refused against the chunk's name; the right bytes.
      const { outboards } = await entries();
      for (const ob of outboards) {
        const b = await fs.readFile(ob);
        b[b.length - 1]! ^= 0x01;
        await fs.writeFile(ob, b);
      }
      d = await start();
      assert.equal(await readAt(file, reads), want);
      const s4 = await stats(mnt);
      assert.ok(s4.cacheCorrupt >= 1 && s4.cacheOutboardLoads === 0, `damaged outboards refused: ${JSON.stringify(s4)}`);
    } finally {
      await d.stop();
    }
  });

  it("honours the outboards JavaScript's partial reads wrote, and refuses a damaged one", async () => {
    const big = randomBytes(24 << 20);
    // Packs with outboards (opt-in), of 64 KiB blocks: not the addon's own 32 KiB.
    const { mnt, start } = await committedFiles(
      'jsob',
      { '/big.bin': big },
      { env: { ...env, CAIRN_PACK_OUTBOARDS: '65536' }, emptyCache: true },
    );
    const { reads, want } = randomReads(big, 999);
    const file = path.join(mnt, 'big.bin');
    const inJs = { CAIRN_FUSE_NREAD_BYTES: '0' }; // reads in JavaScript: the addon writes no outboard
    const outboards = async (): Promise<Map<string, Buffer>> =>
      new Map(await Promise.all((await entries()).outboards.map(async (f) => [f, await fs.readFile(f)] as const)));
    // 1. Cold random reads in JavaScript: its partial reads fetch verified blocks and write the chunks' outboards.
    let d = await start(mnt, inJs);
    try {
      assert.equal(await readAt(file, reads), want);
      await settledOutboards();
      const st = (await controlRequest(mnt, 'status')) as { nativeReads: unknown };
      assert.equal(st.nativeReads, null, 'no native reads in this mount');
      await d.stop();
      const written = await outboards();
      assert.ok(written.size >= 5, `outboards written by JavaScript: ${written.size}`);
      for (const b of written.values()) assert.equal(b.readUInt32LE(0), 65536, "the pack's block size");
      // 2. The whole chunks into the host cache: a sequential read, in JavaScript too.
      d = await start(mnt, inJs);
      assert.equal(await freshSha(file), sha(big));
      await d.stop();
      assert.deepEqual(await outboards(), written, 'the outboards are the ones JavaScript wrote');

      // 3. Native random reads through a new mount: blocks verified against JavaScript's outboards; none written.
      d = await start();
      assert.equal(await readAt(file, reads), want);
      const s = await stats(mnt);
      assert.ok(s.cacheOutboardLoads >= 5 && s.cachePartLoads >= 5 && s.partServed >= 5, JSON.stringify(s));
      assert.deepEqual([s.cacheOutboardPuts, s.cacheCorrupt], [0, 0], JSON.stringify(s));
      assert.ok(s.cacheHashed <= 3 * s.servedBytes, `hashed ${s.cacheHashed} bytes for ${s.servedBytes} served`);
      await d.stop();

      // 4. One CV byte flipped in each of JavaScript's outboards: refused against the chunk's name, never trusted.
      for (const [f, b] of written) {
        const bad = Buffer.from(b);
        bad[bad.length - 1]! ^= 0x01;
        await fs.writeFile(f, bad);
      }
      d = await start();
      assert.equal(await readAt(file, reads), want);
      const s4 = await stats(mnt);
      assert.ok(s4.cacheCorrupt >= 1 && s4.cacheOutboardLoads === 0, `damaged outboards refused: ${JSON.stringify(s4)}`);
    } finally {
      await d.stop();
    }
  });

  it('a cold random reader leaves outboards behind: the next mount loads only blocks from its first read', async () => {
    const big = randomBytes(24 << 20);
    const { mnt, start } = await committedFiles('cold', { '/big.bin': big }, { env, emptyCache: true });
    const { reads, want } = randomReads(big, 777);
    const file = path.join(mnt, 'big.bin');
    let d = await start();
    try {
      assert.equal(await readAt(file, reads), want); // cold: JavaScript fetches, verifies, caches; the addon computes outboards
      await settledOutboards();
      await d.stop();
      assert.ok((await entries()).outboards.length >= 5, 'outboards of the cold random reader');
      d = await start();
      await readsBlocksOnly(mnt, file, reads, want);
    } finally {
      await d.stop();
    }
  });

  it('`cairn volume warmup` leaves outboards too: a random reader of a warmed file loads only blocks from its first read', async () => {
    const big = randomBytes(24 << 20);
    const { mnt, start, storeDir, volume } = await committedFiles('warmed', { '/big.bin': big }, { env, emptyCache: true });
    const { reads, want } = randomReads(big, 2345);
    await cliWithStore(() => `file://${storeDir}`).ok('volume', 'warmup', volume, '/big.bin');
    const { chunks, outboards } = await entries();
    // (A chunk of one block, 32 KiB or less, needs none.)
    assert.ok(chunks.length >= 15 && outboards.length >= chunks.length - 1, `${chunks.length} chunks, ${outboards.length} outboards`);
    const d = await start();
    try {
      await readsBlocksOnly(mnt, path.join(mnt, 'big.bin'), reads, want);
    } finally {
      await d.stop();
    }
  });
});
