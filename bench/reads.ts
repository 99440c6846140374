/**
 * The headline workload: parallel reads of one big file and of many small files by 1, 4 (and
 * 16) readers, each reader a "container" — its own mount namespace with its own mount — cold
 * (empty host chunk cache, dropped page cache) and warm (cache filled), next to the references
 * measured in the same run and alternating with Cairn: local disk, raw GetObject from the same
 * object store (Ceph RGW or s3rver, bench/stores.ts), s3fs and rclone mounts of a plain copy of
 * the same bytes. Cairn runs on that store
 * (`cairn`) and on the embedded file store (`cairn-file`), each with its own chunk cache.
 *
 * Every figure is the median of its rounds (`runs(workload, readers, system, cache)` groups). A
 * group is N reader processes released together; its throughput is all bytes over first start →
 * last end (see harness.ts). Every reader verifies the bytes it reads (bench/verify.ts) and the
 * group's totals must be N × the workload's bytes and files: a group that fails either records a
 * failure, and the figure it belongs to is not published.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Dataset } from './dataset.js';
import { dropCaches, median, mountDir, runGroup, type GroupResult, type Member } from './harness.js';
import type { ReaderSpec } from './reader.js';
import { settle } from './settle.js';
import { isCairn, SYSTEMS, type Cache, type System, type Workload } from './systems.js';
import { mergeRequests, type RequestCost } from './costs.js';

export interface ReadRow {
  workload: Workload;
  system: System;
  cache: Cache;
  readers: number;
  /** Medians over the runs. */
  MiBps: number;
  filesPerSec: number;
  ttfbMs: number;
  mountMs?: number;
  daemonHwmMiB?: number;
  /** Cairn: daemon CPU seconds per GiB read (median over the runs), requests by type (all runs). */
  cpuSecPerGiB?: number;
  requests?: Record<string, RequestCost>;
  /** Bytes and files each reader read. */
  bytesPerReader: number;
  filesPerReader: number;
  runs: Omit<GroupResult, 'members'>[];
}

export interface ReadOptions {
  /** The longest wait for a quiet host before each group (bench/settle.ts); 0: only measure. */
  settleMs?: number;
  /** Rounds of one figure: per workload, reader count, system and cache state (at least 1). */
  runs: (w: Workload, readers: number, sys: System, cache: Cache) => number;
  /** Reader counts per system (a system absent here is skipped). */
  readers: Partial<Record<System, number[]>>;
  /** Further narrows the matrix: false leaves out that workload × reader count × system. */
  only?: (w: Workload, readers: number, sys: System) => boolean;
  /** Reader counts at which a system is measured warm too (absent: cold only). */
  warm: Partial<Record<System, number[]>>;
  /** Files in flight per reader for the small-files workload. */
  smallConcurrency: number;
  work: string;
  env: NodeJS.ProcessEnv;
  /** Host chunk cache directory of each Cairn system (deleted before its cold groups). */
  cacheDirs: Partial<Record<System, string>>;
  sessionsDir: string;
  log: (msg: string) => void;
  /** The FUSE floor's binary (./fusefloor.ts), for the `floor` system. */
  floorBinary?: string;
  /** Directory for `node --cpu-prof` profiles of Cairn daemons (1 reader, big file, cold and warm). */
  cpuProfDir?: string;
}

let seq = 0;

function readerSpec(ds: Dataset, w: Workload, conc: number): { rels: string[]; spec: ReaderSpec } {
  const rels = w === 'big' ? [ds.bigRel] : ds.smallRels;
  const checks = rels.map((r) => ds.checks[r]!);
  return { rels, spec: { concurrency: w === 'big' ? 1 : conc, bufSize: 1024 * 1024, checks } };
}

async function members(ds: Dataset, sys: System, w: Workload, n: number, o: ReadOptions, profile: string | undefined): Promise<Member[]> {
  const { rels, spec } = readerSpec(ds, w, o.smallConcurrency);
  const out: Member[] = [];
  for (let i = 0; i < n; i++) {
    if (sys === 'local') {
      out.push({ kind: 'plain', reader: { ...spec, files: rels.map((r) => path.join(ds.localDir, r)) } });
    } else if (sys === 'floor') {
      const mnt = await mountDir(path.join(o.work, 'mnt'), `${sys}-${++seq}`);
      const floor = { kind: 'floor' as const, mountpoint: mnt, floorBinary: o.floorBinary, source: ds.localDir };
      out.push({ kind: 'container', spec: { ...floor, reader: { ...spec, files: rels } } });
    } else if (sys === 's3get') {
      out.push({
        kind: 'plain',
        reader: { ...spec, s3: { endpoint: ds.endpoint, bucket: ds.bucket, keys: rels.map((r) => `${ds.peerPrefix}/${r}`) } },
      });
    } else {
      const mnt = await mountDir(path.join(o.work, 'mnt'), `${sys}-${++seq}`);
      out.push({
        kind: 'container',
        spec: {
          kind: sys === 'cairn-file' ? 'cairn' : sys,
          mountpoint: mnt,
          volume: ds.volume,
          store: sys === 'cairn-file' ? ds.fileStoreUrl : ds.storeUrl,
          ...(o.cacheDirs[sys] ? { cacheDir: o.cacheDirs[sys] } : {}),
          bucket: ds.bucket,
          // Peers mount the workload's own prefix (see dataset.ts) and read base names.
          prefix: `${ds.peerPrefix}/${w}`,
          endpoint: ds.endpoint,
          passwdFile: ds.passwdFile,
          rcloneConfig: ds.rcloneConfig,
          reader: { ...spec, files: isCairn(sys) ? rels : rels.map((r) => path.basename(r)) },
        },
        ...(profile && i === 0
          ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${o.cpuProfDir}`, `--cpu-prof-name=${profile}.cpuprofile`] }
          : {}),
      });
    }
  }
  return out;
}

/** Runs one group of one system, preparing the cache state first. */
async function once(
  ds: Dataset,
  sys: System,
  w: Workload,
  cache: Cache,
  n: number,
  o: ReadOptions,
  profile: string | undefined,
): Promise<GroupResult> {
  const cacheDir = o.cacheDirs[sys];
  if (cache === 'cold') {
    if (cacheDir) await fsp.rm(cacheDir, { recursive: true, force: true });
    await dropCaches();
  }
  const quiet = await settle({ maxMs: o.settleMs ?? 0 });
  const g = { ...(await runGroup(await members(ds, sys, w, n, o, profile), o.env)), hostIdle: quiet.idle };
  // Mount session directories are per mountpoint and never reused: drop them.
  if (isCairn(sys)) await fsp.rm(o.sessionsDir, { recursive: true, force: true }).catch(() => undefined);
  // Each reader verified its files (bench/verify.ts); the totals must add up as well.
  const { bytes, files } = perReader(ds, w);
  if (g.bytes !== n * bytes || g.files !== n * files) {
    throw new Error(`read ${g.bytes} bytes in ${g.files} files, expected ${n * bytes} in ${n * files}`);
  }
  return g;
}

/** Bytes and files one reader of a workload reads. */
function perReader(ds: Dataset, w: Workload): { bytes: number; files: number } {
  return w === 'big' ? { bytes: ds.bigBytes, files: 1 } : { bytes: ds.smallCount * ds.smallBytes, files: ds.smallCount };
}

function summarize(w: Workload, sys: System, cache: Cache, n: number, ds: Dataset, runs: GroupResult[]): ReadRow {
  const pick = (f: (g: GroupResult) => number | undefined): number | undefined => {
    const xs = runs.map(f).filter((x): x is number => typeof x === 'number');
    return xs.length ? median(xs) : undefined;
  };
  const mountMs = pick((g) => g.mountMs);
  const cpu = pick((g) => g.cpuSecPerGiB);
  const reqs = runs.map((g) => g.requests).filter((x): x is Record<string, RequestCost> => !!x);
  const hwm = runs.map((g) => g.daemonHwmMiB).filter((x): x is number => typeof x === 'number');
  return {
    workload: w,
    system: sys,
    cache,
    readers: n,
    MiBps: pick((g) => g.MiBps)!,
    filesPerSec: pick((g) => g.filesPerSec)!,
    ttfbMs: pick((g) => g.ttfbMs)!,
    ...(mountMs !== undefined ? { mountMs } : {}),
    ...(hwm.length ? { daemonHwmMiB: Math.max(...hwm) } : {}),
    ...(cpu !== undefined ? { cpuSecPerGiB: cpu } : {}),
    ...(reqs.length ? { requests: mergeRequests(reqs) } : {}),
    bytesPerReader: perReader(ds, w).bytes,
    filesPerReader: perReader(ds, w).files,
    runs: runs.map(({ members: _m, ...rest }) => rest),
  };
}

/**
 * Runs the whole read matrix. Order: for each workload and reader count, rounds; in each round
 * every system runs cold (Cairn first), each warm one warm right after its own cold group: before
 * the next system's cold group drops the page cache (`drop_caches`), which would leave a warm
 * group reading its files — local disk's, Cairn's host chunk cache — from disk. Round r runs only
 * the figures with more than r rounds.
 */
export async function readBench(ds: Dataset, o: ReadOptions): Promise<{ rows: ReadRow[]; failures: string[] }> {
  const rows: ReadRow[] = [];
  const failures: string[] = [];
  const order = SYSTEMS;
  const counts = [...new Set(Object.values(o.readers).flat())].sort((a, b) => a - b);
  const profiled = new Set<string>();
  for (const w of ['big', 'small'] as Workload[]) {
    for (const n of counts) {
      const acc = new Map<string, GroupResult[]>();
      const broken = new Set<System>();
      const plan: [System, Cache][] = [];
      const measured = (sys: System): boolean => !!o.readers[sys]?.includes(n) && (o.only?.(w, n, sys) ?? true);
      for (const sys of order) {
        if (!measured(sys)) continue;
        plan.push([sys, 'cold']);
        if (o.warm[sys]?.includes(n)) plan.push([sys, 'warm']);
      }
      const rounds = Math.max(0, ...plan.map(([sys, cache]) => o.runs(w, n, sys, cache)));
      for (let r = 0; r < rounds; r++) {
        for (const [sys, cache] of plan.filter(([s, c]) => r < Math.max(1, o.runs(w, n, s, c)))) {
          if (broken.has(sys)) continue;
          const name = `cairn-${w}-${cache}-${n}r`;
          const profile = o.cpuProfDir && !profiled.has(name) && sys === 'cairn' && w === 'big' && n === 1 ? name : undefined;
          if (profile) profiled.add(name);
          const key = `${sys}/${cache}`;
          try {
            const g = await once(ds, sys, w, cache, n, o, profile);
            acc.set(key, [...(acc.get(key) ?? []), g]);
            o.log(
              `  ${w.padEnd(5)} ${String(n).padStart(2)} reader(s) ${sys.padEnd(10)} ${cache}: ${g.MiBps} MiB/s, ${g.filesPerSec} files/s, ttfb ${g.ttfbMs} ms, host idle before ${g.hostIdle ?? '?'}`,
            );
          } catch (err) {
            // A failed round (a reader that got short or wrong data included) voids the figure:
            // its other rounds are dropped too, and the system is not run again at this size.
            acc.delete(key);
            broken.add(sys);
            const msg = `${w} ${n} reader(s) ${sys} ${cache}: ${(err as Error).message.split('\n').slice(0, 6).join(' | ')}`;
            failures.push(msg);
            o.log(`  FAILED ${msg}`);
          }
        }
      }
      for (const [key, runs] of acc) {
        const [sys, cache] = key.split('/') as [System, Cache];
        rows.push(summarize(w, sys, cache, n, ds, runs));
      }
    }
  }
  return { rows, failures };
}
