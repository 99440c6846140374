/**
 * `cairn stats DIR`: a mount's live figures, one line per interval (like `vmstat` or
 * `juicefs stats`): FUSE operations, bytes read and written, chunk cache hits, store GETs,
 * commits and reloads per second. The daemon counts (src/util/metrics.ts) and reports a snapshot
 * in its `status`; this module only takes differences.
 */
import { type MetricsSnapshot, metricTotal } from '../util/metrics.js';

/** The figures of one interval, per second (hit rate and latency as measured in it). */
export interface StatsRow {
  opsPerSec: number;
  errorsPerSec: number;
  readBytesPerSec: number;
  writeBytesPerSec: number;
  /** Mean FUSE answer time in the interval, ms (null without operations). */
  opMs: number | null;
  /** Chunk cache hits / lookups in the interval (null without lookups). */
  cacheHitRate: number | null;
  storeGetsPerSec: number;
  commits: number;
  reloads: number;
}

const delta = (a: MetricsSnapshot, b: MetricsSnapshot, name: string): number => Math.max(0, metricTotal(b, name) - metricTotal(a, name));

/**
 * The per-second figures between two snapshots taken `seconds` apart.
 * @example statsRow(prev, cur, 1).opsPerSec
 */
export function statsRow(prev: MetricsSnapshot, cur: MetricsSnapshot, seconds: number): StatsRow {
  const s = Math.max(seconds, 1e-3);
  const ops = delta(prev, cur, 'cairn_fuse_ops_total');
  const opSec = delta(prev, cur, 'cairn_fuse_op_seconds_sum');
  const hits = delta(prev, cur, 'cairn_cache_hits_total');
  const misses = delta(prev, cur, 'cairn_cache_misses_total');
  const syncs = (kind: string): number =>
    Math.max(0, (cur[`cairn_syncs_total{kind="${kind}",result="ok"}`] ?? 0) - (prev[`cairn_syncs_total{kind="${kind}",result="ok"}`] ?? 0));
  return {
    opsPerSec: ops / s,
    errorsPerSec: delta(prev, cur, 'cairn_fuse_errors_total') / s,
    readBytesPerSec: delta(prev, cur, 'cairn_read_bytes_total') / s,
    writeBytesPerSec: delta(prev, cur, 'cairn_write_bytes_total') / s,
    opMs: ops > 0 ? (opSec / ops) * 1000 : null,
    cacheHitRate: hits + misses > 0 ? hits / (hits + misses) : null,
    storeGetsPerSec: delta(prev, cur, 'cairn_store_gets_total') / s,
    commits: syncs('commit'),
    reloads: syncs('reload'),
  };
}

const COLUMNS: [string, number][] = [
  ['time', 8],
  ['ops/s', 8],
  ['err/s', 6],
  ['avg ms', 7],
  ['read/s', 9],
  ['write/s', 9],
  ['cache hit', 9],
  ['GET/s', 7],
  ['commits', 7],
  ['reloads', 7],
];

function rate(bytes: number): string {
  if (bytes < 1024) return `${Math.round(bytes)}B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)}${units[i]}`;
}

const pad = (cells: string[]): string => cells.map((c, i) => c.padStart(COLUMNS[i]![1])).join(' ');

/** The header line of the human layout. */
export function statsHeader(): string {
  return pad(COLUMNS.map(([h]) => h));
}

/** One row of the human layout. */
export function formatStatsRow(r: StatsRow, at: Date): string {
  return pad([
    at.toTimeString().slice(0, 8),
    r.opsPerSec >= 100 ? String(Math.round(r.opsPerSec)) : r.opsPerSec.toFixed(1),
    r.errorsPerSec.toFixed(r.errorsPerSec >= 10 ? 0 : 1),
    r.opMs === null ? '-' : r.opMs.toFixed(r.opMs >= 10 ? 0 : 2),
    rate(r.readBytesPerSec),
    rate(r.writeBytesPerSec),
    r.cacheHitRate === null ? '-' : `${(r.cacheHitRate * 100).toFixed(1)}%`,
    r.storeGetsPerSec.toFixed(r.storeGetsPerSec >= 10 ? 0 : 1),
    String(r.commits),
    String(r.reloads),
  ]);
}

/** Options of `cairn stats`. */
export interface StatsOptions {
  /** Seconds between rows (default 1). */
  interval: number;
  /** Stop after this many rows (default: until interrupted). */
  count?: number;
  /** One JSON object per row instead of the table. */
  json: boolean;
}

/**
 * Prints a row every `interval` seconds from the snapshots `sample` returns (the mount's status).
 * @example await runStats(() => mountSnapshot('/data'), { interval: 1, json: false }, console.log);
 */
export async function runStats(sample: () => Promise<MetricsSnapshot>, opts: StatsOptions, print: (line: string) => void): Promise<void> {
  let prev = await sample();
  let prevAt = performance.now();
  for (let i = 0; opts.count === undefined || i < opts.count; i++) {
    if (!opts.json && i % 20 === 0) print(statsHeader());
    await new Promise((r) => setTimeout(r, opts.interval * 1000));
    const cur = await sample();
    const now = performance.now();
    const row = statsRow(prev, cur, (now - prevAt) / 1000);
    print(opts.json ? JSON.stringify({ at: new Date().toISOString(), ...row }) : formatStatsRow(row, new Date()));
    prev = cur;
    prevAt = now;
  }
}
