/**
 * BLAKE3 micro-benchmark: every available implementation on the same random buffer (whole
 * 64 MiB, 4 MiB / 1 MiB / 4 KiB pieces), SHA-256 (node:crypto) as a yardstick; then, in child
 * processes, `hashChunkAsync` inline vs on the worker pool for both implementations, with the
 * main thread's busy time per MiB (event-loop utilisation) and the longest single stall. Each
 * figure is the best of 3 runs. Prints one JSON object (MiB/s unless named otherwise).
 *
 * Usage: node dist/bench/hash.js [--quick]        (--quick: 16 MiB, no child processes)
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadNativeBlake3, type Blake3Fn } from '../src/chunks/blake3-native.js';
import { hashChunkAsync, hashImplementation, hashPoolStats } from '../src/chunks/hash.js';

const MiB = 1024 * 1024;
const RUNS = 3;
const quick = process.argv.includes('--quick');

function bestRate(pieces: Uint8Array[], fn: (d: Uint8Array) => unknown): number {
  const bytes = pieces.reduce((a, p) => a + p.length, 0);
  for (const p of pieces.slice(0, 4)) fn(p); // warm-up
  let best = Infinity;
  for (let r = 0; r < RUNS; r++) {
    const t = performance.now();
    for (const p of pieces) fn(p);
    best = Math.min(best, performance.now() - t);
  }
  return Math.round(bytes / MiB / (best / 1000));
}

function split(buf: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let o = 0; o + size <= buf.length; o += size) out.push(buf.subarray(o, o + size));
  return out;
}

/** `hashChunkAsync` over 1 MiB and 4 MiB chunks, all at once: throughput and main-thread cost. */
async function asyncRun(): Promise<Record<string, unknown>> {
  const buf = crypto.randomBytes(128 * MiB);
  const out: Record<string, unknown> = { impl: hashImplementation(), threads: process.env.CAIRN_HASH_THREADS ?? 'default' };
  for (const size of [1 * MiB, 4 * MiB]) {
    const pieces = split(buf, size);
    await Promise.all(pieces.slice(0, 8).map((p) => hashChunkAsync(p))); // starts the pool, if any
    let best = Infinity;
    let busy = Infinity;
    let stall = 0;
    for (let r = 0; r < RUNS; r++) {
      const e0 = performance.eventLoopUtilization();
      const t = performance.now();
      const all: Promise<string>[] = [];
      for (const p of pieces) {
        const s = performance.now();
        all.push(hashChunkAsync(p));
        stall = Math.max(stall, performance.now() - s);
      }
      await Promise.all(all);
      best = Math.min(best, performance.now() - t);
      busy = Math.min(busy, performance.eventLoopUtilization(e0).active);
    }
    out[`${size / MiB}MiB`] = {
      MiBps: Math.round(buf.length / MiB / (best / 1000)),
      mainMsPerMiB: Math.round((busy / (buf.length / MiB)) * 1000) / 1000,
      maxStallMs: Math.round(stall * 100) / 100,
    };
  }
  out.poolJobs = hashPoolStats().jobs;
  return out;
}

async function main(): Promise<void> {
  if (process.argv.includes('--async-only')) {
    console.log(JSON.stringify(await asyncRun()));
    return;
  }
  const size = (quick ? 16 : 64) * MiB;
  const buf = crypto.randomBytes(size);
  const impls: Record<string, Blake3Fn> = {};
  const native = loadNativeBlake3();
  if (native) impls['blake3-native (@napi-rs/blake-hash)'] = native;
  impls['blake3-wasm (blake3)'] = (createRequire(import.meta.url)('blake3') as { hash(d: Uint8Array): Buffer }).hash;
  impls['sha256 (node:crypto)'] = (d) => crypto.createHash('sha256').update(d).digest();

  const want = impls['blake3-wasm (blake3)'](buf).toString('hex');
  const result: Record<string, unknown> = {
    node: process.version,
    bytes: size,
    active: hashImplementation(),
    agree: native ? native(buf).toString('hex') === want : null,
  };
  const rates: Record<string, Record<string, number>> = {};
  for (const [name, fn] of Object.entries(impls)) {
    rates[name] = {
      whole: bestRate([buf], fn),
      '4MiB': bestRate(split(buf, 4 * MiB), fn),
      '1MiB': bestRate(split(buf, MiB), fn),
      '4KiB': bestRate(split(buf, 4096).slice(0, 4096), fn),
    };
  }
  result.MiBps = rates;

  if (!quick) {
    // Inline vs pool, per implementation: the module picks both once at load, so one child each.
    const run = promisify(execFile);
    const self = fileURLToPath(import.meta.url);
    const modes: Record<string, unknown> = {};
    for (const impl of native ? ['native', 'wasm'] : ['wasm']) {
      for (const threads of ['0', '2']) {
        const env = { ...process.env, CAIRN_BLAKE3: impl === 'wasm' ? 'wasm' : '', CAIRN_HASH_THREADS: threads };
        const { stdout } = await run(process.execPath, [self, '--async-only'], { env, timeout: 300_000, maxBuffer: 1 << 20 });
        modes[`${impl}, ${threads === '0' ? 'inline' : `pool of ${threads}`}`] = JSON.parse(stdout);
      }
    }
    result.hashChunkAsync = modes;
  }
  console.log(JSON.stringify(result, null, 2));
}

await main();
