/**
 * fio through each mount: the standard tool's view of the same big file, next to the read
 * matrix. Two read-only jobs over the dataset's big file:
 *
 *   - **seq**: sequential read, bs=1M, one job (psync);
 *   - **rand**: random read, bs=128k, 4 jobs (psync, iodepth 1 each), a fixed number of bytes
 *     per job. 128 KiB is the largest request FUSE passes through by default, so each fio read is
 *     one FUSE request and the figure measures the mount's random-access path, not fio's syscall
 *     rate (4 KiB would mostly measure per-request overhead, where every FUSE mount loses).
 *
 * Each job runs on local disk (the dataset's local copy) directly, and inside a "container"
 * (bench/container.ts, its own mount namespace) for Cairn on the run's S3 store, Cairn on the file store,
 * s3fs and rclone. Cold: Cairn's chunk cache directory deleted and `drop_caches` before the job;
 * warm (Cairn, local disk): right after the same system's cold job, same offsets (fio's random
 * sequence is seeded the same way each run); for Cairn, the big file's chunks are first put in the
 * host cache (`cairn volume warmup`): a cold random job cut short by `--runtime` leaves most of
 * them out, and the warm job would then read from the store.
 *
 * Invariants: fio never writes (`--readonly`, an existing `--filename`, no layout), never
 * bypasses or drops the page cache itself (`--direct=0 --invalidate=0`), and every job is bounded
 * by `--io_size` and `--runtime` (the row says when the runtime cut it short).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { ContainerSpec } from './container.js';
import type { Dataset } from './dataset.js';
import type { RequestCost } from './costs.js';
import { atCleanup, CLI_JS, dropCaches, isStopping as stopping, MiB, mountDir, runContainer, sh } from './harness.js';
import { execFio } from './fioexec.js';
import type { Cache, System } from './systems.js';

export type FioSystem = Exclude<System, 's3get'>;
export type FioJob = 'seq' | 'rand';

export interface FioRow {
  system: FioSystem;
  job: FioJob;
  cache: Cache;
  MiBps: number;
  iops: number;
  /** Completion latency percentiles of one read, ms (absent if fio reported none). */
  p50Ms?: number;
  p99Ms?: number;
  /** Bytes fio read (all jobs) and its run time, s. */
  MiB: number;
  seconds: number;
  /** True when `--runtime` ended the job before `--io_size` was read. */
  capped: boolean;
  mountMs?: number;
  daemonHwmMiB?: number;
  /** Cairn: daemon CPU seconds per GiB read, and its requests by type (bench/costs.ts). */
  cpuSecPerGiB?: number;
  requests?: Record<string, RequestCost>;
}

export interface FioResults {
  /** fio's version, or null when it is not installed (then `skipped` says why and rows are empty). */
  version: string | null;
  skipped?: string;
  /** The fio command line of each job (without `--filename`). */
  jobs: Record<FioJob, string>;
  rows: FioRow[];
  failures: string[];
}

export interface FioOptions {
  quick: boolean;
  /** fio's version line (null: not installed; every job is skipped with that reason). */
  version: string | null;
  /** Systems to measure (cold), and those also measured warm. */
  systems: FioSystem[];
  warm: FioSystem[];
  /** Host chunk cache directory of each Cairn system (deleted for cold jobs). */
  cacheDirs: Partial<Record<FioSystem, string>>;
  work: string;
  env: NodeJS.ProcessEnv;
  sessionsDir: string;
  log: (msg: string) => void;
  /** The FUSE floor's binary (./fusefloor.ts), for the `floor` system. */
  floorBinary?: string;
}

/** fio's arguments for one job over a file of `fileBytes` (everything but `--filename`). */
export function fioArgs(job: FioJob, fileBytes: number, quick: boolean): string[] {
  const runtime = quick ? 5 : 8;
  // seq: one pass over (at most) 512 MiB; rand: 256 MiB in all (32 MiB quick), split over 4 jobs.
  const seqBytes = Math.min(fileBytes, 512 * MiB);
  const randBytes = Math.min(fileBytes, quick ? 32 * MiB : 256 * MiB);
  const common = [
    `--name=${job}`,
    '--readonly',
    '--allow_file_create=0',
    '--ioengine=psync',
    '--thread', // jobs are threads of one process: nothing forked to outlive it
    '--direct=0',
    '--invalidate=0',
    `--size=${fileBytes}`,
    `--runtime=${runtime}`,
    '--time_based=0',
    '--group_reporting',
    '--output-format=json',
  ];
  return job === 'seq'
    ? [...common, '--rw=read', '--bs=1M', '--numjobs=1', `--io_size=${seqBytes}`]
    : [...common, '--rw=randread', '--bs=128k', '--numjobs=4', `--io_size=${Math.floor(randBytes / 4)}`];
}

const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;

/** The parts of fio's JSON report (`--output-format=json`) that parseFio reads. */
interface FioReport {
  jobs?: { error?: number; read?: FioReadStats }[];
}

interface FioReadStats {
  bw_bytes?: number;
  iops?: number;
  io_bytes?: number;
  /** ms */
  runtime?: number;
  /** Completion (clat) or total (lat) latency percentiles, ns, keyed like "99.000000". */
  clat_ns?: { percentile?: Record<string, number> };
  lat_ns?: { percentile?: Record<string, number> };
}

/** The figures of fio's JSON report (one group: `--group_reporting`). */
export function parseFio(report: unknown, expectBytes: number): Omit<FioRow, 'system' | 'job' | 'cache' | 'mountMs' | 'daemonHwmMiB'> {
  const job = (report as FioReport | null)?.jobs?.[0];
  const read = job?.read;
  if (!read || typeof read.bw_bytes !== 'number')
    throw new Error(`fio report without read figures: ${JSON.stringify(report).slice(0, 300)}`);
  if (job!.error) throw new Error(`fio job error ${job!.error}`);
  const pct = read.clat_ns?.percentile ?? read.lat_ns?.percentile;
  const ms = (key: string): number | undefined => (pct && typeof pct[key] === 'number' ? round(pct[key] / 1e6, 3) : undefined);
  const p50Ms = ms('50.000000');
  const p99Ms = ms('99.000000');
  const bytes = Number(read.io_bytes ?? 0);
  return {
    MiBps: round(read.bw_bytes / MiB),
    iops: round(Number(read.iops), 0),
    ...(p50Ms !== undefined ? { p50Ms } : {}),
    ...(p99Ms !== undefined ? { p99Ms } : {}),
    MiB: round(bytes / MiB),
    seconds: round(Number(read.runtime ?? 0) / 1000, 3),
    capped: bytes < expectBytes,
  };
}

/** How a system mounts the big file: a container spec (without mountpoint) and the file in it; null for local disk. */
function mountOf(ds: Dataset, sys: FioSystem, o: FioOptions): { spec: Omit<ContainerSpec, 'mountpoint'>; file: string } | null {
  if (sys === 'local') return null;
  if (sys === 'floor') return { spec: { kind: 'floor', floorBinary: o.floorBinary, source: ds.localDir }, file: ds.bigRel };
  if (sys === 'cairn' || sys === 'cairn-file') {
    return {
      spec: { kind: 'cairn', volume: ds.volume, store: sys === 'cairn' ? ds.storeUrl : ds.fileStoreUrl, cacheDir: o.cacheDirs[sys] },
      file: ds.bigRel,
    };
  }
  return {
    spec: {
      kind: sys,
      bucket: ds.bucket,
      prefix: `${ds.peerPrefix}/big`,
      endpoint: ds.endpoint,
      passwdFile: ds.passwdFile,
      rcloneConfig: ds.rcloneConfig,
    },
    file: path.basename(ds.bigRel),
  };
}

let seq = 0;

/** Fills a Cairn system's host chunk cache with the big file (`cairn volume warmup`, in a child process). */
async function warmHostCache(ds: Dataset, sys: FioSystem, o: FioOptions): Promise<void> {
  const store = sys === 'cairn' ? ds.storeUrl : ds.fileStoreUrl;
  const env = { ...o.env, CAIRN_CACHE_DIR: o.cacheDirs[sys] };
  await sh(process.execPath, [CLI_JS, '--store', store, '-q', 'volume', 'warmup', ds.volume, `/${ds.bigRel}`], { env });
}

/** One job on one system in one cache state. */
async function once(ds: Dataset, sys: FioSystem, job: FioJob, cache: Cache, o: FioOptions): Promise<FioRow> {
  const cacheDir = o.cacheDirs[sys];
  if (cache === 'cold') {
    if (cacheDir) await fsp.rm(cacheDir, { recursive: true, force: true });
    await dropCaches();
  } else if (cacheDir) {
    await warmHostCache(ds, sys, o);
  }
  const args = fioArgs(job, ds.bigBytes, o.quick);
  const expect = Number(args.find((a) => a.startsWith('--io_size='))!.slice(10)) * (job === 'rand' ? 4 : 1);
  const m = mountOf(ds, sys, o);
  if (!m) {
    if (stopping()) throw new Error('the benchmark is stopping');
    const run = execFio([...args, `--filename=${path.join(ds.localDir, ds.bigRel)}`]);
    const forget = atCleanup(run.kill);
    try {
      return { system: sys, job, cache, ...parseFio(await run.report, expect) };
    } finally {
      forget();
    }
  }
  const mountpoint = await mountDir(path.join(o.work, 'mnt'), `fio-${sys}-${++seq}`);
  try {
    const { ready, result } = await runContainer({ ...m.spec, mountpoint, fio: { args, file: m.file } }, o.env);
    const parsed = parseFio(result.fio, expect);
    const costs = result.costs;
    return {
      system: sys,
      job,
      cache,
      ...parsed,
      ...(costs && parsed.MiB > 0 ? { cpuSecPerGiB: round(costs.cpuSec / (parsed.MiB / 1024), 2), requests: costs.requests } : {}),
      ...(typeof ready.mountMs === 'number' ? { mountMs: round(ready.mountMs, 0) } : {}),
      ...(typeof result.daemonHwmKiB === 'number' ? { daemonHwmMiB: round(result.daemonHwmKiB / 1024) } : {}),
    };
  } finally {
    if (cacheDir) await fsp.rm(o.sessionsDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * Runs both jobs on every system: per job, each system cold (Cairn first) and, for the warm
 * systems, warm right after. One run per figure. A system that fails once is skipped for the rest of that job.
 */
export async function fioBench(ds: Dataset, o: FioOptions): Promise<FioResults> {
  const jobs = { seq: fioArgs('seq', ds.bigBytes, o.quick).join(' '), rand: fioArgs('rand', ds.bigBytes, o.quick).join(' ') };
  if (!o.version)
    return {
      version: null,
      skipped: 'fio is not installed (scripts/bench-setup.sh installs it from Debian)',
      jobs,
      rows: [],
      failures: [],
    };
  const rows: FioRow[] = [];
  const failures: string[] = [];
  for (const job of ['seq', 'rand'] as FioJob[]) {
    const broken = new Set<FioSystem>();
    // Warm right after the same system's cold job: its chunk cache and the page cache still hold the data.
    const plan = o.systems.flatMap((s): [FioSystem, Cache][] =>
      o.warm.includes(s)
        ? [
            [s, 'cold'],
            [s, 'warm'],
          ]
        : [[s, 'cold']],
    );
    for (const [sys, cache] of plan) {
      if (broken.has(sys)) continue;
      try {
        const row = await once(ds, sys, job, cache, o);
        rows.push(row);
        o.log(
          `  fio ${job.padEnd(4)} ${sys.padEnd(10)} ${cache}: ${row.MiBps} MiB/s, ${row.iops} IOPS, p99 ${row.p99Ms ?? '-'} ms${row.capped ? ' (runtime cap)' : ''}`,
        );
      } catch (err) {
        broken.add(sys);
        const msg = `fio ${job} ${sys} ${cache}: ${(err as Error).message.split('\n').slice(0, 6).join(' | ')}`;
        failures.push(msg);
        o.log(`  FAILED ${msg}`);
      }
    }
  }
  return { version: o.version, jobs, rows, failures };
}
