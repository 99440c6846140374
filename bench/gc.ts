/**
 * GC figures (issue 17's goals), on a temporary file store; prints one JSON object.
 *
 * 1. space: `--small` files of 8 KiB (default 10,000, in 10 commits) and one `--big-mib` file
 *    (default 256) rewritten `--rewrites` times (default 10) with fresh random content; then half
 *    the small files deleted; then gc with keep-last 1 (three runs, a grace apart: the packs are
 *    condemned by one and deleted by the next). Reports live and stored bytes (`vol.usage()`)
 *    before and after.
 * 2. scale: a volume of `--files` inline files (default 100,000, 1,000 per commit) pruned to the
 *    newest snapshot by `gc --keep-last 1`, run in a child process: its wall time and peak RSS.
 * 3. a commit (of one 4 MiB file) during a gc of that volume (one every 250 ms from the start of
 *    gc's work to its end, at most 60) vs without one (5 before, 5 after), medians. The gc
 *    process runs at nice `--gc-nice` (default 10, as `cairn volume gc` does; 0: normal priority).
 *
 * Usage: node dist/bench/gc.js [--small N] [--big-mib N] [--rewrites N] [--files N] [--gc-nice N] [--skip-space]
 * Its JSON goes on the published page with `node dist/bench/report.js --gc OUT.json` (./gcreport.ts).
 */
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { EntryData } from '../src/format/records.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

const GRACE = 2_000;

if (process.argv[2] === '--child-gc') {
  // Child: one gc of the volume, then its own figures.
  const { Volume } = await import('../src/volume/index.js');
  const t = performance.now();
  const vol = await Volume.fromName('scale', { store: process.argv[3]! });
  // `started` when gc's work begins (after this process's start-up): the parent times commits from there.
  const onProgress = (phase: string) => void (phase === 'retention' && process.stdout.write('started\n'));
  const r = await vol.gc({ keepLast: 1, graceMs: GRACE, nice: Number(process.argv[4] ?? 0), onProgress });
  await vol.close();
  const maxRssMiB = Math.round(process.resourceUsage().maxRSS / 1024);
  const out = { ms: Math.round(performance.now() - t), maxRssMiB, report: r };
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(0);
}

const root = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-bench-gc-'));
process.env.CAIRN_HOME = path.join(root, 'home');
const { Volume } = await import('../src/volume/index.js');
const { openStore } = await import('../src/store/open.js');
const { storeNow } = await import('../src/volume/gc.js');

const MiB = 1 << 20;
const ms = (t: number) => Math.round(performance.now() - t);
const out: Record<string, unknown> = {
  timestamp: new Date().toISOString(),
  machine: { cpus: os.cpus().length, loadAvg: os.loadavg().map((x) => +x.toFixed(1)) },
  command: `node dist/bench/gc.js ${process.argv.slice(2).join(' ')}`.trim(),
};

async function graceLater(store: import('../src/store/types.js').ObjectStore): Promise<void> {
  const t = await storeNow(store);
  while ((await storeNow(store)) < t + GRACE + 1_000) await new Promise((r) => setTimeout(r, 200));
}

try {
  const storeUrl = pathToFileURL(path.join(root, 'store')).href;
  const store = await openStore(storeUrl);

  if (!process.argv.includes('--skip-space')) {
    const small = arg('small', 10_000);
    const bigMiB = arg('big-mib', 256);
    const rewrites = arg('rewrites', 10);
    const vol = await Volume.fromName('space', { store, createIfMissing: true });
    const s = await vol.session();
    await s.mkdir('small', 0o755);
    for (let i = 0; i < small; i++) {
      await s.create(`small/f${i}`, 0o644);
      await s.write(`small/f${i}`, 0, crypto.randomBytes(8192));
      if ((i + 1) % Math.ceil(small / 10) === 0) await s.commit();
    }
    await s.commit();
    let t = performance.now();
    for (let r = 0; r < rewrites; r++) {
      if (s.lookup('big.bin')) await s.truncate('big.bin', 0);
      else await s.create('big.bin', 0o644);
      for (let off = 0; off < bigMiB * MiB; off += 8 * MiB) await s.write('big.bin', off, crypto.randomBytes(8 * MiB));
      await s.commit();
    }
    out.rewriteMs = ms(t);
    for (let i = 0; i < small; i += 2) await s.unlink(`small/f${i}`);
    await s.commit();
    await s.close();
    const before = await vol.usage();
    t = performance.now();
    const runs = [];
    for (let k = 0; k < 3; k++) {
      await graceLater(store);
      const r = await vol.gc({ keepLast: 1, graceMs: GRACE });
      const { condemned, deleted, deletedBytes } = r.packs;
      const compacted = r.compaction.packs;
      const copiedMiB = +(r.compaction.copiedBytes / MiB).toFixed(1);
      runs.push({ ms: r.elapsedMs, condemned, deleted, deletedMiB: +(deletedBytes / MiB).toFixed(1), compacted, copiedMiB });
    }
    const after = await vol.usage();
    const fig = (u: typeof before) => ({
      liveMiB: +(u.liveBytes / MiB).toFixed(1),
      storedMiB: +(u.storedBytes / MiB).toFixed(1),
      ratio: +(u.storedBytes / u.liveBytes).toFixed(3),
      deadInLivePacksMiB: +(u.deadInLivePacksBytes / MiB).toFixed(1),
    });
    out.space = { small, bigMiB, rewrites, before: fig(before), after: fig(after), gcRuns: runs };
    await vol.close();
  }

  // Scale: many inline files.
  const files = arg('files', 100_000);
  const vol = await Volume.fromName('scale', { store, createIfMissing: true });
  const s = await vol.session();
  let t = performance.now();
  const body = Buffer.alloc(64, 'x');
  for (let done = 0; done < files; done += 1000) {
    const n = Math.min(1000, files - done);
    const entries = Array.from({ length: n }, (_, k): [string, EntryData] => {
      const i = done + k;
      const entry: EntryData = { type: 'file', mode: 0o644, mtimeMs: Date.now(), size: 64, inline: body };
      return [`d${Math.floor(i / 1000)}/f${i}`, entry];
    });
    s.putEntries([], entries);
    await s.commit();
  }
  out.buildMs = ms(t);
  // A commit of one 4 MiB file, alone (5 before and 5 after the gc) and during the gc: from gc's
  // start (not its process's) to its end, one every PACE ms, at most 60 (medians).
  const PACE = 250;
  const pause = () => new Promise((r) => setTimeout(r, PACE));
  const oneCommit = async (): Promise<number> => {
    const name = `c${crypto.randomBytes(4).toString('hex')}`;
    const t0 = performance.now();
    await s.create(name, 0o644);
    await s.write(name, 0, crypto.randomBytes(4 * MiB));
    await s.commit();
    return performance.now() - t0;
  };
  const median = (xs: number[]) => Math.round([...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!);
  const alone: number[] = [];
  for (let i = 0; i < 5; i++) {
    alone.push(await oneCommit());
    await pause();
  }
  await graceLater(store);
  const self = fileURLToPath(import.meta.url);
  t = performance.now();
  const nice = String(arg('gc-nice', 10));
  const child = spawn(process.execPath, [self, '--child-gc', storeUrl, nice], { stdio: ['ignore', 'pipe', 'inherit'] });
  let text = '';
  child.stdout.on('data', (d: Buffer) => (text += d.toString()));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const during: number[] = [];
  while (!text.includes('started\n') && child.exitCode === null) await new Promise((r) => setTimeout(r, 5));
  while (child.exitCode === null && during.length < 60) {
    during.push(await oneCommit());
    await pause();
  }
  await exited;
  for (let i = 0; i < 5; i++) {
    alone.push(await oneCommit());
    await pause();
  }
  await s.close();
  const g = JSON.parse(text.replace('started\n', '')) as { ms: number; maxRssMiB: number; report: { records: { deleted: number } } };
  out.scale = {
    files,
    gcMs: g.ms,
    gcMaxRssMiB: g.maxRssMiB,
    recordsDeleted: g.report.records.deleted,
    commit4MiBMs: {
      alone: median(alone),
      duringGc: during.length ? median(during) : null,
      samplesDuringGc: during.length,
      gcNice: Number(nice),
    },
  };
  await vol.close();
  await store.close();
  process.stdout.write(`${JSON.stringify(out, null, 1)}\n`);
} finally {
  await fs.rm(root, { recursive: true, force: true });
}
