/**
 * The real programs' part of the published benchmarks (bench/workloads.ts): their section of
 * docs/BENCHMARKS.md, and what the FUSE floor (bench/fusefloor.ts) says of their missed goals.
 * Every figure comes from the results.
 */
import { noopRsyncChanges } from './goals.js';
import type { BenchResults, Goal } from './results.js';
import { fmt, mdTable, workloadTable } from './tables.js';
import type { StepResult } from './workloads.js';

/**
 * The "Real programs in a mount" section: each step on local disk and in a mount, its goal and
 * verdict, and the checks after commit and remount; "not measured" when the results lack them.
 */
export function programsSection(res: BenchResults): string[] {
  const out = ['## Real programs in a mount', ''];
  const w = res.workloads;
  if (!w?.steps.length) {
    const failed = res.failures.some((f) => f.startsWith('workloads:'));
    return [
      ...out,
      failed
        ? 'Not measured in this run: the workloads failed (see Failures in this run).'
        : 'Not measured in this run (run without the workloads: `--no-workloads`, or results from before `bench/workloads.ts`).',
      '',
    ];
  }
  const z = w.sizes;
  const checks = Object.entries(w.verify);
  const failed = checks.filter(([, v]) => v !== 'ok').map(([k]) => k);
  const changes = noopRsyncChanges(res);
  out.push(
    '`bench/workloads.ts`: each step is a bash child process, run first in a directory on local disk (the temp disk) ' +
      `and then in a Cairn mount of a fresh volume on ${w.store === 'file' ? 'the embedded file store (`file://`, on the same disk)' : w.store}, ` +
      'served by the daemon `cairn mount` starts; the ratio is mount / local. ' +
      (w.steps.some((s) => s.floorMs !== undefined)
        ? "In between, on the FUSE floor: libfuse's own C passthrough (`passthrough_ll` from libfuse3-dev's examples, " +
          '`-o cache=always`, no writeback cache, a fresh mount per workload) over a directory on the same disk, which pays only the round trips ' +
          'through the kernel that any FUSE file system pays on this machine (`bench/fusefloor.ts`); "vs floor" is mount / floor. '
        : w.floorError
          ? `The FUSE floor was not measured: ${w.floorError}. `
          : '') +
      `Sizes: git over ${z.gitFiles.toLocaleString('en-US')} files (init, add, commit, status, clone); ` +
      `SQLite ${z.sqliteRows.toLocaleString('en-US')} rows in transactions of 1,000 with a rolled-back delete and an index, ` +
      'with the rollback journal (`sqlite-delete`), WAL, and WAL with a reader polling every 10 ms; ' +
      `\`tar -x\` and \`tar -c\` of a generated tree of ${z.treeEntries.toLocaleString('en-US')} entries, \`rsync -a\` of the same tree in ` +
      `and a second, no-op \`rsync -a\`; ${z.creates.toLocaleString('en-US')} creates then \`ls -l\`; \`make -j2\` of ` +
      `${z.cFiles} C files and a no-op rebuild; \`python3 -m venv\`.`,
    '',
    `Then one commit of everything the steps wrote (${w.commitMs} ms) and a remount, and the checks: git fsck and a clean ` +
      'status, SQLite `integrity_check` and row counts, `tar -d` against the archive (contents and mtimes), a further ' +
      '`rsync -a --itemize-changes` that must list nothing, `make -q`, the venv importing pip, the count of created files. ' +
      (failed.length ? `Failed: ${failed.join(', ')} (see Failures in this run); ` : 'All passed; ') +
      `the no-op \`rsync -a\` changed ${changes === undefined ? 'nothing measured' : `${changes} file(s)`}. ` +
      'Goals (issue 20): metadata steps (git add and clone, creates, `ls -l`, `tar -x`, `rsync -a`) ≤ 3x local, SQLite ≤ 4x, ' +
      'the no-op rsync transfers 0 files, every check passes; the other steps are shown without a goal.',
    '',
    mdTable(workloadTable(w, '**no**')),
    '',
  );
  return out;
}

/**
 * What the FUSE floor says of the programs' missed goals: the steps whose goal even libfuse's C
 * passthrough misses (the round trips alone are over it), and Cairn's ratio to the floor.
 */
export function floorNote(res: BenchResults, slow: Goal[]): string {
  const steps = res.workloads?.steps.filter((s) => s.floorMs !== undefined) ?? [];
  const over = slow
    .map((g) => ({ g, s: steps.find((s) => g.goal.startsWith(`${s.workload}: ${s.step} `)) }))
    .filter((x): x is { g: Goal; s: StepResult } => x.s !== undefined);
  if (!over.length) return '';
  const factor = (g: Goal) => Number(/[\d.]+/.exec(g.target)?.[0]);
  const bound = over.filter(({ g, s }) => s.floorMs! / s.localMs > factor(g));
  const step = (s: StepResult) => `${s.workload}: ${s.step}`;
  return (
    " On the FUSE floor (libfuse's C passthrough, the same steps in the same run) " +
    (bound.length
      ? `${bound.length} of these steps ${bound.length === 1 ? 'misses' : 'miss'} the goal too, before any work of Cairn's: ` +
        bound.map(({ s }) => `${step(s)} ${fmt(s.floorMs! / s.localMs, 2)}× local`).join(', ') +
        '; '
      : 'every one of these steps meets its goal; ') +
    `Cairn is ${over.map(({ s }) => `${fmt(s.floorRatio!, 2)}×`).join(', ')} the floor on them (${over.map(({ s }) => step(s)).join(', ')}).`
  );
}
