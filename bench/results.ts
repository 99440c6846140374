/**
 * The results of one benchmark run, as written to bench/results/*.json and published as
 * docs/benchmarks.json: their shape, and the one lookup of a read row every view uses.
 */
import type { FioResults } from './fio.js';
import type { ReadRow } from './reads.js';
import type { StoreKind } from './stores.js';
import type { System } from './systems.js';
import type { WorkloadSizes, WorkloadsResult } from './workloads.js';
import type { WriteResults } from './writes.js';

/** The real-program workloads of a run (bench/workloads.ts): each step on the mount and on local disk. */
export interface ProgramResults extends WorkloadsResult {
  /** The sizes run (QUICK or FULL of bench/workloads.ts). */
  sizes: WorkloadSizes;
  /** What the mount's volume lives on (the workloads mount a volume on the embedded file store). */
  store: string;
}

export interface Goal {
  goal: string;
  workload: string;
  readers: number;
  cairn: number;
  reference?: number;
  ratio?: number;
  target: string;
  met: boolean;
}

export interface BenchResults {
  version: 1;
  timestamp: string;
  mode: 'quick' | 'full';
  durationSec: number;
  machine: Record<string, unknown>;
  peers: { s3fs: string | null; rclone: string | null };
  dataset: {
    bigBytes: number;
    smallCount: number;
    smallBytes: number;
    cairnUploadSec: number;
    plainUploadSec: number;
    cairnFileUploadSec?: number;
  };
  /** The object store of the read matrix and the writes (absent in results written before it was chosen: s3rver). */
  store?: StoreKind;
  method: Record<string, unknown>;
  /** Seconds per step of the suite (dataset, reads, fio, writes). */
  stepSec?: Record<string, number>;
  reads: ReadRow[];
  /** fio jobs through each mount (absent in results written before fio was added). */
  fio?: FioResults;
  writes?: WriteResults;
  /** Real programs in a mount (absent when not measured: `--no-workloads`, or results from before the workload bench). */
  workloads?: ProgramResults;
  /** The output of a separate `node dist/bench/gc.js` run (./gcreport.ts), when one was published. */
  gc?: GcResults;
  failures: string[];
  goals: Goal[];
  /** How this file came to be, when it is not a run's output as written (shown on the page). */
  provenance?: string;
  profile?: {
    file: string;
    totalMs: number;
    top: { fn: string; ms: number; pct: number }[];
    modules?: { fn: string; ms: number; pct: number }[];
  }[];
}

/** The read row of one workload, system, cache state and reader count. */
export function findRead(rows: ReadRow[], w: string, sys: System, cache: string, n: number): ReadRow | undefined {
  return rows.find((r) => r.workload === w && r.system === sys && r.cache === cache && r.readers === n);
}

/** One space figure: bytes live and stored, as `cairn volume du` reports them. */
export interface GcSpace {
  liveMiB: number;
  storedMiB: number;
  ratio: number;
  deadInLivePacksMiB: number;
}

/** What bench/gc.ts prints (the `space` part is absent with `--skip-space`). */
export interface GcResults {
  /** When, where and how it ran (bench/gc.ts adds it). */
  timestamp?: string;
  machine?: { cpus: number; loadAvg: number[] };
  command?: string;
  buildMs?: number;
  rewriteMs?: number;
  space?: {
    small: number;
    bigMiB: number;
    rewrites: number;
    before: GcSpace;
    after: GcSpace;
    gcRuns: { ms: number; condemned: number; deleted: number; deletedMiB: number }[];
  };
  scale: {
    files: number;
    gcMs: number;
    gcMaxRssMiB: number;
    recordsDeleted: number;
    commit4MiBMs: { alone: number; duringGc: number | null; samplesDuringGc: number; gcNice?: number };
  };
}
