/**
 * The benchmark suite's smoke test: `node dist/bench/run.js --quick` exits 0 and writes a results
 * JSON with the expected keys and positive figures. It never asserts speed. s3fs and rclone are
 * measured when installed (`--no-peers` otherwise, so CI need not install them); fio jobs are
 * checked when fio is installed, and otherwise the run must still pass and record the skip. The real
 * programs in a mount (bench/workloads.ts, QUICK sizes) must all run, pass every check after commit
 * and remount, and the no-op rsync must change nothing; the store is the default one (bench/stores.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promises as fsp, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fioArgs, fioBench, parseFio } from '../../bench/fio.js';
import { fioTimeoutMs } from '../../bench/fioexec.js';
import { defaultStore } from '../../bench/stores.js';
import { QUICK } from '../../bench/workloads.js';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const RUN_JS = path.join(DIST, 'bench', 'run.js');

const onPath = (cmd: string): boolean => (process.env.PATH ?? '').split(':').some((d) => existsSync(path.join(d, cmd)));

test('npm run bench -- --quick writes complete results', { timeout: 20 * 60_000 }, async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'cairn-bench-test-'));
  const out = path.join(dir, 'results.json');
  const peers = onPath('s3fs') && onPath('rclone');
  const args = [RUN_JS, '--quick', '--no-docs', '--out', out, ...(peers ? [] : ['--no-peers'])];
  try {
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(process.execPath, args, { timeout: 19 * 60_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) =>
        resolve({
          code: err ? (typeof (err as { code?: unknown }).code === 'number' ? Number((err as { code?: unknown }).code) : 1) : 0,
          stdout,
          stderr,
        }),
      ),
    );
    assert.equal(code, 0, `bench failed:\n${stderr.slice(-3000)}`);
    assert.match(stdout, /Cairn benchmarks \(quick/);
    const res = JSON.parse(await fsp.readFile(out, 'utf8'));
    for (const key of [
      'version',
      'timestamp',
      'mode',
      'durationSec',
      'machine',
      'peers',
      'store',
      'dataset',
      'method',
      'reads',
      'writes',
      'workloads',
      'failures',
      'goals',
    ]) {
      assert.ok(key in res, `results lack ${key}`);
    }
    assert.equal(res.mode, 'quick');
    assert.equal(res.store, defaultStore(process.env), 'Ceph RGW when installed (and CAIRN_CEPH is not 0), s3rver otherwise');
    // Every row below comes from readers that checked what they read (bench/verify.ts): a reader
    // that got wrong bytes would have left its row out and recorded a failure.
    assert.match(String(res.method.verify), /size of every file/);
    // A missing row below is explained by the failure the run recorded for it.
    const why = `\nrecorded failures:\n${res.failures.join('\n')}\nstderr:\n${stderr.slice(-3000)}`;
    assert.ok(res.durationSec > 0);
    // 'floor': libfuse's C passthrough over local disk (bench/fusefloor.ts), built from libfuse3-dev, which the set-up installs.
    const systems = ['cairn', 'cairn-file', 'local', 'floor', 's3get', ...(peers ? ['s3fs', 'rclone'] : [])];
    for (const workload of ['big', 'small']) {
      for (const system of systems) {
        for (const readers of [1, 4]) {
          const row = res.reads.find(
            (r: any) => r.workload === workload && r.system === system && r.readers === readers && r.cache === 'cold',
          );
          assert.ok(row, `no cold ${workload} row for ${system} x${readers}${why}`);
          for (const k of ['MiBps', 'filesPerSec', 'ttfbMs']) assert.ok(row[k] > 0, `${system} ${workload} x${readers}: ${k} = ${row[k]}`);
          assert.ok(row.runs.length >= 1);
        }
      }
      for (const readers of [1, 4]) {
        const floor = res.reads.find(
          (r: any) => r.workload === workload && r.system === 'floor' && r.readers === readers && r.cache === 'warm',
        );
        assert.ok(floor && floor.MiBps > 0, `no warm FUSE floor ${workload} row x${readers}${why}`);
        for (const system of ['cairn', 'cairn-file']) {
          const warm = res.reads.find(
            (r: any) => r.workload === workload && r.system === system && r.readers === readers && r.cache === 'warm',
          );
          assert.ok(warm && warm.MiBps > 0, `no warm ${system} ${workload} row x${readers}${why}`);
          assert.ok(warm.mountMs > 0 && warm.daemonHwmMiB > 0);
          // Issue 14: the daemon's CPU per GiB and its requests by type (reads in JS or natively).
          assert.ok(warm.cpuSecPerGiB > 0, `${system} ${workload} x${readers}: cpuSecPerGiB = ${warm.cpuSecPerGiB}`);
          const reads = (warm.requests?.read?.n ?? 0) + (warm.requests?.read_native?.n ?? 0);
          assert.ok(reads > 0 && Object.values(warm.requests).every((c: any) => c.n > 0 && c.us >= 0), JSON.stringify(warm.requests));
        }
      }
    }
    assert.ok(res.dataset.cairnFileUploadSec > 0);
    assert.ok(res.fio, 'results lack fio');
    if (onPath('fio')) {
      assert.match(res.fio.version, /fio/);
      const fioSystems = ['cairn', 'cairn-file', 'local', 'floor', ...(peers ? ['s3fs', 'rclone'] : [])];
      for (const job of ['seq', 'rand']) {
        for (const [system, cache] of [
          ...fioSystems.map((s) => [s, 'cold']),
          ['cairn', 'warm'],
          ['cairn-file', 'warm'],
          ['local', 'warm'],
          ['floor', 'warm'],
        ]) {
          const row = res.fio.rows.find((r: any) => r.job === job && r.system === system && r.cache === cache);
          assert.ok(row, `no fio ${job} ${cache} row for ${system}${why}`);
          for (const k of ['MiBps', 'iops', 'MiB', 'seconds']) assert.ok(row[k] > 0, `fio ${job} ${system} ${cache}: ${k} = ${row[k]}`);
          assert.ok(row.p99Ms === undefined || row.p99Ms > 0);
        }
      }
      assert.match(stdout, /fio through each mount/);
    } else {
      assert.equal(res.fio.version, null);
      assert.equal(res.fio.rows.length, 0);
      assert.match(res.fio.skipped, /not installed/);
    }
    assert.ok(res.writes.rows.length > 0, 'no write rows');
    for (const w of res.writes.rows) assert.ok(typeof w.name === 'string' && w.value > 0 && typeof w.unit === 'string', JSON.stringify(w));
    for (const ref of ['local disk', 'FUSE floor']) {
      const name = `${ref} write 1000 files x 16 KiB: write (cp)`;
      assert.ok(
        res.writes.rows.some((w: any) => w.name === name),
        `no ${name}`,
      );
    }
    // Real programs in a mount: every workload ran at QUICK sizes, on the mount and on local disk.
    const wl = res.workloads;
    assert.deepEqual(wl.sizes, QUICK);
    const names = ['creates', 'tar', 'rsync', 'git', 'make', 'venv', 'sqlite-delete', 'sqlite-wal', 'sqlite-wal-reader'];
    assert.deepEqual([...new Set(wl.steps.map((s: any) => s.workload))].sort(), [...names].sort(), `workload steps${why}`);
    for (const s of wl.steps) assert.ok(s.localMs > 0 && s.mountMs > 0 && s.ratio > 0, JSON.stringify(s));
    // The FUSE floor (libfuse's passthrough_ll, built from libfuse3-dev, which the set-up installs) ran every step too.
    assert.equal(wl.floorError, undefined, `the FUSE floor: ${wl.floorError}`);
    for (const s of wl.steps) assert.ok(s.floorMs > 0 && s.floorRatio > 0, `FUSE floor: ${JSON.stringify(s)}`);
    // Identical results after commit and remount: git fsck, integrity_check, tar -d, rsync, make -q, counts.
    assert.deepEqual(Object.keys(wl.verify).sort(), [...names].sort());
    for (const [name, v] of Object.entries(wl.verify)) assert.equal(v, 'ok', `${name} after commit and remount: ${v}`);
    const noop = wl.steps.find((s: any) => s.workload === 'rsync' && s.step === 'no-op rsync -a');
    assert.match(noop?.out ?? '', /^0$/, `the no-op rsync -a changed files: ${noop?.out}`);
    assert.ok(wl.commitMs > 0);
    const noopGoal = res.goals.find((g: any) => g.goal === 'no-op rsync -a: files transferred');
    assert.ok(noopGoal?.met === true && noopGoal.cairn === 0);
    assert.ok(res.goals.find((g: any) => g.goal.startsWith('workloads intact'))?.met === true);
    assert.ok(
      res.goals.some((g: any) => g.workload === 'programs' && g.target === '≤ 4x'),
      'SQLite ratio goals',
    );
    assert.match(stdout, /real programs in a mount vs local disk/);
    assert.ok(!res.failures.some((f: string) => f.startsWith('workloads:')), why);
    assert.ok(res.goals.length > 0);
    for (const g of res.goals) assert.equal(typeof g.met, 'boolean');
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('fio: jobs are read-only and bounded; a missing fio is a recorded skip; reports parse', async () => {
  for (const job of ['seq', 'rand'] as const) {
    const args = fioArgs(job, 1024 * 2 ** 20, false);
    for (const a of ['--readonly', '--direct=0', '--invalidate=0', '--output-format=json'])
      assert.ok(args.includes(a), `${job} lacks ${a}`);
    assert.ok(args.some((a) => a.startsWith('--io_size=')) && args.some((a) => a.startsWith('--runtime=')));
    assert.ok(!args.some((a) => /^--rw=.*write|^--filename=/.test(a)));
    assert.equal(fioTimeoutMs(args), 28_000, 'a job stuck past its 8 s runtime is abandoned 20 s later');
  }
  assert.equal(fioTimeoutMs(['--rw=read']), 60_000);
  const skipped = await fioBench({} as never, {
    quick: true,
    version: null,
    systems: ['local'],
    warm: [],
    cacheDirs: {},
    work: os.tmpdir(),
    env: process.env,
    sessionsDir: os.tmpdir(),
    log: () => undefined,
  });
  assert.equal(skipped.rows.length, 0);
  assert.match(skipped.skipped ?? '', /not installed/);
  const row = parseFio(
    {
      jobs: [
        {
          error: 0,
          read: {
            bw_bytes: 100 * 2 ** 20,
            iops: 800,
            io_bytes: 2 ** 30,
            runtime: 10_240,
            clat_ns: { percentile: { '50.000000': 1_000_000, '99.000000': 9_000_000 } },
          },
        },
      ],
    },
    2 ** 30,
  );
  assert.deepEqual(row, { MiBps: 100, iops: 800, p50Ms: 1, p99Ms: 9, MiB: 1024, seconds: 10.24, capped: false });
  assert.throws(() => parseFio({ jobs: [] }, 1), /without read figures/);
});
