/**
 * Object-store throughput: put/get MiB/s for one large object (1 GiB; 64 MiB with --quick) and for
 * many small ones (10,000 × 16 KiB, 16 at a time; 1,000 with --quick), on the file store and on
 * s3rver (through the test harness, i.e. the SDK against a loopback server), next to a reference
 * measured in the same run: plain fs write+fsync / read of the same bytes on the same disk.
 *
 * Prints one JSON document on stdout. Reads are warm (page cache), as they would be right after
 * the writes; no cache is dropped.
 *
 * Usage: node dist/bench/store.js [--quick] [--only=file|s3|fs]
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import pLimit from 'p-limit';
import { openStore } from '../src/store/open.js';
import type { ObjectStore } from '../src/store/types.js';
import { startS3 } from '../test/helpers/s3server.js';

const MiB = 1024 * 1024;
const quick = process.argv.includes('--quick');
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
const BIG = quick ? 64 * MiB : 1024 * MiB;
const SMALL_COUNT = quick ? 1_000 : 10_000;
const SMALL_SIZE = 16 * 1024;
const CONCURRENCY = 16;

interface Row {
  backend: string;
  case: string;
  bytes: number;
  putSeconds: number;
  getSeconds: number;
  putMiBps: number;
  getMiBps: number;
}

function makeBig(): Buffer {
  const block = randomBytes(16 * MiB);
  const buf = Buffer.allocUnsafe(BIG);
  for (let off = 0; off < BIG; off += block.length) block.copy(buf, off, 0, Math.min(block.length, BIG - off));
  // Make every 16 MiB block distinct so no layer can deduplicate.
  for (let off = 0; off < BIG; off += block.length) buf.writeUInt32LE(off / block.length, off);
  return buf;
}

async function time(fn: () => Promise<void>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function row(backend: string, name: string, bytes: number, putSeconds: number, getSeconds: number): Row {
  const r = (s: number): number => Math.round((bytes / MiB / s) * 10) / 10;
  return {
    backend,
    case: name,
    bytes,
    putSeconds: +putSeconds.toFixed(3),
    getSeconds: +getSeconds.toFixed(3),
    putMiBps: r(putSeconds),
    getMiBps: r(getSeconds),
  };
}

const bigCase = `1 object x ${BIG / MiB} MiB`;
const smallCase = `${SMALL_COUNT} objects x ${SMALL_SIZE / 1024} KiB (concurrency ${CONCURRENCY})`;

async function benchStore(name: string, store: ObjectStore, big: Buffer, small: Buffer[]): Promise<Row[]> {
  const putBig = await time(() => store.put('bench/big', big));
  let got: Buffer | undefined;
  const getBig = await time(async () => {
    got = await store.get('bench/big');
  });
  if (!got || !got.equals(big)) throw new Error(`${name}: large object read back differs`);
  // eslint-disable-next-line no-useless-assignment -- frees the large object before the small-object runs
  got = undefined;
  await store.delete('bench/big');

  const limit = pLimit(CONCURRENCY);
  const key = (i: number): string => `bench/small/${String(i).padStart(6, '0')}`;
  const putSmall = await time(async () => {
    await Promise.all(small.map((b, i) => limit(() => store.put(key(i), b))));
  });
  let bad = 0;
  const getSmall = await time(async () => {
    await Promise.all(
      small.map((b, i) =>
        limit(async () => {
          if (!(await store.get(key(i))).equals(b)) bad++;
        }),
      ),
    );
  });
  if (bad) throw new Error(`${name}: ${bad} small objects read back differ`);
  await Promise.all(small.map((_, i) => limit(() => store.delete(key(i)))));
  return [row(name, bigCase, BIG, putBig, getBig), row(name, smallCase, SMALL_COUNT * SMALL_SIZE, putSmall, getSmall)];
}

/** Reference: the same bytes through plain fs (write + fsync each file, then read), on the same disk. */
async function benchFs(dir: string, big: Buffer, small: Buffer[]): Promise<Row[]> {
  const writeDurable = async (file: string, body: Buffer): Promise<void> => {
    const h = await fs.open(file, 'w');
    try {
      await h.writeFile(body);
      await h.sync();
    } finally {
      await h.close();
    }
  };
  await fs.mkdir(dir, { recursive: true });
  const bigFile = path.join(dir, 'big');
  const putBig = await time(() => writeDurable(bigFile, big));
  const getBig = await time(async () => {
    await fs.readFile(bigFile);
  });
  await fs.rm(bigFile);
  const limit = pLimit(CONCURRENCY);
  const putSmall = await time(async () => {
    await Promise.all(small.map((b, i) => limit(() => writeDurable(path.join(dir, `s${i}`), b))));
  });
  const getSmall = await time(async () => {
    await Promise.all(
      small.map((_, i) =>
        limit(async () => {
          await fs.readFile(path.join(dir, `s${i}`));
        }),
      ),
    );
  });
  await fs.rm(dir, { recursive: true, force: true });
  return [
    row('fs reference (write+fsync / read)', bigCase, BIG, putBig, getBig),
    row('fs reference (write+fsync / read)', smallCase, SMALL_COUNT * SMALL_SIZE, putSmall, getSmall),
  ];
}

async function main(): Promise<void> {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-bench-store-'));
  const big = makeBig();
  const small = Array.from({ length: SMALL_COUNT }, () => randomBytes(SMALL_SIZE));
  const rows: Row[] = [];
  try {
    if (!only || only === 'fs') rows.push(...(await benchFs(path.join(tmp, 'fs'), big, small)));
    if (!only || only === 'file') {
      const store = await openStore(pathToFileURL(path.join(tmp, 'file-store')).href);
      rows.push(...(await benchStore('file store', store, big, small)));
      await store.close();
    }
    if (!only || only === 's3') {
      const s3 = await startS3();
      try {
        const store = await openStore(s3.url);
        rows.push(...(await benchStore('s3 store (s3rver via loopback proxy)', store, big, small)));
        await store.close();
      } finally {
        await s3.stop();
      }
    }
    // The reference again, last: the disk is shared and its speed drifts; two runs bracket the stores.
    if (!only || only === 'fs') {
      const again = await benchFs(path.join(tmp, 'fs2'), big, small);
      rows.push(...again.map((r) => ({ ...r, backend: `${r.backend}, again at the end` })));
    }
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
  const out = {
    bench: 'store',
    quick,
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    tmpdir: os.tmpdir(),
    results: rows,
  };
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
