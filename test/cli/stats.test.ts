/**
 * A mount's figures from the CLI (issue 19), through the built binary and a real FUSE mount:
 * `mount --metrics HOST:PORT` serves Prometheus text that counts what the mount did, `cairn status`
 * names the address, `cairn stats DIR` prints per-second rows of the reads made meanwhile, and bad
 * values are usage errors that mount nothing.
 */
import '../helpers/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { cairn, unmountQuietly } from './harness.js';

async function ok(args: string[]): Promise<string> {
  const r = await cairn(args);
  assert.equal(r.code, 0, `cairn ${args.join(' ')}: ${r.err}`);
  return r.out;
}

/**
 * Reads `files` in a child process (the mount is never touched from this one). Each file once:
 * a second read is served by the kernel's page cache and never reaches the daemon.
 */
function cat(files: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const c = spawn('sh', ['-c', 'for f in "$@"; do cat "$f" >/dev/null; done', 'sh', ...files], { stdio: 'ignore' });
    c.on('error', reject);
    c.on('exit', (code) => resolve(code ?? -1));
  });
}

describe('cairn stats and --metrics (issue 19)', () => {
  let local = '';
  let mnt = '';
  before(async () => {
    local = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-stats-'));
    mnt = path.join(local, 'mnt');
    await fs.mkdir(path.join(local, 'files'));
    for (let i = 0; i < 8; i++) await fs.writeFile(path.join(local, 'files', `f${i}.bin`), Buffer.alloc(300_000, i));
    await ok(['volume', 'create', 'st']);
    await ok(['volume', 'put', 'st', path.join(local, 'files'), '/d']);
  });
  after(async () => {
    await unmountQuietly(mnt);
    await fs.rm(local, { recursive: true, force: true });
  });

  it('serves Prometheus text that counts the mount, and stats prints the reads of each interval', async () => {
    await ok(['mount', 'st', mnt, '--metrics', '127.0.0.1:0']);
    const files = (ns: number[]) => ns.map((i) => path.join(mnt, 'd', `f${i}.bin`));
    assert.equal(await cat(files([0, 1, 2])), 0);
    const status = JSON.parse(await ok(['status', mnt, '--json'])) as { metricsUrl: string };
    assert.match(status.metricsUrl, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    assert.match(await ok(['status', mnt]), /metrics +http:\/\/127\.0\.0\.1:\d+\/metrics/);
    const text = await (await fetch(status.metricsUrl)).text();
    const reads = /^cairn_fuse_ops_total\{op="read",volume="st"\} (\d+)$/m.exec(text);
    assert.ok(reads && Number(reads[1]) >= 3, text.slice(0, 2000));
    const bytes = /^cairn_read_bytes_total\{volume="st"\} (\d+)$/m.exec(text);
    assert.ok(bytes && Number(bytes[1]) >= 3 * 300_000, 'three whole files read');
    assert.match(text, /^cairn_fuse_op_seconds_count\{[^}]*op="getattr"[^}]*\} \d+$/m);

    const stats = cairn(['stats', mnt, '--interval', '2', '--count', '1', '--json']);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await cat(files([3, 4, 5, 6, 7])), 0);
    const r = await stats;
    assert.equal(r.code, 0, r.err);
    const row = JSON.parse(r.out.trim()) as { opsPerSec: number; readBytesPerSec: number };
    assert.ok(row.readBytesPerSec * 2 >= 5 * 300_000 * 0.9, `5 files of 300 kB read in the interval: ${r.out}`);
    assert.ok(row.opsPerSec > 0);
    const human = await cairn(['stats', mnt, '--interval', '0.2', '--count', '2']);
    assert.equal(human.code, 0, human.err);
    const lines = human.out.trim().split('\n');
    assert.equal(lines.length, 3, 'a header and two rows');
    assert.match(lines[0]!, /ops\/s.*read\/s.*cache hit.*GET\/s/);
    await ok(['unmount', mnt]);
    assert.equal((await fetch(status.metricsUrl).catch(() => undefined))?.status, undefined, 'the endpoint goes with the mount');
  });

  it('refuses bad addresses and values without mounting', async () => {
    const bad = await cairn(['mount', 'st', mnt, '--metrics', 'nope']);
    assert.equal(bad.code, 2, bad.err);
    assert.match(bad.err, /--metrics wants HOST:PORT/);
    assert.equal((await ok(['mounts', '--json'])).includes(mnt), false, 'nothing mounted');
    for (const args of [
      ['--interval', '0'],
      ['--count', '1.5'],
      ['--interval', 'x'],
    ]) {
      assert.equal((await cairn(['stats', mnt, ...args])).code, 2, args.join(' '));
    }
    const none = await cairn(['stats', local, '--count', '1']);
    assert.equal(none.code, 1);
    assert.match(none.err, /UNAVAILABLE|not a cairn mount|NOT_FOUND/);
  });
});
