/**
 * The benchmark suite's smoke test: `node dist/bench/run.js --quick` exits 0 and writes a results
 * JSON with the expected keys and positive figures. It never asserts speed. s3fs and rclone are
 * measured when installed (`--no-peers` otherwise, so CI need not install them).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promises as fsp, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const RUN_JS = path.join(DIST, 'bench', 'run.js');

const onPath = (cmd: string): boolean => (process.env.PATH ?? '').split(':').some((d) => existsSync(path.join(d, cmd)));

test('npm run bench -- --quick writes complete results', { timeout: 10 * 60_000 }, async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'cairn-bench-test-'));
  const out = path.join(dir, 'results.json');
  const peers = onPath('s3fs') && onPath('rclone');
  const args = [RUN_JS, '--quick', '--no-docs', '--out', out, ...(peers ? [] : ['--no-peers'])];
  try {
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(process.execPath, args, { timeout: 9 * 60_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) =>
        resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? Number((err as { code?: unknown }).code) : 1) : 0, stdout, stderr }),
      ),
    );
    assert.equal(code, 0, `bench failed:\n${stderr.slice(-3000)}`);
    assert.match(stdout, /Cairn benchmarks \(quick/);
    const res = JSON.parse(await fsp.readFile(out, 'utf8'));
    for (const key of ['version', 'timestamp', 'mode', 'durationSec', 'machine', 'peers', 'dataset', 'method', 'reads', 'writes', 'failures', 'goals']) {
      assert.ok(key in res, `results lack ${key}`);
    }
    assert.equal(res.mode, 'quick');
    assert.ok(res.durationSec > 0);
    const systems = ['cairn', 'local', 's3get', ...(peers ? ['s3fs', 'rclone'] : [])];
    for (const workload of ['big', 'small']) {
      for (const system of systems) {
        for (const readers of [1, 4]) {
          const row = res.reads.find((r: any) => r.workload === workload && r.system === system && r.readers === readers && r.cache === 'cold');
          assert.ok(row, `no cold ${workload} row for ${system} x${readers}`);
          for (const k of ['MiBps', 'filesPerSec', 'ttfbMs']) assert.ok(row[k] > 0, `${system} ${workload} x${readers}: ${k} = ${row[k]}`);
          assert.ok(row.runs.length >= 1);
        }
      }
      for (const readers of [1, 4]) {
        const warm = res.reads.find((r: any) => r.workload === workload && r.system === 'cairn' && r.readers === readers && r.cache === 'warm');
        assert.ok(warm && warm.MiBps > 0, `no warm Cairn ${workload} row x${readers}`);
        assert.ok(warm.mountMs > 0 && warm.daemonHwmMiB > 0);
      }
    }
    assert.ok(res.writes.rows.length > 0, 'no write rows');
    for (const w of res.writes.rows) assert.ok(typeof w.name === 'string' && w.value > 0 && typeof w.unit === 'string', JSON.stringify(w));
    assert.ok(res.goals.length > 0);
    for (const g of res.goals) assert.equal(typeof g.met, 'boolean');
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});
