/**
 * The GC part of the published benchmarks: the results of `node dist/bench/gc.js` (space reclaimed,
 * gc of a big volume in a child process, a commit during it), kept in docs/benchmarks.json as `gc`
 * (their shape: `GcResults` in ./results.ts, their goals: ./goals.ts), and their section of
 * docs/BENCHMARKS.md. Every figure comes from those results.
 */
import type { BenchResults } from './results.js';
import { fmt, mdTable } from './tables.js';

const n = (x: number): string => x.toLocaleString('en-US');

/** The "Garbage collection" section of the page (empty without gc results). */
export function gcSection(res: BenchResults): string[] {
  const g = res.gc;
  if (!g) return [];
  const s = g.scale;
  const out = [
    '## Garbage collection',
    '',
    `\`${g.command ?? 'node dist/bench/gc.js'}\`${g.timestamp ? ` (${g.timestamp}` : ''}` +
      `${g.machine ? `${g.timestamp ? ', ' : ' ('}${g.machine.cpus} cores at load average ${g.machine.loadAvg.map((x) => fmt(x, 1)).join(' / ')})` : g.timestamp ? ')' : ''}` +
      ', on the embedded file store. A run separate from the suite above: `bench/gc.ts`, its output kept as `gc` in ' +
      '`docs/benchmarks.json` (`node dist/bench/report.js --gc GC.json` publishes one).',
    '',
  ];
  const rows: string[][] = [['measure', 'value']];
  if (g.space) {
    const sp = g.space;
    const deleted = sp.gcRuns.reduce((x, r) => x + r.deleted, 0);
    const deletedMiB = sp.gcRuns.reduce((x, r) => x + r.deletedMiB, 0);
    rows.push(
      [
        `${n(sp.small)} files of 8 KiB, a ${sp.bigMiB} MiB file rewritten ${sp.rewrites}× with fresh content, half the small files deleted: stored / live before gc (MiB)`,
        `${fmt(sp.before.storedMiB)} / ${fmt(sp.before.liveMiB)} (${fmt(sp.before.ratio, 2)}×)`,
      ],
      [
        `the same after \`gc --keep-last 1\` (${sp.gcRuns.length} runs a grace apart: ${n(deleted)} packs, ${fmt(deletedMiB)} MiB deleted)`,
        `${fmt(sp.after.storedMiB)} / ${fmt(sp.after.liveMiB)} (${fmt(sp.after.ratio, 3)}×; ${fmt(sp.after.deadInLivePacksMiB)} MiB dead inside live packs)`,
      ],
    );
  }
  rows.push(
    [
      `gc (first run: writes the checkpoint at the floor, prunes ${n(s.recordsDeleted)} records) of ${n(s.files)} files, child process: wall time`,
      `${fmt(s.gcMs / 1000, 1)} s`,
    ],
    ['the same: peak RSS of the gc process', `${n(s.gcMaxRssMiB)} MiB`],
    [
      s.commit4MiBMs.gcNice === undefined
        ? `a commit of one 4 MiB file alone / during that gc (median of 5${s.commit4MiBMs.samplesDuringGc < 5 ? `; ${s.commit4MiBMs.samplesDuringGc} during gc` : ''})`
        : `a commit of one 4 MiB file alone / during that gc (medians of 10 alone and ${s.commit4MiBMs.samplesDuringGc} during gc; gc at nice ${s.commit4MiBMs.gcNice})`,
      `${n(s.commit4MiBMs.alone)} / ${s.commit4MiBMs.duringGc === null ? '-' : n(s.commit4MiBMs.duringGc)} ms`,
    ],
  );
  out.push(mdTable(rows), '');
  const c = s.commit4MiBMs;
  if (c.duringGc !== null && c.duringGc > 2 * c.alone) {
    out.push(
      `The commit during gc took ${fmt(c.duringGc / c.alone, 2)}× as long as alone: gc is one CPU-bound process ` +
        '(reading, assembling and writing the checkpoint at the floor) that shares the cores with the committing process' +
        `${g.machine ? ` (${g.machine.cpus} cores, at load average ${fmt(g.machine.loadAvg[0]!, 1)} when the run started)` : ''}.`,
      '',
    );
  }
  return out;
}
