/**
 * The FUSE floor (bench/fusefloor.ts): libfuse's passthrough_ll, built from libfuse3-dev's example
 * and mounted for real over a directory; and how the report uses its figures (the reference of the
 * absolute warm goals, a ratio in each Cairn row).
 */
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'node:test';
import { buildFloor, FuseFloor } from '../../bench/fusefloor.js';
import { summarizeGoals } from '../../bench/goals.js';
import { renderMarkdown } from '../../bench/report.js';
import { fixture, section } from '../helpers/benchpage.js';

test('the FUSE floor builds, mounts a directory, passes its files both ways and unmounts', async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'cairn-floor-'));
  try {
    const floor = await FuseFloor.build(dir);
    assert.ok(floor instanceof FuseFloor, `cannot build the floor: ${JSON.stringify(floor)}`);
    await fsp.writeFile(path.join(floor.source, 'a.txt'), 'from the disk');
    await floor.start();
    try {
      const mounts = await fsp.readFile('/proc/self/mountinfo', 'utf8');
      assert.ok(
        mounts.split('\n').some((l) => l.split(' ')[4] === floor.mountpoint && l.includes('fuse')),
        'a FUSE mount',
      );
      assert.equal(await fsp.readFile(path.join(floor.mountpoint, 'a.txt'), 'utf8'), 'from the disk');
      await fsp.writeFile(path.join(floor.mountpoint, 'b.txt'), 'through the floor');
      assert.equal(await fsp.readFile(path.join(floor.source, 'b.txt'), 'utf8'), 'through the floor');
    } finally {
      await floor.stop();
    }
    assert.ok(!(await fsp.readFile('/proc/self/mountinfo', 'utf8')).includes(` ${floor.mountpoint} `), 'unmounted');
    // Building again over the first binary works too.
    assert.equal(typeof (await buildFloor(dir)), 'string');
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('the FUSE floor: the reference of the absolute warm goals, and a ratio of each Cairn row', async () => {
  const res = await fixture();
  // Floor rows made from Cairn's (same shape): big cold 400 MiB/s, big warm 1600 MiB/s, small warm 4800 files/s.
  const like = (workload: string, cache: string, v: object) => {
    const c = res.reads.find((r) => r.workload === workload && r.system === 'cairn' && r.cache === cache && r.readers === 1)!;
    return { ...c, system: 'floor' as const, ...v };
  };
  res.reads.push(like('big', 'cold', { MiBps: 400 }), like('big', 'warm', { MiBps: 1600 }), like('small', 'warm', { filesPerSec: 4800 }));
  const goals = summarizeGoals(res);
  const refOf = (goal: string) => goals.filter((x) => x.goal === goal).map((g) => [g.reference, g.ratio]);
  assert.deepEqual(refOf('warm big-file read, fresh mount (MiB/s)'), [[1600, 0.64]]);
  assert.deepEqual(refOf('warm small files, 8 in flight (files/s)'), [[4800, 0.5]]);
  const md = renderMarkdown(res);
  assert.match(
    section(md, '## Parallel reads'),
    /\| big 64 MiB \| cold \| 1 \| Cairn \| 288\.0 \|.*\| local 0\.58x, floor 0\.72x, s3get 0\.90x/,
  );
  assert.ok(section(md, '## Goals').includes("its reference is the FUSE floor's figure"));
  assert.ok(section(md, '## Method').includes("libfuse's own C passthrough"));
  // Without floor rows: no reference, no such sentence.
  assert.equal(summarizeGoals(await fixture()).find((x) => x.goal.startsWith('warm small files'))!.reference, undefined);
  assert.ok(!section(renderMarkdown(await fixture()), '## Goals').includes('FUSE floor'));
});
