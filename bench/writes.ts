/**
 * Write-side and metadata workloads, each against a fresh volume on the benchmark's S3 store (Ceph RGW or s3rver):
 *
 * - writes + commit through a mount: one big file (1 GiB; 64 MiB quick) and many 16 KiB files
 *   (10,000; 1,000 quick) copied in by `cp` in a child process, then a commit over the control
 *   socket (what `cairn commit DIR` does); the same `cp` to local disk and through the FUSE floor
 *   (references); the same bytes via `vol.batchUpload`;
 * - `cairn volume put` of the same bytes (the CLI, create + put);
 * - for volumes of 1,000, 100,000 and 1,000,000 files (1,000 only in quick mode): mount time,
 *   latency of a commit of one new file, reload latency after another writer's one-file commit,
 *   `ls -R`, `find`-style stat + readdir of every file from a child process (up to 100,000), and
 *   the daemon's peak RSS (VmHWM).
 *
 * Mount daemons here are detached processes (`mount()` without `foreground`) in the driver's
 * namespace; the driver never reads or writes the mountpoint itself, children do.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { smallNames, writeRandomFile, writeSmallFiles } from './dataset.js';
import { FuseFloor } from './fusefloor.js';
import { CLI_JS, median, MiB, mountDir, sh } from './harness.js';

/** Commits and reloads timed per volume size (the median is reported). */
const REPEAT = 5;

/** The built CLI (this file is dist/bench/writes.js). */

export interface WriteRow {
  name: string;
  value: number;
  unit: string;
  note?: string;
}

export interface WriteResults {
  rows: WriteRow[];
  failures: string[];
}

export interface WriteOptions {
  quick: boolean;
  work: string;
  env: NodeJS.ProcessEnv;
  /** A store URL for a fresh prefix of the benchmark bucket. */
  storeUrl: (prefix: string) => string;
  log: (msg: string) => void;
}

type Lib = typeof import('../src/index.js');

const secs = (t0: number): number => (performance.now() - t0) / 1000;
const r3 = (x: number): number => Math.round(x * 1000) / 1000;
/** Seconds as milliseconds, 0.1 ms precision. */
const ms1 = (sec: number): number => Math.round(sec * 10_000) / 10;

async function hwmMiB(pid: number): Promise<number | undefined> {
  const text = await fsp.readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const m = /VmHWM:\s+(\d+)/.exec(text);
  return m ? Math.round(Number(m[1]) / 102.4) / 10 : undefined;
}

/** Mounts `volume` (detached daemon), runs `fn`, always unmounts. */
async function withMount<T>(
  lib: Lib,
  o: WriteOptions,
  volume: string,
  store: string,
  fn: (mnt: string, pid: number, mountSec: number) => Promise<T>,
): Promise<T> {
  const mnt = await mountDir(path.join(o.work, 'wmnt'), `${volume}-${Date.now().toString(36)}`);
  const t0 = performance.now();
  const m = await lib.mount({ volume, mountpoint: mnt, store, commitIntervalSec: 0, env: o.env });
  const mountSec = secs(t0);
  try {
    return await fn(mnt, m.pid, mountSec);
  } finally {
    await lib.unmount(mnt, { force: true }).catch(() => undefined);
    await sh('fusermount', ['-uz', mnt]).catch(() => undefined);
    try {
      process.kill(m.pid, 0);
      process.kill(m.pid, 'SIGKILL');
    } catch {
      // exited
    }
  }
}

async function commitVia(lib: Lib, mnt: string): Promise<number> {
  const t0 = performance.now();
  await lib.controlRequest(mnt, 'commit');
  return secs(t0);
}

/** Writes through a mount with `cp`, then commits; and the same bytes with batchUpload. */
async function writeWorkloads(lib: Lib, o: WriteOptions, rows: WriteRow[]): Promise<void> {
  const bigBytes = o.quick ? 64 * MiB : 1024 * MiB;
  const count = o.quick ? 1_000 : 10_000;
  const src = path.join(o.work, 'wsrc');
  const big = path.join(src, 'big.bin');
  await writeRandomFile(big, bigBytes);
  const rels = smallNames(count, 'many');
  await writeSmallFiles(src, rels, 16 * 1024);
  const bigMiB = bigBytes / MiB;
  const refBase = await fsp.mkdtemp(path.join(o.work, 'wref-'));
  const floor = await FuseFloor.build(refBase);
  try {
    await writeEach(lib, o, rows, { src, big, count, bigMiB, refBase, floor });
  } finally {
    await fsp.rm(refBase, { recursive: true, force: true });
  }
  await fsp.rm(src, { recursive: true, force: true });
}

/** writeWorkloads' steps for the big file, then the small files. */
async function writeEach(
  lib: Lib,
  o: WriteOptions,
  rows: WriteRow[],
  w: { src: string; big: string; count: number; bigMiB: number; refBase: string; floor: FuseFloor | { error: string } },
): Promise<void> {
  const { src, big, count, bigMiB } = w;
  for (const [label, what] of [
    ['big', `1 file x ${bigMiB} MiB`],
    ['small', `${count} files x 16 KiB`],
  ] as const) {
    const store = o.storeUrl(`w-${label}-${Date.now().toString(36)}`);
    const volume = `wr-${label}`;
    await (await lib.Volume.fromName(volume, { store, createIfMissing: true })).close();
    await withMount(lib, o, volume, store, async (mnt, pid) => {
      const t0 = performance.now();
      if (label === 'big') await sh('cp', [big, path.join(mnt, 'big.bin')]);
      else await sh('cp', ['-r', path.join(src, 'many'), path.join(mnt, 'many')]);
      const writeSec = secs(t0);
      const commitSec = await commitVia(lib, mnt);
      const total = writeSec + commitSec;
      rows.push({ name: `mount write ${what}: write (cp)`, value: r3(writeSec), unit: 's' });
      rows.push({ name: `mount write ${what}: commit`, value: r3(commitSec), unit: 's' });
      if (label === 'big')
        rows.push({ name: `mount write ${what}: write+commit`, value: Math.round((bigMiB / total) * 10) / 10, unit: 'MiB/s' });
      else rows.push({ name: `mount write ${what}: write+commit`, value: Math.round(count / total), unit: 'files/s' });
      const hwm = await hwmMiB(pid);
      if (hwm) rows.push({ name: `mount write ${what}: daemon peak RSS`, value: hwm, unit: 'MiB' });
    });
    o.log(`  mount write ${what} done`);
    await referenceWrites(o, w.refBase, w.floor, label, what, label === 'big' ? big : path.join(src, 'many'), rows);

    const bstore = o.storeUrl(`b-${label}-${Date.now().toString(36)}`);
    const vol = await lib.Volume.fromName(`bu-${label}`, { store: bstore, createIfMissing: true });
    try {
      const t0 = performance.now();
      await vol.batchUpload({ force: true }, (b) => {
        if (label === 'big') b.putFile(big, '/big.bin');
        else b.putDirectory(path.join(src, 'many'), '/many');
      });
      const s = secs(t0);
      rows.push({ name: `batchUpload ${what}`, value: r3(s), unit: 's' });
      if (label === 'big') rows.push({ name: `batchUpload ${what}: throughput`, value: Math.round((bigMiB / s) * 10) / 10, unit: 'MiB/s' });
      else rows.push({ name: `batchUpload ${what}: throughput`, value: Math.round(count / s), unit: 'files/s' });
    } finally {
      await vol.close();
    }
    o.log(`  batchUpload ${what} done`);

    // The same bytes with the CLI, as a user would: `cairn volume put VOL SRC /` (a process of its own).
    const cstore = o.storeUrl(`c-${label}-${Date.now().toString(36)}`);
    const t0 = performance.now();
    await sh(process.execPath, [CLI_JS, '--quiet', '--store', cstore, 'volume', 'create', `cp-${label}`], { env: o.env });
    await sh(
      process.execPath,
      [CLI_JS, '--quiet', '--store', cstore, 'volume', 'put', `cp-${label}`, label === 'big' ? big : path.join(src, 'many'), '/'],
      {
        env: o.env,
        timeoutMs: 600_000,
      },
    );
    const s = secs(t0);
    rows.push({ name: `cairn volume put ${what}`, value: r3(s), unit: 's', note: 'create + put, two CLI processes' });
    if (label === 'big')
      rows.push({ name: `cairn volume put ${what}: throughput`, value: Math.round((bigMiB / s) * 10) / 10, unit: 'MiB/s' });
    else rows.push({ name: `cairn volume put ${what}: throughput`, value: Math.round(count / s), unit: 'files/s' });
    o.log(`  cairn volume put ${what} done`);
  }
}

/**
 * The same `cp` to local disk and through the FUSE floor (libfuse's C passthrough over local
 * disk, bench/fusefloor.ts, built once per run: `floor`): what the disk and any FUSE file system
 * take for it on this machine. Each into an empty directory under `base`, emptied after.
 */
async function referenceWrites(
  o: WriteOptions,
  base: string,
  floor: FuseFloor | { error: string },
  label: string,
  what: string,
  from: string,
  rows: WriteRow[],
): Promise<void> {
  const cp = async (into: string): Promise<number> => {
    const t0 = performance.now();
    await sh('cp', label === 'big' ? [from, path.join(into, 'big.bin')] : ['-r', from, path.join(into, 'many')]);
    return r3(secs(t0));
  };
  const local = path.join(base, `local-${label}`);
  try {
    await fsp.mkdir(local);
    rows.push({ name: `local disk write ${what}: write (cp)`, value: await cp(local), unit: 's' });
    if (!(floor instanceof FuseFloor)) {
      o.log(`  no FUSE floor for the write reference: ${floor.error}`);
      return;
    }
    await floor.start();
    try {
      rows.push({ name: `FUSE floor write ${what}: write (cp)`, value: await cp(floor.mountpoint), unit: 's' });
    } finally {
      await floor.stop();
    }
  } finally {
    await fsp.rm(local, { recursive: true, force: true });
    if (floor instanceof FuseFloor) await floor.clear();
  }
}

/** Volume of `n` 64-byte files in directories of 1,000 (inlined entries, so this is metadata). */
async function metadataWorkloads(lib: Lib, o: WriteOptions, n: number, rows: WriteRow[]): Promise<void> {
  const store = o.storeUrl(`m-${n}-${Date.now().toString(36)}`);
  const volume = `meta-${n}`;
  const tag = `${n.toLocaleString('en-US')} files`;
  const vol = await lib.Volume.fromName(volume, { store, createIfMissing: true });
  try {
    const t0 = performance.now();
    await vol.batchUpload({ force: true }, (b) => {
      for (let i = 0; i < n; i++) b.putFile(randomBytes(64), `/d${String(Math.floor(i / 1000)).padStart(4, '0')}/f${i}.txt`);
    });
    rows.push({ name: `volume of ${tag}: batchUpload`, value: r3(secs(t0)), unit: 's' });
  } finally {
    await vol.close();
  }
  await withMount(lib, o, volume, store, async (mnt, pid, mountSec) => {
    rows.push({ name: `volume of ${tag}: mount`, value: r3(mountSec), unit: 's' });
    // Medians of REPEAT: one commit or reload is a few milliseconds, where noise is large.
    const commits: number[] = [];
    for (let i = 0; i < REPEAT; i++) {
      await sh('sh', ['-c', `echo hello > ${JSON.stringify(path.join(mnt, `one-new-file-${i}.txt`))}`]);
      commits.push(await commitVia(lib, mnt));
    }
    rows.push({
      name: `volume of ${tag}: commit of 1 file`,
      value: ms1(median(commits)),
      unit: 'ms',
      note: `median of ${REPEAT}, max ${ms1(Math.max(...commits))} ms`,
    });

    const other = await lib.Volume.fromName(volume, { store });
    const reloads: number[] = [];
    try {
      for (let i = 0; i < REPEAT; i++) {
        await other.batchUpload({ force: true }, (b) => b.putFile(Buffer.from('from another writer\n'), `/other-writer-${i}.txt`));
        const t1 = performance.now();
        await lib.controlRequest(mnt, 'reload');
        reloads.push(secs(t1));
      }
    } finally {
      await other.close();
    }
    rows.push({
      name: `volume of ${tag}: reload (1 new file)`,
      value: ms1(median(reloads)),
      unit: 'ms',
      note: `median of ${REPEAT}, max ${ms1(Math.max(...reloads))} ms`,
    });

    let t0 = performance.now();
    const listed = await sh('sh', ['-c', `ls -R ${JSON.stringify(mnt)} | wc -l`], { timeoutMs: 1_200_000 });
    rows.push({ name: `volume of ${tag}: ls -R`, value: r3(secs(t0)), unit: 's', note: `${listed.trim()} lines` });
    // stat of every file: up to 100,000 files (the brief's metadata workload; 1,000,000 would take minutes).
    if (n <= 100_000) {
      t0 = performance.now();
      const out = await sh('find', [mnt, '-type', 'f', '-printf', '%s\n'], { timeoutMs: 1_200_000 });
      const s = secs(t0);
      const seen = out.split('\n').filter(Boolean).length;
      rows.push({
        name: `volume of ${tag}: stat+readdir all (find)`,
        value: r3(s),
        unit: 's',
        note: `${seen} files, ${Math.round(seen / s)} files/s`,
      });
    }
    const hwm = await hwmMiB(pid);
    if (hwm) rows.push({ name: `volume of ${tag}: daemon peak RSS`, value: hwm, unit: 'MiB' });
  });
  o.log(`  metadata ${tag} done`);
}

/** Runs every write-side workload; a failing workload is recorded and the rest go on. */
export async function writeBench(o: WriteOptions): Promise<WriteResults> {
  const lib = (await import('../src/index.js')) as Lib;
  const rows: WriteRow[] = [];
  const failures: string[] = [];
  const step = async (name: string, fn: () => Promise<void>, timeoutMs = 15 * 60_000): Promise<void> => {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        fn(),
        new Promise<never>(
          (_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs / 1000} s`)), timeoutMs)),
        ),
      ]);
    } catch (err) {
      const msg = `${name}: ${String((err as Error)?.message ?? err)
        .split('\n')
        .slice(0, 4)
        .join(' | ')}`;
      failures.push(msg);
      o.log(`  FAILED ${msg}`);
    } finally {
      clearTimeout(timer);
    }
  };
  await step('writes', () => writeWorkloads(lib, o, rows), o.quick ? 120_000 : 8 * 60_000);
  for (const n of o.quick ? [1_000] : [1_000, 100_000, 1_000_000]) {
    await step(`metadata ${n}`, () => metadataWorkloads(lib, o, n, rows), o.quick ? 60_000 : n >= 1_000_000 ? 12 * 60_000 : 6 * 60_000);
  }
  return { rows, failures };
}
