/**
 * The benchmark report on a fixed results file (test/bench/fixtures/results.json, hand-made so
 * that every verdict can be checked by hand, with goals exactly at their thresholds): the goal
 * ratios and met/missed verdicts, key cells of the tables, the sentences computed from the
 * figures, and that the published docs/BENCHMARKS.md and docs/benchmarks.svg are exactly what the
 * report renders from docs/benchmarks.json (so no figure on the page is typed in).
 */
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'node:test';
import { fileURLToPath } from 'node:url';
import { svgChart } from '../../bench/chart.js';
import { summarizeGoals } from '../../bench/goals.js';
import { PUBLISHED_JSON, renderDocs, renderMarkdown } from '../../bench/report.js';
import type { BenchResults } from '../../bench/results.js';
import { table } from '../../bench/tables.js';

/** The repository root (this file is dist/test/bench/report.test.js). */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

async function fixture(): Promise<BenchResults> {
  return JSON.parse(await fsp.readFile(path.join(ROOT, 'test', 'bench', 'fixtures', 'results.json'), 'utf8')) as BenchResults;
}

/** The section of a markdown page from `heading` to the next heading of the same or a higher level. */
function section(md: string, heading: string): string {
  const start = md.indexOf(`${heading}\n`);
  assert.ok(start >= 0, `no ${heading}`);
  const level = heading.split(' ')[0]!;
  const rest = md.slice(start + heading.length + 1);
  const end = rest.search(new RegExp(`^#{1,${level.length}} `, 'm'));
  return end < 0 ? rest : rest.slice(0, end);
}

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
  assert.equal((goals.match(/\*\*no\*\*/g) ?? []).length, 5);
  assert.ok(
    section(md, '## Failures in this run').includes('- small 4 reader(s) rclone cold: f000007.bin: read 16383 bytes, expected 16384'),
  );
  assert.ok(md.includes('For volumes of 1,000 and 100,000 files'));
  assert.ok(md.includes('Every reader checks what it reads against the dataset'));

  const text = table(res);
  assert.match(text, /^cold big-file reads vs rclone mount +1 +288\.0 +192\.0 +1\.50 +≥ 2x +NO$/m);
  assert.match(text, /^cold big-file reads vs s3fs +4 +300\.0 +150\.0 +2\.00 +≥ 2x +yes$/m);
  assert.equal((text.match(/ NO$/gm) ?? []).length, 5);
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
