/**
 * The benchmark report on a fixed results file (test/bench/fixtures/results.json, hand-made so
 * that every verdict can be checked by hand, with goals exactly at their thresholds): the goal
 * ratios and met/missed verdicts, key cells of the tables, the sentences computed from the
 * figures, and that the published docs/BENCHMARKS.md and docs/benchmarks.svg are exactly what the
 * report renders from docs/benchmarks.json (so no figure on the page is typed in).
 */
import assert from 'node:assert/strict';
import { measureCosts, mergeRequests } from '../../bench/costs.js';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'node:test';
import { svgChart } from '../../bench/chart.js';
import { summarizeGoals } from '../../bench/goals.js';
import { gcGoals } from '../../bench/goals.js';
import type { GcResults } from '../../bench/results.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { PUBLISHED_JSON, renderDocs, renderMarkdown } from '../../bench/report.js';
import type { BenchResults } from '../../bench/results.js';
import { defaultStore, storeOf } from '../../bench/stores.js';
import { table } from '../../bench/tables.js';
import type { StepResult } from '../../bench/workloads.js';

import { fixture, ROOT, section } from '../helpers/benchpage.js';

test('goals: ratios and verdicts from the read and metadata rows', async () => {
  const got = summarizeGoals(await fixture()).map((g) => [g.readers, g.goal, g.cairn, g.reference, g.ratio, g.target, g.met]);
  assert.deepEqual(got, [
    [1, 'cold big-file reads vs s3fs', 288, 96, 3, '≥ 2x', true],
    [1, 'cold big-file reads vs rclone mount', 288, 192, 1.5, '≥ 2x', false],
    // Exactly at the threshold: met.
    [1, 'cold big-file reads vs raw GetObject', 288, 320, 0.9, '≥ 90%', true],
    [1, 'warm reads per reader', 1024, undefined, undefined, '≥ 1024 MiB/s', true],
    [1, 'cold small files vs s3fs (files/s)', 1200, 100, 12, '≥ 10x', true],
    [4, 'cold big-file reads vs s3fs', 300, 150, 2, '≥ 2x', true],
    [4, 'cold big-file reads vs rclone mount', 300, 100, 3, '≥ 2x', true],
    [4, 'cold big-file reads vs raw GetObject', 300, 400, 0.75, '≥ 90%', false],
    // 2000 MiB/s over 4 readers.
    [4, 'warm reads per reader', 500, undefined, undefined, '≥ 1024 MiB/s', false],
    [4, 'cold small files vs s3fs (files/s)', 1500, 200, 7.5, '≥ 10x', false],
    // Issue 14's goals: 4 readers against the warm aggregate of the run that filed it (659.6 MiB/s).
    [1, 'warm big-file read, fresh mount (MiB/s)', 1024, undefined, undefined, '≥ 1,500', false],
    [4, 'warm big-file reads, aggregate vs issue 14 (MiB/s)', 2000, 659.6, 3.03, '≥ 3x', true],
    [1, 'warm small files, 8 in flight (files/s)', 2400, undefined, undefined, '≥ 8,000', false],
    [1, 'commit of 1 file: 1,000 vs 100,000 files (ms; ratio max/min over all sizes)', 12, 8, 1.5, '≤ 2x', true],
    [1, 'reload after 1 new file: 1,000 vs 100,000 files (ms; ratio max/min over all sizes)', 11, 5, 2.2, '≤ 2x', false],
    [1, 'daemon peak RSS at 100,000 files (MiB)', 150, undefined, undefined, '< 300 MiB', true],
  ]);
});

test('page: table cells, goal verdicts and failures; goals recomputed, never taken from the file', async () => {
  const res = await fixture();
  // A results file claiming every goal met changes nothing: the verdicts come from the rows.
  res.goals = summarizeGoals(res).map((g) => ({ ...g, met: true, ratio: 99 }));
  const md = renderMarkdown(res);
  const reads = section(md, '## Parallel reads');
  assert.ok(
    reads.includes('| big 64 MiB | cold | 1 | Cairn | 288.0 | 5 | 10.0 | 400 | 200 | local 0.58x, s3get 0.90x, s3fs 3.00x, rclone 1.50x |'),
  );
  assert.ok(
    reads.includes('| big 64 MiB | cold | 4 | Cairn | 300.0 | 5 | 10.0 | 400 | 200 | local 0.25x, s3get 0.75x, s3fs 2.00x, rclone 3.00x |'),
  );
  assert.ok(reads.includes('| small 200x16K | cold | 1 | Cairn | 18.8 | 1200 | 5.0 | 400 | 200 | local 0.13x, s3get 3.00x, s3fs 12.00x |'));
  assert.ok(reads.includes('| big 64 MiB | cold | 1 | s3fs | 96.0 | 2 | 10.0 | 80 | 10 |  |'));
  const fio = section(md, '## fio through each mount');
  assert.ok(fio.includes('| seq 1M x1 | cold | Cairn | 100.0 | 100 | 2.00 | 9.00 | 64 | 0.6 | local 0.25x |'));
  assert.ok(fio.includes('| rand 128k x4 | cold | rclone mount | 10.0 | 80 | 20.00 | 90.00 | 30 | 3.0* |  |'));
  const goals = section(md, '## Goals');
  assert.ok(goals.includes('| cold big-file reads vs s3fs | 1 | 288.0 | 96.0 | 3.00 | ≥ 2x | yes |'));
  assert.ok(goals.includes('| cold big-file reads vs rclone mount | 1 | 288.0 | 192.0 | 1.50 | ≥ 2x | **no** |'));
  assert.ok(goals.includes('| cold big-file reads vs raw GetObject | 1 | 288.0 | 320.0 | 0.90 | ≥ 90% | yes |'));
  assert.ok(goals.includes('| cold big-file reads vs raw GetObject | 4 | 300.0 | 400.0 | 0.75 | ≥ 90% | **no** |'));
  assert.ok(goals.includes('| warm reads per reader | 4 | 500.0 | - | - | ≥ 1024 MiB/s | **no** |'));
  assert.ok(goals.includes('| cold small files vs s3fs (files/s) | 1 | 1200.0 | 100.0 | 12.00 | ≥ 10x | yes |'));
  assert.ok(
    goals.includes(
      '| reload after 1 new file: 1,000 vs 100,000 files (ms; ratio max/min over all sizes) | 1 | 11.0 | 5.0 | 2.20 | ≤ 2x | **no** |',
    ),
  );
  assert.equal((goals.match(/\*\*no\*\*/g) ?? []).length, 7);
  assert.ok(
    section(md, '## Failures in this run').includes('- small 4 reader(s) rclone cold: f000007.bin: read 16383 bytes, expected 16384'),
  );
  assert.ok(md.includes('For volumes of 1,000 and 100,000 files'));
  assert.ok(md.includes('Every reader checks what it reads against the dataset'));

  const text = table(res);
  assert.match(text, /^cold big-file reads vs rclone mount +1 +288\.0 +192\.0 +1\.50 +≥ 2x +NO$/m);
  assert.match(text, /^cold big-file reads vs s3fs +4 +300\.0 +150\.0 +2\.00 +≥ 2x +yes$/m);
  assert.equal((text.match(/ NO$/gm) ?? []).length, 7);
});

test('page: the notes on missed goals are computed from the figures', async () => {
  const res = await fixture();
  const notes = section(renderMarkdown(res), '### Where goals are missed');
  assert.ok(
    notes.includes(
      '**Cold big-file reads**, 1 reader: Cairn on s3rver 288 MiB/s; raw GetObject 320 MiB/s (Cairn 90% of it), s3fs 96 MiB/s (Cairn 300% of it)',
    ),
  );
  // 400 MiB/s on the file store is faster than every reference from s3rver (at most 320).
  assert.ok(notes.includes('reads 400 MiB/s cold (1.39× Cairn on s3rver), faster than every reference reading from s3rver'));
  assert.ok(
    notes.includes(
      'Cairn 1200 files/s, 3.00× raw GetObject (400 files/s, one GET per file, 8 in flight), 12.00× s3fs (100 files/s); warm 2400 files/s, so cold reaches 50% of warm',
    ),
  );
  assert.ok(notes.includes('reach 2600 files/s at best in this run (Cairn (file store))'));
  assert.ok(notes.includes('Rounds of the figures measured more than once ranged: Cairn big cold ×1 250.0–300.0 MiB/s.'));
  assert.ok(notes.includes('Load average 1.5 / 1.25 / 1 on 2 cores'));
  assert.doesNotMatch(notes, /~/, 'no approximate figure typed in');

  // When the file store is slower than a reference, the note draws no conclusion from it.
  res.reads.find((r) => r.system === 'cairn-file' && r.cache === 'cold')!.MiBps = 300;
  assert.ok(!renderMarkdown(res).includes('faster than every reference'));
  // Results from readers that did not verify what they read say so.
  delete res.method.verify;
  assert.ok(renderMarkdown(res).includes('did not check them against the dataset'));
});

test('docs/BENCHMARKS.md and docs/benchmarks.svg are exactly the rendering of docs/benchmarks.json', async () => {
  const published = JSON.parse(await fsp.readFile(path.join(ROOT, PUBLISHED_JSON), 'utf8')) as BenchResults;
  const md = await fsp.readFile(path.join(ROOT, 'docs', 'BENCHMARKS.md'), 'utf8');
  assert.ok(
    md === renderMarkdown(published),
    'docs/BENCHMARKS.md differs from its rendering: run `node dist/bench/report.js docs/benchmarks.json`',
  );
  assert.equal(await fsp.readFile(path.join(ROOT, 'docs', 'benchmarks.svg'), 'utf8'), `${svgChart(published)}\n`);
  assert.deepEqual(published.goals, summarizeGoals(published), 'the goals stored with the results are the computed ones');
});

test('renderDocs publishes the results file, the page and the chart together', async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'cairn-bench-report-'));
  try {
    const res = await fixture();
    await renderDocs(res, dir);
    assert.deepEqual(JSON.parse(await fsp.readFile(path.join(dir, path.basename(PUBLISHED_JSON)), 'utf8')), res);
    assert.equal(await fsp.readFile(path.join(dir, 'BENCHMARKS.md'), 'utf8'), renderMarkdown(res));
    assert.match(await fsp.readFile(path.join(dir, 'benchmarks.svg'), 'utf8'), /^<svg [^]*<\/svg>\n$/);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

/** The fixture with a hand-made workloads part: ratios at, under and over each goal's threshold. */
async function withWorkloads(): Promise<BenchResults> {
  const res = await fixture();
  const step = (workload: string, step: string, localMs: number, mountMs: number, out?: string): StepResult => ({
    workload,
    step,
    localMs,
    mountMs,
    ratio: Math.round((mountMs / localMs) * 100) / 100,
    ...(out === undefined ? {} : { out }),
  });
  res.workloads = {
    sizes: { gitFiles: 300, sqliteRows: 10_000, treeEntries: 2_000, creates: 1_000, cFiles: 10 },
    store: 'file',
    steps: [
      step('creates', 'create 1000', 100, 300), // exactly 3x: met
      step('creates', 'ls -l 1000', 10, 40, '1001'),
      step('tar', 'extract 2000', 200, 400),
      step('tar', 'create 2000', 10, 100, '2017280'), // no goal
      step('rsync', 'rsync -a 2000', 100, 301),
      step('rsync', 'no-op rsync -a', 20, 30, '0'),
      step('git', 'init', 10, 80), // no goal
      step('git', 'add -A 300', 100, 200),
      step('git', 'clone', 100, 350),
      step('sqlite-delete', '10000 rows', 100, 400, '10000'), // exactly 4x: met
      step('sqlite-wal', '10000 rows', 100, 450, '10000'),
      step('venv', 'python3 -m venv', 1000, 1500),
    ],
    verify: { creates: 'ok', tar: 'ok', rsync: 'ok', git: 'FAILED fsck', 'sqlite-delete': 'ok', 'sqlite-wal': 'ok', venv: 'ok' },
    commitMs: 1234,
  };
  return res;
}

test('goals: real programs in a mount, each step against its threshold; the no-op rsync; the checks', async () => {
  const res = await withWorkloads();
  const got = summarizeGoals(res)
    .filter((g) => g.workload === 'programs')
    .map((g) => [g.goal, g.cairn, g.reference, g.ratio, g.target, g.met]);
  assert.deepEqual(got, [
    ['creates: create 1000 (ms, mount vs local disk)', 300, 100, 3, '≤ 3x', true],
    ['creates: ls -l 1000 (ms, mount vs local disk)', 40, 10, 4, '≤ 3x', false],
    ['tar: extract 2000 (ms, mount vs local disk)', 400, 200, 2, '≤ 3x', true],
    ['rsync: rsync -a 2000 (ms, mount vs local disk)', 301, 100, 3.01, '≤ 3x', false],
    ['rsync: no-op rsync -a (ms, mount vs local disk)', 30, 20, 1.5, '≤ 3x', true],
    ['git: add -A 300 (ms, mount vs local disk)', 200, 100, 2, '≤ 3x', true],
    ['git: clone (ms, mount vs local disk)', 350, 100, 3.5, '≤ 3x', false],
    ['sqlite-delete: 10000 rows (ms, mount vs local disk)', 400, 100, 4, '≤ 4x', true],
    ['sqlite-wal: 10000 rows (ms, mount vs local disk)', 450, 100, 4.5, '≤ 4x', false],
    ['no-op rsync -a: files transferred', 0, undefined, undefined, '0', true],
    ['workloads intact after commit and remount (of all)', 6, 7, undefined, 'all', false],
  ]);
  // A no-op rsync that changed files misses its goal (the first number it printed is the count).
  res.workloads!.steps.find((s) => s.step === 'no-op rsync -a')!.out = '3 >f.st...... d000/e000/f01.txt';
  const noop = summarizeGoals(res).find((g) => g.goal === 'no-op rsync -a: files transferred')!;
  assert.deepEqual([noop.cairn, noop.met], [3, false]);
  // Results without the workloads have no such goals.
  assert.ok(!summarizeGoals(await fixture()).some((g) => g.workload === 'programs'));
});

test('page: "Real programs in a mount", each step with its goal and verdict; "not measured" when absent', async () => {
  const res = await withWorkloads();
  const md = renderMarkdown(res);
  const sec = section(md, '## Real programs in a mount');
  assert.ok(sec.includes('| workload | step | local ms | mount ms | ratio | goal | met | output |'));
  assert.ok(sec.includes('| creates | create 1000 | 100 | 300 | 3.00 | ≤ 3x | yes |  |'));
  assert.ok(sec.includes('| creates | ls -l 1000 | 10 | 40 | 4.00 | ≤ 3x | **no** | 1001 |'));
  assert.ok(sec.includes('| tar | create 2000 | 10 | 100 | 10.00 | - |  | 2017280 |'));
  assert.ok(sec.includes('| sqlite-wal | 10000 rows | 100 | 450 | 4.50 | ≤ 4x | **no** | 10000 |'));
  assert.ok(sec.includes('one commit of everything the steps wrote (1234 ms)'));
  assert.ok(sec.includes('Failed: git (see Failures in this run)'));
  assert.ok(sec.includes('the no-op `rsync -a` changed 0 file(s)'));
  assert.ok(sec.includes('git over 300 files') && sec.includes('SQLite 10,000 rows'));
  assert.ok(section(md, '## Goals').includes('| git: clone (ms, mount vs local disk) | 1 | 350.0 | 100.0 | 3.50 | ≤ 3x | **no** |'));
  const notes = section(md, '### Where goals are missed');
  assert.ok(
    notes.includes(
      '**Real programs in a mount**: 4 timed step(s) over their goal; the slowest against local disk: ' +
        'sqlite-wal: 10000 rows 4.50× (450 vs 100 ms); creates: ls -l 1000 4.00× (40 vs 10 ms); git: clone 3.50× (350 vs 100 ms).',
    ),
  );
  assert.match(table(res), /^creates +ls -l 1000 +10 +40 +4\.00 +≤ 3x +NO +1001$/m);
  assert.match(table(res), /^after commit \(1234 ms\) and remount: creates ok, tar ok, rsync ok, git FAILED, /m);

  // With the FUSE floor measured: its milliseconds and Cairn's ratio to them, in their own columns.
  const floored = await withWorkloads();
  for (const s of floored.workloads!.steps)
    Object.assign(s, { floorMs: s.localMs * 2, floorRatio: Math.round((s.mountMs / (s.localMs * 2)) * 100) / 100 });
  const fsec = section(renderMarkdown(floored), '## Real programs in a mount');
  assert.ok(fsec.includes('| workload | step | local ms | FUSE floor ms | mount ms | ratio | vs floor | goal | met | output |'), fsec);
  assert.ok(fsec.includes('| creates | create 1000 | 100 | 200 | 300 | 3.00 | 1.50 | ≤ 3x | yes |  |'));
  assert.ok(fsec.includes("libfuse's own C passthrough"));
  // The missed goals' note: which of them the floor misses too (ls -l: 20 ms = 2× local, under 3×; sqlite-wal 200 = 2×, under 4×), and Cairn vs floor.
  Object.assign(
    floored.workloads!.steps.find((s) => s.step === 'ls -l 1000')!,
    { floorMs: 35, floorRatio: 1.14 },
  );
  assert.ok(
    section(renderMarkdown(floored), '### Where goals are missed').includes(
      "On the FUSE floor (libfuse's C passthrough, the same steps in the same run) 1 of these steps misses the goal too, before any work of Cairn's: " +
        'creates: ls -l 1000 3.50× local; Cairn is 1.14×, 1.51×, 1.75×, 2.25× the floor on them (creates: ls -l 1000, rsync: rsync -a 2000, git: clone, sqlite-wal: 10000 rows).',
    ),
    section(renderMarkdown(floored), '### Where goals are missed'),
  );
  floored.workloads!.steps.forEach((s) => (delete s.floorMs, delete s.floorRatio));
  floored.workloads!.floorError = 'no /usr/share/doc/libfuse3-dev/examples/passthrough_ll.c';
  assert.ok(section(renderMarkdown(floored), '## Real programs in a mount').includes('The FUSE floor was not measured: no /usr/share'));

  delete res.workloads;
  assert.ok(section(renderMarkdown(res), '## Real programs in a mount').includes('Not measured in this run (run without the workloads'));
  res.failures.push('workloads: failed: tar -x');
  assert.ok(section(renderMarkdown(res), '## Real programs in a mount').includes('Not measured in this run: the workloads failed'));
});

test('store: Ceph RGW the default when radosgw is installed (CAIRN_CEPH=0 forces s3rver), named on the page', async () => {
  assert.equal(defaultStore({}, process.execPath), 'ceph', 'an existing radosgw');
  assert.equal(defaultStore({}, path.join(os.tmpdir(), 'no-such-radosgw')), 's3rver');
  assert.equal(defaultStore({ CAIRN_CEPH: '0' }, process.execPath), 's3rver');
  assert.equal(defaultStore({ CAIRN_CEPH: '1' }, path.join(os.tmpdir(), 'no-such-radosgw')), 'ceph');

  const res = await fixture();
  assert.equal(storeOf(res), 's3rver', 'results from before the store was recorded ran on s3rver');
  res.store = 'ceph';
  const md = renderMarkdown(res);
  assert.ok(section(md, '### Where goals are missed').includes('**Cold big-file reads**, 1 reader: Cairn on Ceph RGW 288 MiB/s'));
  assert.ok(md.includes('brings up a Ceph RGW of its own on loopback'));
  assert.ok(md.includes('"Cairn" is Cairn on Ceph RGW'));
  // Outside the command lines of "Running" (which list `--store s3rver`), a Ceph run never says s3rver.
  assert.doesNotMatch(md.replace(section(md, '## Running'), ''), /s3rver/);
  assert.match(table(res), /^Cairn benchmarks \(quick, [\d.]+ s, Ceph RGW\)$/m);
});

test('gc: goals and section from the output of bench/gc.ts, published into the results by report.js --gc', async () => {
  const gc: GcResults = {
    timestamp: '2026-11-30T12:00:00.000Z',
    machine: { cpus: 2, loadAvg: [6, 5.5, 5] },
    command: 'node dist/bench/gc.js --files 1000000',
    space: {
      small: 10000,
      bigMiB: 256,
      rewrites: 10,
      before: { liveMiB: 300, storedMiB: 2700, ratio: 9, deadInLivePacksMiB: 0 },
      after: { liveMiB: 300, storedMiB: 360, ratio: 1.2, deadInLivePacksMiB: 40 },
      gcRuns: [
        { ms: 900, condemned: 72, deleted: 0, deletedMiB: 0 },
        { ms: 800, condemned: 0, deleted: 72, deletedMiB: 2304 },
      ],
    },
    scale: {
      files: 1000000,
      gcMs: 60500,
      gcMaxRssMiB: 150,
      recordsDeleted: 1007,
      commit4MiBMs: { alone: 50, duringGc: 100, samplesDuringGc: 5 },
    },
  };
  const res = await fixture();
  assert.deepEqual(gcGoals(res), [], 'no gc results, no gc goals');
  res.gc = gc;
  const got = summarizeGoals(res)
    .filter((g) => g.workload === 'gc')
    .map((g) => [g.goal, g.cairn, g.reference, g.ratio, g.target, g.met]);
  assert.deepEqual(got, [
    ['gc: stored / live bytes after gc --keep-last 1', 360, 300, 1.2, '≤ 1.2x', true],
    ['gc of 1,000,000 files (s)', 60.5, undefined, undefined, '≤ 60 s', false],
    ['gc of 1,000,000 files: peak RSS (MiB)', 150, undefined, undefined, '< 300 MiB', true],
    ['commit of 4 MiB during gc vs alone (ms)', 100, 50, 2, '≤ 2x', true],
  ]);
  const md = renderMarkdown(res);
  const s = section(md, '## Garbage collection');
  assert.ok(s.includes('`node dist/bench/gc.js --files 1000000` (2026-11-30T12:00:00.000Z, 2 cores at load average 6.0 / 5.5 / 5.0)'));
  assert.ok(
    s.includes(
      '| the same after `gc --keep-last 1` (2 runs a grace apart: 72 packs, 2304.0 MiB deleted) | 360.0 / 300.0 (1.200×; 40.0 MiB dead inside live packs) |',
    ),
  );
  assert.ok(s.includes('| the same: peak RSS of the gc process | 150 MiB |'));
  assert.ok(s.includes('| a commit of one 4 MiB file alone / during that gc (median of 5) | 50 / 100 ms |'));
  assert.ok(section(md, '## Goals').includes('| gc of 1,000,000 files (s) | 1 | 60.5 | - | - | ≤ 60 s | **no** |'));
  assert.ok(!s.includes('The commit during gc took'), 'at exactly 2x, no note');
  res.gc = { ...gc, scale: { ...gc.scale, commit4MiBMs: { alone: 50, duringGc: 150, samplesDuringGc: 5 } } };
  assert.ok(renderMarkdown(res).includes('The commit during gc took 3.00× as long as alone'));
  assert.ok(renderMarkdown(res).includes('(2 cores, at load average 6.0 when the run started)'));

  // report.js --gc adds it to the published results and renders the page again.
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'cairn-bench-gc-'));
  try {
    delete res.gc;
    await renderDocs(res, dir);
    await fsp.writeFile(path.join(dir, 'gc.json'), JSON.stringify(gc));
    const script = path.join(ROOT, 'dist', 'bench', 'report.js');
    await promisify(execFile)(process.execPath, [script, '--gc', path.join(dir, 'gc.json'), dir]);
    const published = JSON.parse(await fsp.readFile(path.join(dir, path.basename(PUBLISHED_JSON)), 'utf8')) as BenchResults;
    assert.deepEqual(published.gc, gc);
    assert.deepEqual(published.goals, summarizeGoals(published));
    assert.equal(await fsp.readFile(path.join(dir, 'BENCHMARKS.md'), 'utf8'), renderMarkdown(published));
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('issue 14: find, cp and fio goals from their rows; daemon CPU per GiB and µs per request rendered', async () => {
  const res = await fixture();
  // No costs recorded (older results files): no section.
  assert.ok(!renderMarkdown(res).includes('## Daemon costs per request'));
  res.writes!.rows.push(
    { name: 'volume of 100,000 files: stat+readdir all (find)', value: 2.5, unit: 's' },
    { name: 'mount write 10000 files x 16 KiB: write (cp)', value: 4, unit: 's' },
    { name: 'FUSE floor write 10000 files x 16 KiB: write (cp)', value: 2, unit: 's' },
  );
  res.fio!.rows.push({
    system: 'cairn',
    job: 'rand',
    cache: 'warm',
    MiBps: 1000,
    iops: 8000,
    MiB: 256,
    seconds: 0.256,
    capped: false,
    cpuSecPerGiB: 3.5,
    requests: { read: { n: 100, us: 900 } },
  });
  const big = res.reads.find((r) => r.workload === 'big' && r.system === 'cairn' && r.cache === 'warm' && r.readers === 1)!;
  big.cpuSecPerGiB = 1.25;
  big.requests = { open: { n: 1, us: 300 }, read_native: { n: 60, us: 40.5 }, read: { n: 4, us: 2000 }, getattr: { n: 2, us: 10 } };
  const got = summarizeGoals(res)
    .filter((g) => /find|cp -r|fio/.test(g.goal))
    .map((g) => [g.goal, g.cairn, g.reference, g.ratio, g.target, g.met]);
  assert.deepEqual(got, [
    ['find over 100,000 files (s)', 2.5, undefined, undefined, '≤ 3 s', true],
    // The reference: the same cp through the FUSE floor, in the same run.
    ['cp -r of 10,000 × 16 KiB into a mount (files/s)', 2500, 5000, 0.5, '≥ 5,000', false],
    // Exactly at the threshold: met.
    ['fio random 128 KiB × 4 jobs, warm (MiB/s)', 1000, undefined, undefined, '≥ 1,000', true],
  ]);
  const costs = section(renderMarkdown(res), '## Daemon costs per request');
  assert.ok(
    costs.includes('| big 64 MiB | warm | 1 | Cairn | 1.25 | read 2000 µs ×4, read_native 41 µs ×60, open 300 µs ×1, getattr 10 µs ×2 |'),
    costs,
  );
  assert.ok(costs.includes('| fio rand 128k x4 | warm | 4 | Cairn | 3.50 | read 900 µs ×100 |'));
});

test('costs: request counts and mean µs from two status snapshots (read_native from the addon), merged by count', async () => {
  let st: Record<string, unknown> = {
    metrics: {
      'cairn_fuse_op_seconds_sum{op="read"}': 1,
      'cairn_fuse_op_seconds_count{op="read"}': 10,
      'cairn_fuse_ops_total{op="read"}': 10,
    },
    nativeReads: { served: 5, servedNs: 5e5 },
  };
  const done = await measureCosts(async () => st);
  st = {
    metrics: {
      'cairn_fuse_op_seconds_sum{op="read"}': 1.004,
      'cairn_fuse_op_seconds_count{op="read"}': 14,
      'cairn_fuse_op_seconds_sum{op="open"}': 0.0003,
      'cairn_fuse_op_seconds_count{op="open"}': 1,
    },
    nativeReads: { served: 105, servedNs: 5e5 + 100 * 40e3 },
  };
  const c = await done();
  assert.ok(c.cpuSec >= 0);
  assert.deepEqual(c.requests, { read: { n: 4, us: 1000 }, open: { n: 1, us: 300 }, read_native: { n: 100, us: 40 } });
  assert.deepEqual(mergeRequests([c.requests, { read: { n: 4, us: 2000 } }]), {
    read: { n: 8, us: 1500 },
    read_native: { n: 100, us: 40 },
    open: { n: 1, us: 300 },
  });
});
