/**
 * The benchmark's readers verify what they read (bench/verify.ts): the byte count of every file
 * and the content of sampled ranges. A stream split at any points checks out; a short, long or
 * altered file fails; and in the read matrix (bench/reads.ts, real reader processes on local
 * files) a reader that gets short data makes the run record a failure, not a figure.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'node:test';
import { writeRandomFile, writeSmallFiles, smallNames, type Dataset } from '../../bench/dataset.js';
import { cleanup, MiB } from '../../bench/harness.js';
import { readBench } from '../../bench/reads.js';
import { fileCheck, sampleRanges, StreamCheck, type FileCheck } from '../../bench/verify.js';

/** Feeds `data` to a StreamCheck in pieces of the given sizes (cycled), then ends it. */
function stream(name: string, check: FileCheck, data: Buffer, pieces: number[]): void {
  const v = new StreamCheck(name, check);
  for (let off = 0, i = 0; off < data.length; i++) {
    const n = Math.min(pieces[i % pieces.length]!, data.length - off);
    v.update(data.subarray(off, off + n));
    off += n;
  }
  v.end();
}

test('sampled ranges: the first 4 KiB of every MiB and the last 4 KiB, never overlapping', () => {
  assert.deepEqual(sampleRanges(0), []);
  assert.deepEqual(sampleRanges(100), [{ offset: 0, length: 100 }]);
  assert.deepEqual(sampleRanges(65536), [
    { offset: 0, length: 4096 },
    { offset: 61440, length: 4096 },
  ]);
  assert.deepEqual(sampleRanges(6000), [
    { offset: 0, length: 4096 },
    { offset: 4096, length: 1904 },
  ]);
  const big = sampleRanges(3 * MiB + 10);
  assert.deepEqual(
    big.map((r) => r.offset),
    [0, MiB, 2 * MiB, 3 * MiB],
  );
  assert.equal(big[3]!.length, 10);
});

test('StreamCheck: any split checks out; short, long and altered files fail', async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'cairn-bench-verify-'));
  try {
    const file = path.join(dir, 'f.bin');
    const data = randomBytes(2 * MiB + 5000);
    await fsp.writeFile(file, data);
    const check = await fileCheck(file);
    assert.equal(check.size, data.length);
    assert.equal(check.samples.length, 4);
    for (const pieces of [[data.length], [MiB], [4095, 1, 7], [128 * 1024], [1000, 3 * MiB]]) stream('f.bin', check, data, pieces);
    assert.throws(() => stream('f.bin', check, data.subarray(0, data.length - 1), [MiB]), /f\.bin: read \d+ bytes, expected \d+/);
    assert.throws(() => stream('f.bin', check, Buffer.concat([data, Buffer.from([0])]), [MiB]), /more than the expected/);
    for (const at of [0, MiB + 4095, data.length - 1]) {
      const bad = Buffer.from(data);
      bad[at]! ^= 1;
      assert.throws(() => stream('f.bin', check, bad, [4095, 1, 7]), /f\.bin: bytes \d+\.\.\d+ differ from the dataset/, `byte ${at}`);
    }
    // A file of the right size with the content of another (a swapped file) fails too.
    assert.throws(() => stream('f.bin', check, randomBytes(data.length), [MiB]), /differ from the dataset/);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('read matrix: a reader that gets a short file records a failure and no figure', { timeout: 120_000 }, async () => {
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'cairn-bench-verify-'));
  try {
    const localDir = path.join(work, 'local');
    const bigRel = 'big/big.bin';
    const smallRels = smallNames(20, 'small', true);
    await writeRandomFile(path.join(localDir, bigRel), 3 * MiB);
    await writeSmallFiles(localDir, smallRels, 16 * 1024);
    const checks: Record<string, FileCheck> = {};
    for (const r of [bigRel, ...smallRels]) checks[r] = await fileCheck(path.join(localDir, r));
    // After the checks are recorded, one small file loses its last byte (as a short read would).
    await fsp.truncate(path.join(localDir, smallRels[7]!), 16 * 1024 - 1);
    const ds = { bigBytes: 3 * MiB, smallCount: 20, smallBytes: 16 * 1024, localDir, bigRel, smallRels, checks } as Dataset;
    const logs: string[] = [];
    const { rows, failures } = await readBench(ds, {
      runs: () => 1,
      readers: { local: [1] },
      warm: {},
      smallConcurrency: 4,
      work,
      env: process.env,
      cacheDirs: {},
      sessionsDir: path.join(work, 'sessions'),
      log: (m) => logs.push(m),
    });
    const big = rows.find((r) => r.workload === 'big' && r.system === 'local');
    assert.ok(big && big.MiBps > 0, `the intact big file has its figure:\n${failures.join('\n')}`);
    assert.equal(rows.filter((r) => r.workload === 'small').length, 0, 'no figure from a short read');
    assert.equal(failures.length, 1, failures.join('\n'));
    assert.match(failures[0]!, /^small 1 reader\(s\) local cold: .*f000007\.bin: read 16383 bytes, expected 16384/);
  } finally {
    await cleanup();
    await fsp.rm(work, { recursive: true, force: true });
  }
});
