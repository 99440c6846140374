/**
 * Cold reads through the chunk layer against raw GETs of the same bytes, in one run on one store
 * (s3rver in its own process, or Ceph RGW with `--store ceph`): a big file read sequentially by
 * one reader (1 MiB requests, the native FUSE request size, each awaited), time to first byte,
 * and random 128 KiB reads by 4 jobs (whole chunks, and verified 32 KiB blocks of chunks: partial
 * reads; `--blocks` also 16, 64 and 128 KiB blocks). Every Cairn read starts cold: a fresh ChunkStore, no host
 * cache. Variants: the adaptive per-reader cursor vs the old fixed 16-chunk readahead, streamed
 * runs on/off, range GETs of 8 or 16 MiB. Figures are medians of 3 runs (sequential: of 5
 * interleaved rounds with --quick, 3 without). Prints one JSON object.
 *
 * Usage: node dist/bench/coldread.js [--quick] [--store s3rver|ceph] [--window64] [--random-only] [--blocks]
 */
import crypto from 'node:crypto';
import { ChunkStore, ReadCursor, type ChunkStoreOptions, type ReadHints } from '../src/chunks/chunkstore.js';
import type { ChunkRef } from '../src/chunks/types.js';
import { DEFAULT_BLOCK_BYTES } from '../src/chunks/pack.js';
import { openStore } from '../src/store/open.js';
import type { ObjectStore } from '../src/store/types.js';
import { startS3Process, stopS3Process } from './harness.js';

const MiB = 1024 * 1024;
const quick = process.argv.includes('--quick');
const SIZE = (quick ? 64 : 256) * MiB;
const RUNS = 3;
/** Rounds of the sequential variants (median of these). */
const ROUNDS = quick ? 5 : 3;
const REQ = 1 * MiB;
const RANDOM_READ = 128 * 1024;
const RANDOM_COUNT = quick ? 64 : 200;
const RANDOM_JOBS = 4;
const PACKS = 'bench/coldread/packs/';
const randomOnly = process.argv.includes('--random-only');
const RAW = 'bench/coldread/raw';

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (x: number): number => Math.round(x * 10) / 10;

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

/** MiB/s of `bytes` moved by `fn`, median of RUNS. */
async function rate(bytes: number, fn: () => Promise<unknown>): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < RUNS; i++) ms.push(await timed(fn));
  return round(bytes / MiB / (median(ms) / 1000));
}

/** How a sequential reader reads ahead: the default cursor, a cursor with other bounds, or the old fixed 16 chunks. */
type Window = 'cursor' | 'fixed16' | { initial: number; max: number };

/** One cold sequential reader: REQ-sized reads, each awaited, with a cursor or fixed readahead. */
async function sequential(store: ObjectStore, refs: ChunkRef[], opts: Partial<ChunkStoreOptions>, hints: Window): Promise<void> {
  const cs = new ChunkStore({ store, packPrefix: PACKS, cache: null, ...opts });
  const h: ReadHints = hints === 'fixed16' ? { readahead: 16 } : { cursor: hints === 'cursor' ? cs.cursor() : new ReadCursor(hints) };
  for (let off = 0; off < SIZE; off += REQ) {
    const b = await cs.read(refs, off, REQ, h);
    if (b.length !== Math.min(REQ, SIZE - off)) throw new Error(`short read at ${off}`);
  }
}

/** Random reads: RANDOM_JOBS jobs, RANDOM_COUNT reads in all, at fixed random offsets. */
async function random(offsets: number[], read: (off: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: RANDOM_JOBS }, async () => {
      while (next < offsets.length) await read(offsets[next++]);
    }),
  );
}

async function main(): Promise<void> {
  process.env.AWS_ACCESS_KEY_ID ??= 'S3RVER';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'S3RVER';
  process.env.AWS_REGION ??= 'us-east-1';
  const i = process.argv.indexOf('--store');
  const env = { ...process.env, ...(i >= 0 ? { CAIRN_BENCH_STORE: process.argv[i + 1] } : {}) };
  const s3 = await startS3Process(env);
  const store = await openStore(s3.url);
  try {
    const data = crypto.randomBytes(SIZE);
    await store.put(RAW, data);
    // With outboards (opt-in for volumes: CAIRN_PACK_OUTBOARDS), so the random reads can compare partial and whole.
    const w = new ChunkStore({ store, packPrefix: PACKS, cache: null, blockBytes: DEFAULT_BLOCK_BYTES }).writer();
    const refs = await w.write(data);
    await w.finish();

    const out: Record<string, unknown> = { store: env.CAIRN_BENCH_STORE ?? 's3rver', fileMiB: SIZE / MiB, chunks: refs.length };
    if (!randomOnly) await sequentialAndTtfb(store, refs, out);
    await randomReads(store, refs, data, out);
    console.log(JSON.stringify(out, null, 1));
  } finally {
    await store.close();
    await stopS3Process(s3);
  }
}

/** The sequential variants and time to first byte, into `out`. */
async function sequentialAndTtfb(store: ObjectStore, refs: ChunkRef[], out: Record<string, unknown>): Promise<void> {
  {
    const c0 = process.cpuUsage();
    const raw1 = await rate(SIZE, () => store.get(RAW));
    const rawCpu = process.cpuUsage(c0);
    const rawCpuMsPerGiB = Math.round((rawCpu.user + rawCpu.system) / 1000 / RUNS / (SIZE / (1024 * MiB)));
    const rawParallel = await rate(SIZE, async () => {
      const part = 16 * MiB;
      const parts = Array.from({ length: Math.ceil(SIZE / part) }, (_, k) => k * part);
      await random(parts, (off) => store.get(RAW, { offset: off, length: part }));
    });
    const seq: Record<string, number> = {};
    const variants: [string, Partial<ChunkStoreOptions>, Window][] = [
      ['fixed16 (before)', { streamRuns: false }, 'fixed16'],
      ['cursor', { streamRuns: false }, 'cursor'],
      ['cursor+stream', {}, 'cursor'],
      ['cursor, 16 MiB ranges', { streamRuns: false, rangeBytes: 16 * MiB }, 'cursor'],
      ['cursor+stream, 16 MiB ranges', { rangeBytes: 16 * MiB }, 'cursor'],
      ...(process.argv.includes('--window64')
        ? [['cursor 8..64 +stream', {}, { initial: 8, max: 64 }] as [string, Partial<ChunkStoreOptions>, Window]]
        : []),
    ];
    // Rounds interleave the variants, so that a load change on the machine hits them all alike.
    const times: number[][] = variants.map(() => []);
    const cpu: number[][] = variants.map(() => []);
    for (let r = 0; r < ROUNDS; r++) {
      for (const [k, [, opts, hints]] of variants.entries()) {
        const c = process.cpuUsage();
        times[k].push(await timed(() => sequential(store, refs, opts, hints)));
        const used = process.cpuUsage(c);
        cpu[k].push((used.user + used.system) / 1000);
      }
    }
    const best: Record<string, number> = {};
    const cpuMsPerGiB: Record<string, number> = {};
    variants.forEach(([name], k) => {
      seq[name] = round(SIZE / MiB / (median(times[k]) / 1000));
      best[name] = round(SIZE / MiB / (Math.min(...times[k]) / 1000));
      cpuMsPerGiB[name] = Math.round(median(cpu[k]) / (SIZE / (1024 * MiB)));
    });
    out.sequential = {
      rawGetOneStream: raw1,
      rawGet16MiBx4: rawParallel,
      cairn: seq,
      cairnBestRound: best,
      rawGetOneStreamClientCpuMsPerGiB: rawCpuMsPerGiB,
      cairnClientCpuMsPerGiB: cpuMsPerGiB,
      ratioToOneStream: Object.fromEntries(Object.entries(seq).map(([k, v]) => [k, Math.round((v / raw1) * 100) / 100])),
    };

    const rawTtfb = async (length: number): Promise<number> => {
      const ms: number[] = [];
      for (let k = 0; k < RUNS; k++) ms.push(await timed(() => store.get(RAW, { offset: 0, length })));
      return median(ms);
    };
    const ttfbRaw = await rawTtfb(RANDOM_READ);
    // A cold read verifies the whole chunk it falls in (about 1 MiB), so that is its floor.
    const ttfbRawChunk = await rawTtfb(refs[0].length);
    const ttfb: number[] = [];
    for (let k = 0; k < 7; k++) {
      const cs = new ChunkStore({ store, packPrefix: PACKS, cache: null });
      const cursor = cs.cursor();
      ttfb.push(await timed(() => cs.read(refs, 0, RANDOM_READ, { cursor })));
      await cs.read(refs, 0, 8 * MiB); // let its read-ahead finish before the next sample
    }
    out.ttfbMs = { rawGet128KiB: round(ttfbRaw), rawGetFirstChunk: round(ttfbRawChunk), cairn128KiB: round(median(ttfb)) };
  }
}

/** Random 128 KiB reads by 4 jobs: raw range GETs, Cairn whole chunks, Cairn partial (verified blocks), into `out`. */
async function randomReads(store: ObjectStore, refs: ChunkRef[], data: Buffer, out: Record<string, unknown>): Promise<void> {
  const offsets = Array.from({ length: RANDOM_COUNT }, () => Math.floor(Math.random() * ((SIZE - RANDOM_READ) / 4096)) * 4096);
  const bytes = RANDOM_COUNT * RANDOM_READ;
  const layouts: [string, string, ChunkRef[]][] = [['32 KiB', PACKS, refs]];
  if (process.argv.includes('--blocks')) {
    for (const kib of [16, 64, 128]) {
      const prefix = `bench/coldread/packs-${kib}k/`;
      const w = new ChunkStore({ store, packPrefix: prefix, cache: null, blockBytes: kib * 1024 }).writer();
      const r = await w.write(data);
      await w.finish();
      layouts.push([`${kib} KiB`, prefix, r]);
    }
  }
  const fetched: Record<string, number> = {};
  const cairnRandom = (prefix: string, r: ChunkRef[], partialReads: boolean, name: string): Promise<number> =>
    rate(bytes, async () => {
      const cs = new ChunkStore({ store, packPrefix: prefix, cache: null, partialReads });
      await random(offsets, (off) => cs.read(r, off, RANDOM_READ, { cursor: cs.cursor() }));
      const st = cs.partialStats;
      fetched[name] = Math.round(st.bytes / RANDOM_COUNT / 1024);
    });
  // Rounds interleave the variants, so that a load change on the machine hits them all alike.
  const rows: Record<string, number[]> = { rawRangeGet: [], cairnWholeChunks: [] };
  for (let k = 0; k < RUNS; k++) {
    rows.rawRangeGet.push(await rate(bytes, () => random(offsets, (off) => store.get(RAW, { offset: off, length: RANDOM_READ }))));
    rows.cairnWholeChunks.push(await cairnRandom(PACKS, refs, false, 'whole'));
    for (const [name, prefix, r] of layouts) (rows[`cairnPartial ${name}`] ??= []).push(await cairnRandom(prefix, r, true, name));
  }
  const res = Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, median(v)]));
  const raw = res.rawRangeGet;
  out.random128KiBx4 = {
    ...res,
    ratioToRaw: Object.fromEntries(Object.entries(res).map(([k, v]) => [k, Math.round((v / raw) * 100) / 100])),
    partialKiBFetchedPerRead: fetched,
  };
}

await main();
