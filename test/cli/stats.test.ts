/**
 * A mount's figures from the CLI (issue 19), through the built binary and a real FUSE mount:
 * `mount --metrics HOST:PORT` serves Prometheus text that counts what the mount did, `cairn status`
 * names the address, `cairn stats DIR` prints per-second rows of the work done meanwhile, and bad
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

  it('serves Prometheus text that counts the mount, and stats prints the work of each interval', async () => {
    await ok(['mount', 'st', mnt, '--metrics', '127.0.0.1:0', '--commit-interval', '0']);
    try {
      await countsTheMount();
    } finally {
      await unmountQuietly(mnt);
    }
  });

  async function countsTheMount(): Promise<void> {
    const files = (ns: number[]) => ns.map((i) => path.join(mnt, 'd', `f${i}.bin`));
    assert.equal(await cat(files([0, 1, 2])), 0);
    const status = JSON.parse(await ok(['status', mnt, '--json'])) as { metricsUrl: string };
    assert.match(status.metricsUrl, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    assert.match(await ok(['status', mnt]), /metrics +http:\/\/127\.0\.0\.1:\d+\/metrics/);
    const text = await (await fetch(status.metricsUrl)).text();
    // READs answered by JavaScript plus those the native binding answered from verified chunk bytes
    // (files up to 1 MiB are loaded at open: on the native binding none of their READs reach JS).
    const count = (re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
    const reads =
      count(/^cairn_fuse_ops_total\{op="read",volume="st"\} (\d+)$/m) + count(/^cairn_fuse_native_reads_total\{volume="st"\} (\d+)$/m);
    assert.ok(reads >= 3, text.slice(0, 2000));
    const bytes = /^cairn_read_bytes_total\{volume="st"\} (\d+)$/m.exec(text);
    assert.ok(bytes && Number(bytes[1]) >= 3 * 300_000, 'three whole files read');
    assert.match(text, /^cairn_fuse_op_seconds_count\{[^}]*op="getattr"[^}]*\} \d+$/m);

    // Writes always reach the daemon (the writeback cache is off by default): a writer busy for the whole run of
    // `stats` makes every interval count, however long the CLI takes to start on a loaded machine.
    const writer = spawn('sh', ['-c', 'i=0; while :; do i=$((i+1)); head -c 65536 /dev/zero > "$1/w$((i % 8))"; done', 'sh', mnt], {
      stdio: 'ignore',
    });
    let r: Awaited<ReturnType<typeof cairn>>;
    try {
      r = await cairn(['stats', mnt, '--interval', '1', '--count', '2', '--json']);
    } finally {
      writer.kill();
      await new Promise((res) => writer.once('exit', res));
    }
    assert.equal(r.code, 0, r.err);
    const rows = r.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { opsPerSec: number; writeBytesPerSec: number });
    assert.equal(rows.length, 2);
    for (const row of rows) {
      assert.ok(row.writeBytesPerSec > 0 && row.opsPerSec > 0, `the writer's work in each interval: ${r.out}`);
    }
    const human = await cairn(['stats', mnt, '--interval', '0.2', '--count', '2']);
    assert.equal(human.code, 0, human.err);
    const lines = human.out.trim().split('\n');
    assert.equal(lines.length, 3, 'a header and two rows');
    assert.match(lines[0]!, /ops\/s.*read\/s.*cache hit.*GET\/s/);
    await ok(['unmount', mnt]);
    assert.equal((await fetch(status.metricsUrl).catch(() => undefined))?.status, undefined, 'the endpoint goes with the mount');
  }

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
