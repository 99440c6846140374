/**
 * `cairn run` end to end through the built CLI: a command in its own mount namespace with
 * volumes mounted, on the embedded file store.
 */
import '../helpers/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Volume } from '../../src/volume/index.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');
let store = '';

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cairn(args: string[], opts: { onStdout?: (pid: number, out: string) => void } = {}): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, '--store', store, ...args], { env: process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
      opts.onStdout?.(child.pid!, stdout);
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

async function readVol(name: string, p: string): Promise<string> {
  const vol = await Volume.fromName(name, { store });
  const parts: Buffer[] = [];
  for await (const b of vol.readFile(p)) parts.push(b);
  await vol.close();
  return Buffer.concat(parts).toString();
}

describe('cairn run', () => {
  let base = '';
  before(async () => {
    base = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-run-'));
    store = `file://${path.join(base, 'store')}`;
    await Volume.objects.create('v', { store });
  });
  after(() => fs.rm(base, { recursive: true, force: true }));

  it('mounts the volume for the command only, and the next run sees what it wrote', async () => {
    let outside = '';
    const first = cairn(['run', '-v', 'v:/data', '--', 'sh', '-c', 'echo x > /data/a && grep -c " /data " /proc/self/mountinfo && sleep 1']);
    await new Promise((r) => setTimeout(r, 700));
    outside = await fs.readFile('/proc/self/mountinfo', 'utf8');
    const r1 = await first;
    assert.equal(r1.code, 0, r1.stderr);
    assert.equal(r1.stdout.trim(), '1');
    assert.ok(!outside.includes(' /data '), 'the mount is not visible outside the namespace');
    const r2 = await cairn(['run', '-v', 'v:/data:ro', '--', 'cat', '/data/a']);
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(r2.stdout, 'x\n');
  });

  it('passes the exit code through, and CAIRN_MOUNTS', async () => {
    const r = await cairn(['run', '-v', 'v:/data', '--', 'sh', '-c', 'echo "$CAIRN_MOUNTS"; exit 7']);
    assert.equal(r.code, 7);
    assert.deepEqual(JSON.parse(r.stdout), [{ volume: 'v', path: '/data', readOnly: false }]);
  });

  it('on SIGTERM forwards it, commits, and exits with the command status', async () => {
    let sent = false;
    const r = await cairn(['run', '-v', 'v:/data', '--commit-interval', '0', '--', 'sh', '-c', 'echo t > /data/term.txt; trap "exit 5" TERM; echo started; sleep 30 & wait'], {
      onStdout: (pid, out) => {
        if (!sent && out.includes('started')) {
          sent = true;
          process.kill(pid, 'SIGTERM');
        }
      },
    });
    assert.equal(r.code, 5, r.stderr);
    assert.equal(await readVol('v', '/term.txt'), 't\n');
  });

  it('concurrent runs: different files both survive; on one file the last exit wins', async () => {
    const [a, b] = await Promise.all([
      cairn(['run', '-v', 'v:/data', '--', 'sh', '-c', 'echo A > /data/only-a; echo first > /data/same; sleep 0.3']),
      cairn(['run', '-v', 'v:/data', '--', 'sh', '-c', 'echo B > /data/only-b; echo second > /data/same; sleep 2']),
    ]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    assert.equal(await readVol('v', '/only-a'), 'A\n');
    assert.equal(await readVol('v', '/only-b'), 'B\n');
    assert.equal(await readVol('v', '/same'), 'second\n');
  });

  it('a reload with a file open inside the run is refused with VOLUME_BUSY naming it', async () => {
    const r = await cairn(['run', '-v', 'v:/data', '--', 'sh', '-c', `exec 3< /data/a; ${process.execPath} ${CLI} reload /data; echo "reload exit $?"`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /VOLUME_BUSY/);
    assert.match(r.stderr, /\/a\b/);
    assert.match(r.stdout, /reload exit 1/);
  });

  it('bad specs fail before the command starts', async () => {
    const marker = path.join(base, 'started');
    for (const args of [
      ['-v', 'v'],
      ['-v', 'v:data'],
      ['-v', 'missing:/data'],
      ['-v', 'bad name:/data'],
      ['-v', 'v:/data:rx'],
    ]) {
      const r = await cairn(['run', ...args, '--', 'touch', marker]);
      assert.notEqual(r.code, 0, `${args.join(' ')} must fail`);
      assert.match(r.stderr, /INVALID_ARGUMENT|NOT_FOUND/);
      await assert.rejects(fs.access(marker), 'the command never started');
    }
  });
});
