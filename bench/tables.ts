/**
 * Results as tables: cells of the read, fio, real-program and goal tables, rendered as aligned
 * plain text for stdout or as Markdown for the published page.
 */
import type { FioResults, FioRow } from './fio.js';
import { stepTarget, summarizeGoals } from './goals.js';
import type { ReadRow } from './reads.js';
import { findRead, type BenchResults, type Goal, type ProgramResults } from './results.js';
import { storeOf, STORE_NAMES } from './stores.js';
import { isCairn, NAMES, systemOrder, type System } from './systems.js';

export function pad(cells: string[][]): string {
  const widths = cells[0].map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')).join('\n');
}

export const fmt = (x: number | undefined, d = 1): string => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d));

/**
 * Ratio of a Cairn row to the same workload/cache/readers of each reference (Cairn on the file
 * store: to local disk and the FUSE floor only, the other references read from the run's object store).
 */
function ratios(res: BenchResults, r: ReadRow): string {
  if (!isCairn(r.system)) return '';
  const parts: string[] = [];
  for (const ref of (r.system === 'cairn' ? ['local', 'floor', 's3get', 's3fs', 'rclone'] : ['local', 'floor']) as System[]) {
    const p = findRead(res.reads, r.workload, ref, r.cache, r.readers);
    if (!p) continue;
    const key = r.workload === 'big' ? 'MiBps' : 'filesPerSec';
    parts.push(`${ref} ${fmt(r[key] / p[key], 2)}x`);
  }
  return parts.join(', ');
}

export function readTable(res: BenchResults): string[][] {
  const head = ['workload', 'cache', 'readers', 'system', 'MiB/s', 'files/s', 'TTFB ms', 'mount ms', 'daemon MiB', 'Cairn vs'];
  const rows = [...res.reads].sort(
    (a, b) =>
      a.workload.localeCompare(b.workload) ||
      a.cache.localeCompare(b.cache) ||
      a.readers - b.readers ||
      systemOrder(a.system) - systemOrder(b.system),
  );
  return [
    head,
    ...rows.map((r) => [
      r.workload === 'big'
        ? `big ${r.bytesPerReader / 2 ** 20} MiB`
        : `small ${r.filesPerReader}x${r.bytesPerReader / r.filesPerReader / 1024}K`,
      r.cache,
      String(r.readers),
      NAMES[r.system],
      fmt(r.MiBps),
      fmt(r.filesPerSec, 0),
      fmt(r.ttfbMs, 1),
      fmt(r.mountMs, 0),
      fmt(r.daemonHwmMiB, 0),
      ratios(res, r),
    ]),
  ];
}

/** Ratios of a Cairn fio row (MiB/s) to the same job on local disk and the FUSE floor (same cache state), s3fs and rclone (cold). */
function fioRatios(rows: FioRow[], r: FioRow): string {
  if (!isCairn(r.system)) return '';
  const parts: string[] = [];
  for (const ref of ['local', 'floor', 's3fs', 'rclone'] as const) {
    const p = rows.find((x) => x.system === ref && x.job === r.job && x.cache === r.cache);
    if (p && p.MiBps > 0) parts.push(`${ref} ${fmt(r.MiBps / p.MiBps, 2)}x`);
  }
  return parts.join(', ');
}

export function fioTable(fio: FioResults): string[][] {
  const rows = [...fio.rows].sort(
    (a, b) => b.job.localeCompare(a.job) || a.cache.localeCompare(b.cache) || systemOrder(a.system) - systemOrder(b.system),
  );
  return [
    ['job', 'cache', 'system', 'MiB/s', 'IOPS', 'p50 ms', 'p99 ms', 'MiB read', 's', 'Cairn vs'],
    ...rows.map((r) => [
      r.job === 'seq' ? 'seq 1M x1' : 'rand 128k x4',
      r.cache,
      NAMES[r.system],
      fmt(r.MiBps),
      fmt(r.iops, 0),
      fmt(r.p50Ms, 2),
      fmt(r.p99Ms, 2),
      fmt(r.MiB, 0),
      `${fmt(r.seconds, 1)}${r.capped ? '*' : ''}`,
      fioRatios(fio.rows, r),
    ]),
  ];
}

/**
 * Real programs in a mount: each step's local and mount milliseconds, the ratio, its goal and
 * verdict (`no` spells a missed goal; steps without a goal show '-'), and what it printed; with
 * the FUSE floor's milliseconds and Cairn's ratio to them when the run measured the floor.
 */
export function workloadTable(w: ProgramResults, no: string): string[][] {
  const floor = w.steps.some((s) => s.floorMs !== undefined);
  const floorCells = (s: ProgramResults['steps'][number]) =>
    floor ? [s.floorMs === undefined ? '-' : fmt(s.floorMs, 0), s.floorRatio === undefined ? '-' : fmt(s.floorRatio, 2)] : [];
  return [
    [
      'workload',
      'step',
      'local ms',
      ...(floor ? ['FUSE floor ms'] : []),
      'mount ms',
      'ratio',
      ...(floor ? ['vs floor'] : []),
      'goal',
      'met',
      'output',
    ],
    ...w.steps.map((s) => {
      const t = stepTarget(s);
      const [floorMs, vsFloor] = floorCells(s);
      return [
        s.workload,
        s.step,
        fmt(s.localMs, 0),
        ...(floor ? [floorMs!] : []),
        fmt(s.mountMs, 0),
        fmt(s.ratio, 2),
        ...(floor ? [vsFloor!] : []),
        t?.target ?? '-',
        t ? (s.ratio <= t.factor ? 'yes' : no) : '',
        s.out ?? '',
      ];
    }),
  ];
}

/** The goals as table cells (`no` spells a missed goal). */
export function goalTable(goals: Goal[], no: string): string[][] {
  return [
    ['goal', 'readers', 'Cairn', 'reference', 'ratio', 'target', 'met'],
    ...goals.map((g) => [g.goal, String(g.readers), fmt(g.cairn), fmt(g.reference), fmt(g.ratio, 2), g.target, g.met ? 'yes' : no]),
  ];
}

export function mdTable(cells: string[][]): string {
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  return [
    `| ${cells[0].map(esc).join(' | ')} |`,
    `|${cells[0].map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`,
    ...cells.slice(1).map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n');
}

/** The stdout table. */
export function table(res: BenchResults): string {
  const out = [`Cairn benchmarks (${res.mode}, ${res.durationSec} s, ${STORE_NAMES[storeOf(res)]})`, '', pad(readTable(res))];
  if (res.fio?.rows.length) out.push('', `fio through each mount (${res.fio.version}; * = stopped by --runtime)`, pad(fioTable(res.fio)));
  else if (res.fio?.skipped) out.push('', `fio: skipped (${res.fio.skipped})`);
  if (res.writes?.rows.length) {
    out.push(
      '',
      pad([['write / metadata', 'value', 'unit'], ...res.writes.rows.map((w) => [w.name, fmt(w.value, w.value < 10 ? 2 : 1), w.unit])]),
    );
  }
  if (res.workloads?.steps.length) {
    const checks = Object.entries(res.workloads.verify).map(([k, v]) => `${k} ${v === 'ok' ? 'ok' : 'FAILED'}`);
    out.push('', 'real programs in a mount vs local disk', pad(workloadTable(res.workloads, 'NO')));
    out.push(`after commit (${res.workloads.commitMs} ms) and remount: ${checks.join(', ')}`);
  }
  const goals = summarizeGoals(res);
  if (goals.length) out.push('', pad(goalTable(goals, 'NO')));
  if (res.failures.length) out.push('', 'failures:', ...res.failures.map((f) => `  ${f}`));
  return out.join('\n');
}

/** Request types shown first in the costs table (others follow by total time). */
const COST_FIRST = ['read', 'read_native', 'open', 'lookup', 'getattr', 'readdir', 'release'];

/**
 * Cairn's daemon costs, per read group and fio job that recorded them: CPU seconds per GiB read
 * and, per FUSE request type, mean µs and count (`read_native`: READs the native addon answered
 * without JavaScript). Undefined when no row has them (older results files).
 *
 * @example const t = costTable(res); if (t) lines.push(mdTable(t));
 */
export function costTable(res: BenchResults): string[][] | undefined {
  type Costly = {
    label: string;
    cache: string;
    readers: string;
    system: System;
    cpu?: number;
    requests?: Record<string, { n: number; us: number }>;
  };
  const rows: Costly[] = [];
  const reads = [...res.reads].sort(
    (a, b) =>
      a.workload.localeCompare(b.workload) ||
      a.cache.localeCompare(b.cache) ||
      a.readers - b.readers ||
      systemOrder(a.system) - systemOrder(b.system),
  );
  for (const r of reads) {
    if (r.cpuSecPerGiB === undefined && !r.requests) continue;
    const label =
      r.workload === 'big'
        ? `big ${r.bytesPerReader / 2 ** 20} MiB`
        : `small ${r.filesPerReader}x${r.bytesPerReader / r.filesPerReader / 1024}K`;
    rows.push({ label, cache: r.cache, readers: String(r.readers), system: r.system, cpu: r.cpuSecPerGiB, requests: r.requests });
  }
  for (const r of res.fio?.rows ?? []) {
    if (r.cpuSecPerGiB === undefined && !r.requests) continue;
    rows.push({
      label: `fio ${r.job === 'seq' ? 'seq 1M x1' : 'rand 128k x4'}`,
      cache: r.cache,
      readers: r.job === 'seq' ? '1' : '4',
      system: r.system,
      cpu: r.cpuSecPerGiB,
      requests: r.requests,
    });
  }
  if (!rows.length) return undefined;
  const reqCell = (q: Record<string, { n: number; us: number }> | undefined): string => {
    if (!q) return '-';
    const ops = Object.keys(q).sort((a, b) => {
      const ia = COST_FIRST.indexOf(a);
      const ib = COST_FIRST.indexOf(b);
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || q[b]!.n * q[b]!.us - q[a]!.n * q[a]!.us;
    });
    return ops.map((op) => `${op} ${fmt(q[op]!.us, 0)} µs ×${q[op]!.n}`).join(', ');
  };
  return [
    ['workload', 'cache', 'readers', 'system', 'daemon CPU s/GiB', 'µs per request (count)'],
    ...rows.map((r) => [r.label, r.cache, r.readers, NAMES[r.system], fmt(r.cpu, 2), reqCell(r.requests)]),
  ];
}
