/**
 * The goals check: the targets of the brief (ratios of Cairn to each reference, warm reads per
 * reader, commit and reload latency flat in the volume size, daemon memory, real programs in a
 * mount within a small factor of local disk, gc: ./gcreport.ts), always recomputed from the rows
 * of a results object (test/bench/report.test.ts pins them on a fixture).
 */
import { findRead, type BenchResults, type Goal } from './results.js';
import { NAMES, type System } from './systems.js';
import type { StepResult } from './workloads.js';

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
  goals.push(...fuseGoals(res));
  goals.push(...writeGoals(res), ...gcGoals(res));
  goals.push(...programGoals(res));
  return goals;
}

/**
 * The ratio goal of one real-program step (issue 20), if it has one: metadata workloads (git add
 * and clone, creates, `ls -l`, `tar -x`, both `rsync -a`) at most 3x local disk, SQLite at most 4x.
 *
 * @example
 *   stepTarget({ workload: 'git', step: 'clone', ... }) // { factor: 3, target: '≤ 3x' }
 */
export function stepTarget(s: Pick<StepResult, 'workload' | 'step'>): { factor: number; target: string } | undefined {
  const metadata =
    s.workload === 'creates' ||
    s.workload === 'rsync' ||
    (s.workload === 'git' && (s.step.startsWith('add') || s.step === 'clone')) ||
    (s.workload === 'tar' && s.step.startsWith('extract'));
  if (metadata) return { factor: 3, target: '≤ 3x' };
  if (s.workload.startsWith('sqlite')) return { factor: 4, target: '≤ 4x' };
  return undefined;
}

/** Files the no-op `rsync -a` changed on the mount (the first number it printed), if it ran. */
export function noopRsyncChanges(res: BenchResults): number | undefined {
  const s = res.workloads?.steps.find((x) => x.workload === 'rsync' && x.step.startsWith('no-op'));
  const m = /^\d+/.exec(s?.out ?? '');
  return s ? (m ? Number(m[0]) : NaN) : undefined;
}

/** Real programs in a mount: each step's ratio, the no-op rsync's 0, every check after remount. */
function programGoals(res: BenchResults): Goal[] {
  const w = res.workloads;
  if (!w) return [];
  const goals: Goal[] = [];
  for (const s of w.steps) {
    const t = stepTarget(s);
    if (!t) continue;
    goals.push({
      goal: `${s.workload}: ${s.step} (ms, mount vs local disk)`,
      workload: 'programs',
      readers: 1,
      cairn: s.mountMs,
      reference: s.localMs,
      ratio: s.ratio,
      target: t.target,
      met: s.ratio <= t.factor,
    });
  }
  const changes = noopRsyncChanges(res);
  if (changes !== undefined) {
    goals.push({
      goal: 'no-op rsync -a: files transferred',
      workload: 'programs',
      readers: 1,
      cairn: changes,
      target: '0',
      met: changes === 0,
    });
  }
  const checks = Object.values(w.verify);
  if (checks.length) {
    const ok = checks.filter((v) => v === 'ok').length;
    goals.push({
      goal: 'workloads intact after commit and remount (of all)',
      workload: 'programs',
      readers: 1,
      cairn: ok,
      reference: checks.length,
      target: 'all',
      met: ok === checks.length,
    });
  }
  return goals;
}

/** The warm aggregate of 4 readers of the big file when issue 14 was filed (fuse-native, s3rver, MiB/s). */
export const ISSUE14_WARM4_MIBPS = 659.6;

/**
 * The goals of issue 14 (the native FUSE binding): warm big-file reads (1 reader; 4 readers
 * against the aggregate of the run that filed it), warm small files, `find` over 100,000 files,
 * `cp` of 10,000 small files into a mount before the commit, fio random 128 KiB × 4 warm.
 */
function fuseGoals(res: BenchResults): Goal[] {
  const goals: Goal[] = [];
  // The absolute targets show the FUSE floor (./fusefloor.ts: libfuse's C passthrough over local disk,
  // same cache state) as their reference when the run measured it.
  const floorOf = (c: { workload: 'big' | 'small'; cache: 'cold' | 'warm'; readers: number }, key: 'MiBps' | 'filesPerSec', v: number) => {
    const f = findRead(res.reads, c.workload, 'floor', c.cache, c.readers);
    return f && f[key] > 0 ? { reference: f[key], ratio: r2(v / f[key]) } : {};
  };
  const w1 = findRead(res.reads, 'big', 'cairn', 'warm', 1);
  if (w1)
    goals.push({
      goal: 'warm big-file read, fresh mount (MiB/s)',
      workload: 'big',
      readers: 1,
      cairn: w1.MiBps,
      ...floorOf(w1, 'MiBps', w1.MiBps),
      target: '≥ 1,500',
      met: w1.MiBps >= 1500,
    });
  const w4 = findRead(res.reads, 'big', 'cairn', 'warm', 4);
  if (w4) {
    const ratio = w4.MiBps / ISSUE14_WARM4_MIBPS;
    goals.push({
      goal: 'warm big-file reads, aggregate vs issue 14 (MiB/s)',
      workload: 'big',
      readers: 4,
      cairn: w4.MiBps,
      reference: ISSUE14_WARM4_MIBPS,
      ratio: r2(ratio),
      target: '≥ 3x',
      met: ratio >= 3,
    });
  }
  for (const s of res.reads.filter((r) => r.workload === 'small' && r.system === 'cairn' && r.cache === 'warm' && r.readers === 1)) {
    goals.push({
      goal: 'warm small files, 8 in flight (files/s)',
      workload: 'small',
      readers: 1,
      cairn: s.filesPerSec,
      ...floorOf(s, 'filesPerSec', s.filesPerSec),
      target: '≥ 8,000',
      met: s.filesPerSec >= 8000,
    });
  }
  const find = volumeRows(res, 'stat+readdir all (find)').find((r) => r.files === 100_000);
  if (find)
    goals.push({
      goal: 'find over 100,000 files (s)',
      workload: 'find',
      readers: 1,
      cairn: find.value,
      target: '≤ 3 s',
      met: find.value <= 3,
    });
  const cp = res.writes?.rows.find((r) => r.name === 'mount write 10000 files x 16 KiB: write (cp)');
  if (cp && cp.value > 0) {
    const rate = Math.round(10_000 / cp.value);
    // The reference: the same cp through the FUSE floor, in the same run (bench/writes.ts).
    const floor = res.writes?.rows.find((r) => r.name === 'FUSE floor write 10000 files x 16 KiB: write (cp)');
    const floorRate = floor && floor.value > 0 ? Math.round(10_000 / floor.value) : undefined;
    goals.push({
      goal: 'cp -r of 10,000 × 16 KiB into a mount (files/s)',
      workload: 'writes',
      readers: 1,
      cairn: rate,
      ...(floorRate ? { reference: floorRate, ratio: r2(rate / floorRate) } : {}),
      target: '≥ 5,000',
      met: rate >= 5000,
    });
  }
  const rand = res.fio?.rows.find((r) => r.system === 'cairn' && r.job === 'rand' && r.cache === 'warm');
  const randFloor = res.fio?.rows.find((r) => r.system === 'floor' && r.job === 'rand' && r.cache === 'warm');
  if (rand)
    goals.push({
      goal: 'fio random 128 KiB × 4 jobs, warm (MiB/s)',
      workload: 'fio',
      readers: 4,
      cairn: rand.MiBps,
      ...(randFloor && randFloor.MiBps > 0 ? { reference: randFloor.MiBps, ratio: r2(rand.MiBps / randFloor.MiBps) } : {}),
      target: '≥ 1,000',
      met: rand.MiBps >= 1000,
    });
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
