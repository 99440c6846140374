/**
 * The goals check: the targets of the brief (ratios of Cairn to each reference, warm reads per
 * reader, commit and reload latency flat in the volume size, daemon memory, gc: ./gcreport.ts), always recomputed
 * from the rows of a results object (test/bench/report.test.ts pins them on a fixture).
 */
import { findRead, type BenchResults, type Goal } from './results.js';
import { NAMES, type System } from './systems.js';

const r2 = (x: number): number => Math.round(x * 100) / 100;

/** The goals of the brief, per reader count, from the read rows. */
export function summarizeGoals(res: BenchResults): Goal[] {
  const goals: Goal[] = [];
  const counts = [...new Set(res.reads.map((r) => r.readers))].sort((a, b) => a - b);
  for (const n of counts) {
    const c = findRead(res.reads, 'big', 'cairn', 'cold', n);
    if (c) {
      for (const [ref, factor, target] of [
        ['s3fs', 2, '≥ 2x'],
        ['rclone', 2, '≥ 2x'],
        ['s3get', 0.9, '≥ 90%'],
      ] as [System, number, string][]) {
        const p = findRead(res.reads, 'big', ref, 'cold', n);
        if (!p) continue;
        const ratio = c.MiBps / p.MiBps;
        goals.push({
          goal: `cold big-file reads vs ${NAMES[ref]}`,
          workload: 'big',
          readers: n,
          cairn: c.MiBps,
          reference: p.MiBps,
          ratio: r2(ratio),
          target,
          met: ratio >= factor,
        });
      }
    }
    const w = findRead(res.reads, 'big', 'cairn', 'warm', n);
    if (w) {
      const per = w.MiBps / n;
      goals.push({ goal: 'warm reads per reader', workload: 'big', readers: n, cairn: r2(per), target: '≥ 1024 MiB/s', met: per >= 1024 });
    }
    const s = findRead(res.reads, 'small', 'cairn', 'cold', n);
    const sp = findRead(res.reads, 'small', 's3fs', 'cold', n);
    if (s && sp) {
      const ratio = s.filesPerSec / sp.filesPerSec;
      goals.push({
        goal: 'cold small files vs s3fs (files/s)',
        workload: 'small',
        readers: n,
        cairn: s.filesPerSec,
        reference: sp.filesPerSec,
        ratio: r2(ratio),
        target: '≥ 10x',
        met: ratio >= 10,
      });
    }
  }
  goals.push(...writeGoals(res), ...gcGoals(res));
  return goals;
}

/** Volume sizes measured by the metadata workload, from its row names ("volume of 1,000 files: …"). */
export function volumeRows(res: BenchResults, measure: string): { files: number; value: number }[] {
  const out: { files: number; value: number }[] = [];
  for (const row of res.writes?.rows ?? []) {
    const m = /^volume of ([\d,]+) files: (.+)$/.exec(row.name);
    if (m && m[2] === measure) out.push({ files: Number(m[1]!.replace(/,/g, '')), value: row.value });
  }
  return out.sort((a, b) => a.files - b.files);
}

/** Commit and reload latency flat in the volume size (within 2x), daemon RSS under 300 MiB. */
function writeGoals(res: BenchResults): Goal[] {
  const goals: Goal[] = [];
  for (const [measure, label] of [
    ['commit of 1 file', 'commit of 1 file'],
    ['reload (1 new file)', 'reload after 1 new file'],
  ] as const) {
    const rows = volumeRows(res, measure);
    if (rows.length < 2) continue;
    const values = rows.map((r) => r.value);
    const ratio = Math.max(...values) / Math.min(...values);
    const big = rows[rows.length - 1]!;
    goals.push({
      goal: `${label}: ${rows[0]!.files.toLocaleString('en-US')} vs ${big.files.toLocaleString('en-US')} files (ms; ratio max/min over all sizes)`,
      workload: 'metadata',
      readers: 1,
      cairn: big.value,
      reference: rows[0]!.value,
      ratio: r2(ratio),
      target: '≤ 2x',
      met: ratio <= 2,
    });
  }
  const rss = volumeRows(res, 'daemon peak RSS');
  const big = rss[rss.length - 1];
  if (big) {
    goals.push({
      goal: `daemon peak RSS at ${big.files.toLocaleString('en-US')} files (MiB)`,
      workload: 'metadata',
      readers: 1,
      cairn: big.value,
      target: '< 300 MiB',
      met: big.value < 300,
    });
  }
  return goals;
}

const n = (x: number): string => x.toLocaleString('en-US');

/** The goals of issue 17 from the gc results: space after gc, gc time at scale, a commit during gc. */
export function gcGoals(res: BenchResults): Goal[] {
  const g = res.gc;
  if (!g) return [];
  const goals: Goal[] = [];
  if (g.space) {
    const a = g.space.after;
    goals.push({
      goal: 'gc: stored / live bytes after gc --keep-last 1',
      workload: 'gc',
      readers: 1,
      cairn: a.storedMiB,
      reference: a.liveMiB,
      ratio: r2(a.ratio),
      target: '≤ 1.2x',
      met: a.ratio <= 1.2,
    });
  }
  const s = g.scale;
  const sec = s.gcMs / 1000;
  goals.push({ goal: `gc of ${n(s.files)} files (s)`, workload: 'gc', readers: 1, cairn: r2(sec), target: '≤ 60 s', met: sec <= 60 });
  goals.push({
    goal: `gc of ${n(s.files)} files: peak RSS (MiB)`,
    workload: 'gc',
    readers: 1,
    cairn: s.gcMaxRssMiB,
    target: '< 300 MiB',
    met: s.gcMaxRssMiB < 300,
  });
  const c = s.commit4MiBMs;
  if (c.duringGc !== null) {
    const ratio = c.duringGc / c.alone;
    goals.push({
      goal: 'commit of 4 MiB during gc vs alone (ms)',
      workload: 'gc',
      readers: 1,
      cairn: c.duringGc,
      reference: c.alone,
      ratio: r2(ratio),
      target: '≤ 2x',
      met: ratio <= 2,
    });
  }
  return goals;
}
