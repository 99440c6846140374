/**
 * Chunk-layer micro-benchmark: chunking, BLAKE3, both together (the writer's path), SHA-256 as
 * a yardstick, BLAKE3 on the worker pool, and the in-memory write and read paths of ChunkStore
 * (which hash on the pool), all on one random buffer (256 MiB, or 64 MiB with --quick).
 * `CAIRN_HASH_THREADS=0` runs everything inline for comparison. Each figure is the median of 3 runs. Prints one JSON object.
 *
 * Usage: node dist/bench/chunks.js [--quick]
 */
import crypto from 'node:crypto';
import os from 'node:os';
import { Chunker, cutPoints, DEFAULT_CHUNKER } from '../src/chunks/chunker.js';
import { ChunkStore } from '../src/chunks/chunkstore.js';
import { hashChunk, hashChunkAsync } from '../src/chunks/hash.js';
import type { ChunkRef } from '../src/chunks/types.js';
import { MemoryStore } from '../src/store/memory.js';

const MiB = 1024 * 1024;
const quick = process.argv.includes('--quick');
const size = (quick ? 64 : 256) * MiB;
const RUNS = 3;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** MiB/s of `fn` over `bytes`, median of RUNS (after one untimed warm-up on a slice when cheap). */
async function rate(bytes: number, fn: () => unknown): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  return Math.round((bytes / MiB / (median(times) / 1000)) * 10) / 10;
}

async function main(): Promise<void> {
  const buf = crypto.randomBytes(size);
  const cuts = cutPoints(buf);
  const chunks = cuts.map((end, i) => buf.subarray(i === 0 ? 0 : cuts[i - 1], end));
  const sizes = chunks.map((c) => c.length);
  const inner = sizes.slice(0, -1);

  const chunkOnly = await rate(size, () => cutPoints(buf));
  const hashOnly = await rate(size, () => {
    for (const c of chunks) hashChunk(c);
  });
  const hashPool = await rate(size, () => Promise.all(chunks.map(hashChunkAsync)));
  const chunkAndHash = await rate(size, () => {
    const c = new Chunker();
    for (let o = 0; o < size; o += MiB) for (const chunk of c.push(buf.subarray(o, o + MiB))) hashChunk(chunk);
    for (const chunk of c.finish()) hashChunk(chunk);
  });
  const sha256 = await rate(size, () => {
    for (const c of chunks) crypto.createHash('sha256').update(c).digest();
  });

  let refs: ChunkRef[] = [];
  let store = new MemoryStore();
  const writePath = await rate(size, async () => {
    store = new MemoryStore();
    refs = [];
    const w = new ChunkStore({ store, packPrefix: 'bench/packs/', cache: null }).writer();
    for (let o = 0; o < size; o += 64 * MiB) {
      // one file per 64 MiB, as a commit of several large files would
      refs = refs.concat(await w.write(buf.subarray(o, o + 64 * MiB)));
    }
    await w.finish();
  });
  const fileRefs = refs.slice(-cutPoints(buf.subarray(size - 64 * MiB)).length);
  const readPath = await rate(64 * MiB, async () => {
    const cs = new ChunkStore({ store, packPrefix: 'bench/packs/', cache: null, memoryBytes: 0 });
    for await (const _ of cs.stream(fileRefs)) {
      // consume
    }
  });

  const result = {
    bench: 'chunks',
    bytes: size,
    runs: RUNS,
    node: process.version,
    hashThreads: process.env.CAIRN_HASH_THREADS ?? 'default',
    cpu: `${os.cpus()[0]?.model ?? 'unknown'} x${os.cpus().length}`,
    params: DEFAULT_CHUNKER,
    mibPerSec: {
      chunkOnly,
      blake3Only: hashOnly,
      blake3WorkerPool: hashPool,
      chunkPlusBlake3: chunkAndHash,
      sha256Only: sha256,
      writePathMemoryStore: writePath,
      readPathVerifyMemoryStore: readPath,
    },
    chunks: {
      count: sizes.length,
      avg: Math.round(size / sizes.length),
      min: Math.min(...(inner.length ? inner : sizes)),
      max: Math.max(...sizes),
    },
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
