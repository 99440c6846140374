/**
 * `cairn run` end to end through the built CLI: a command in its own mount namespace with
 * volumes mounted, on the embedded file store.
 */
import { testHome } from '../helpers/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
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
  /** The run did not end within `timeoutMs` and was freed and killed (see `rescue`). */
  timedOut?: boolean;
}

interface CairnOptions {
  onStdout?: (pid: number, out: string) => void;
  /** Own process group (pgid = pid), so a test can signal the group as a terminal's Ctrl-C does. */
  detached?: boolean;
  /** Free and kill the run when it has not ended by then. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

/** Every live descendant of `root` (not `root` itself), from /proc. */
async function descendants(root: number): Promise<number[]> {
  const parent = new Map<number, number[]>();
  for (const name of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await fs.readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid) parent.set(ppid, [...(parent.get(ppid) ?? []), Number(name)]);
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of parent.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(root);
  return out;
}

/**
 * The pid of the descendant of `root` named `comm` (the command of a run), waited for (at most
 * 10 s): a shell that printed its last line may not have exec'd the command yet.
 */
async function commandPid(root: number, comm: string): Promise<number> {
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 5))) {
    for (const pid of await descendants(root)) {
      if ((await fs.readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim() === comm) return pid;
    }
  }
  throw new Error(`no ${comm} under ${root}`);
}

/** Resolves once `pid` has exited (gone, or a zombie). */
async function gone(pid: number): Promise<void> {
  for (;;) {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    if (!stat || stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return;
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Devices (`major:minor`) of the cairn FUSE mounts `pid` sees and this process does not: the run's own. */
async function ownCairnMounts(pid: number): Promise<string[]> {
  const devs = (text: string) =>
    text
      .split('\n')
      .map((l) => l.split(' '))
      .filter((f) => {
        const sep = f.indexOf('-', 6);
        return sep > 0 && f[sep + 1]?.startsWith('fuse') && f[sep + 2]?.startsWith('cairn:');
      })
      .map((f) => f[2]!);
  const ours = new Set(devs(await fs.readFile('/proc/self/mountinfo', 'utf8')));
  return devs(await fs.readFile(`/proc/${pid}/mountinfo`, 'utf8').catch(() => '')).filter((d) => !ours.has(d));
}

/**
 * Frees a hung run: aborts the FUSE connections of the mounts only its namespace has (a process
 * stuck in a request on them stays in D state even after SIGKILL), then kills the processes this
 * test started (the CLI and its descendants).
 */
async function rescue(pid: number): Promise<void> {
  const pids = [pid, ...(await descendants(pid))];
  const devices = new Set<string>();
  for (const p of pids) for (const d of await ownCairnMounts(p)) devices.add(d);
  if (devices.size) {
    const ctl = '/sys/fs/fuse/connections';
    if ((await fs.readdir(ctl).catch(() => [])).length === 0) {
      const mount = spawn('mount', ['-t', 'fusectl', 'fusectl', ctl], { stdio: 'ignore' });
      await new Promise((r) => mount.on('exit', r).on('error', r));
    }
    for (const d of devices) await fs.writeFile(`${ctl}/${d.split(':')[1]}/abort`, '1').catch(() => undefined);
  }
  for (const p of pids.reverse()) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

function cairn(args: string[], opts: CairnOptions = {}): Promise<Result> {
  return new Promise((resolve) => {
    const env = opts.env ?? process.env;
    const child = spawn(process.execPath, [CLI, '--store', store, ...args], { env, detached: !!opts.detached });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          void rescue(child.pid!);
        }, opts.timeoutMs)
      : undefined;
    child.stdout.on('data', (d) => {
      stdout += d;
      opts.onStdout?.(child.pid!, stdout);
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ...(timedOut ? { timedOut } : {}) });
    });
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
    const first = cairn([
      'run',
      '-v',
      'v:/data',
      '--',
      'sh',
      '-c',
      'echo x > /data/a && grep -c " /data " /proc/self/mountinfo && sleep 1',
    ]);
    await new Promise((r) => setTimeout(r, 700));
    const outside = await fs.readFile('/proc/self/mountinfo', 'utf8');
    const r1 = await first;
    assert.equal(r1.code, 0, r1.stderr);
    assert.equal(r1.stdout.trim(), '1');
    assert.ok(!outside.includes(' /data '), 'the mount is not visible outside the namespace');
    const r2 = await cairn(['run', '-v', 'v:/data:ro', '--', 'cat', '/data/a']);
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(r2.stdout, 'x\n');
  });

  it("serves the mounts' metrics with --metrics while the command runs", async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
    const scrape = `fetch("http://127.0.0.1:${port}/metrics").then((r) => r.text()).then((t) => process.stdout.write(t))`;
    const r = await cairn([
      'run',
      '-v',
      'v:/data',
      '-v',
      'w:/w',
      '--create',
      '--metrics',
      `127.0.0.1:${port}`,
      '--',
      'sh',
      '-c',
      `echo m > /data/m.txt && cat /data/m.txt > /dev/null && ls -la /w > /dev/null && ${JSON.stringify(process.execPath)} -e '${scrape}'`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`metrics at http://127\\.0\\.0\\.1:${port}/metrics`));
    assert.match(r.stdout, /^# TYPE cairn_fuse_ops_total counter$/m);
    assert.match(r.stdout, /^cairn_fuse_ops_total\{op="write",volume="v",mountpoint="\/data"\} [1-9]\d*$/m);
    assert.match(r.stdout, /^cairn_write_bytes_total\{volume="v",mountpoint="\/data"\} 2$/m);
    assert.match(r.stdout, /^cairn_fuse_ops_total\{op="getattr",volume="w",mountpoint="\/w"\} \d+$/m, 'every mount of the run');
    assert.match(r.stdout, /^# TYPE cairn_fuse_op_seconds summary$/m);
    const bad = await cairn(['run', '-v', 'v:/data', '--metrics', 'nope', '--', 'true']);
    assert.equal(bad.code, 2, bad.stderr);
  });

  it('passes the exit code through, and CAIRN_MOUNTS', async () => {
    const r = await cairn(['run', '-v', 'v:/data', '--', 'sh', '-c', 'echo "$CAIRN_MOUNTS"; exit 7']);
    assert.equal(r.code, 7);
    assert.deepEqual(JSON.parse(r.stdout), [{ volume: 'v', path: '/data', readOnly: false }]);
  });

  it('on SIGTERM forwards it, commits, and exits with the command status', async () => {
    let sent = false;
    const r = await cairn(
      [
        'run',
        '-v',
        'v:/data',
        '--commit-interval',
        '0',
        '--',
        'sh',
        '-c',
        'echo t > /data/term.txt; trap "exit 5" TERM; echo started; sleep 30 & wait',
      ],
      {
        onStdout: (pid, out) => {
          if (!sent && out.includes('started')) {
            sent = true;
            process.kill(pid, 'SIGTERM');
          }
        },
      },
    );
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
    const r = await cairn([
      'run',
      '-v',
      'v:/data',
      '--',
      'sh',
      '-c',
      `exec 3< /data/a; ${process.execPath} ${CLI} reload /data; echo "reload exit $?"`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /VOLUME_BUSY/);
    assert.match(r.stderr, /\/a\b/);
    assert.match(r.stdout, /reload exit 1/);
  });

  it('--workdir inside a volume: the command starts there (the serving process never waits on its mount)', async () => {
    const args = ['run', '--create', '-v', 'newvol:/scratch', '--workdir', '/scratch', '--'];
    const command = ['sh', '-c', 'pwd; echo hi > f'];
    const r = await cairn([...args, ...command], { timeoutMs: 20_000 });
    assert.ok(!r.timedOut, `cairn run hung (freed by aborting its FUSE connection): ${r.stderr}`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '/scratch\n');
    assert.equal(await readVol('newvol', '/f'), 'hi\n');
  });

  it('--workdir that does not exist fails with NOT_FOUND before the command starts', async () => {
    const marker = path.join(base, 'wd-started');
    const args = ['run', '-v', 'v:/data', '--workdir', '/data/no/such/dir', '--', 'touch', marker];
    const r = await cairn(args, { timeoutMs: 20_000 });
    assert.ok(!r.timedOut, r.stderr);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /NOT_FOUND/);
    await assert.rejects(fs.access(marker), 'the command never started');
  });

  it('runs a program that lives on a volume, by path and through PATH', async () => {
    const tool = '#!/bin/sh\\necho tool \\"\\$@\\"\\n';
    const script = `mkdir -p /tools/bin && printf "${tool}" > /tools/bin/tool && chmod +x /tools/bin/tool`;
    const w = await cairn(['run', '-v', 'v:/tools', '--', 'sh', '-c', script], { timeoutMs: 20_000 });
    assert.equal(w.code, 0, w.stderr);
    const byPath = await cairn(['run', '-v', 'v:/tools:ro', '--', '/tools/bin/tool', 'a b'], { timeoutMs: 20_000 });
    assert.ok(!byPath.timedOut, `cairn run hung: ${byPath.stderr}`);
    assert.equal(byPath.code, 0, byPath.stderr);
    assert.equal(byPath.stdout, 'tool a b\n');
    const env = { ...process.env, PATH: `/tools/bin:${process.env.PATH}` };
    const viaPath = await cairn(['run', '-v', 'v:/tools:ro', '--', 'tool', 'c'], { timeoutMs: 20_000, env });
    assert.ok(!viaPath.timedOut, `cairn run hung: ${viaPath.stderr}`);
    assert.equal(viaPath.code, 0, viaPath.stderr);
    assert.equal(viaPath.stdout, 'tool c\n');
    const missing = await cairn(['run', '-v', 'v:/tools:ro', '--', '/tools/bin/none'], { timeoutMs: 20_000 });
    assert.equal(missing.code, 127, missing.stderr);
  });

  /**
   * Runs a command that writes `/data/NAME` and then waits; once it has written the file (it says
   * so on stdout, after the file is closed) `send(pid)` signals the run. Returns the run's result.
   */
  async function interrupted(name: string, send: (pid: number) => void | Promise<void>): Promise<Result> {
    let sent = false;
    let failed: unknown;
    const cmd = `echo ${name} > /data/${name} && echo written && exec sleep 30`;
    const r = await cairn(['run', '-v', 'v:/data', '--commit-interval', '0', '--', 'sh', '-c', cmd], {
      detached: true,
      timeoutMs: 60_000,
      onStdout: (pid, out) => {
        if (!sent && out.includes('written')) {
          sent = true;
          Promise.resolve()
            .then(() => send(pid))
            .catch((err) => {
              // The run may be gone already (the result says what happened); anything else is the test's own failure.
              if (err?.code !== 'ESRCH') failed = err;
            });
        }
      },
    });
    if (failed) throw failed;
    assert.ok(sent && !r.timedOut, r.stderr);
    return r;
  }

  it('SIGINT to the whole process group (Ctrl-C) always ends in the final commit', async () => {
    for (let i = 0; i < 8; i++) {
      const r = await interrupted(`int-group-${i}`, (pid) => void process.kill(-pid, 'SIGINT'));
      assert.equal(r.code, 130, r.stderr);
      assert.equal(await readVol('v', `/int-group-${i}`), `int-group-${i}\n`, `run ${i}: ${r.stderr}`);
    }
  });

  it('SIGTERM as timeout(1) sends it (to cairn run, then to its group) always ends in the final commit', async () => {
    for (let i = 0; i < 6; i++) {
      const r = await interrupted(`term-timeout-${i}`, (pid) => {
        process.kill(pid, 'SIGTERM');
        process.kill(-pid, 'SIGTERM');
      });
      assert.equal(r.code, 143, r.stderr);
      assert.equal(await readVol('v', `/term-timeout-${i}`), `term-timeout-${i}\n`, `run ${i}: ${r.stderr}`);
    }
  });

  it('SIGTERM to cairn run alone always ends in the final commit', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await interrupted(`term-alone-${i}`, (pid) => void process.kill(pid, 'SIGTERM'));
      assert.equal(r.code, 143, r.stderr);
      assert.equal(await readVol('v', `/term-alone-${i}`), `term-alone-${i}\n`, `run ${i}: ${r.stderr}`);
    }
  });

  it('a second SIGTERM to cairn run, once the command has ended, does not stop the final commit', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await interrupted(`term-twice-${i}`, async (pid) => {
        const command = await commandPid(pid, 'sleep');
        process.kill(pid, 'SIGTERM');
        await gone(command);
        process.kill(pid, 'SIGTERM');
      });
      assert.equal(r.code, 143, r.stderr);
      assert.equal(await readVol('v', `/term-twice-${i}`), `term-twice-${i}\n`, `run ${i}: ${r.stderr}`);
    }
  });

  it('bad specs fail before the command starts', async () => {
    const marker = path.join(base, 'started');
    for (const args of [
      ['-v', 'v'],
      ['-v', 'v:data'],
      ['-v', 'missing:/data'],
      ['-v', 'bad name:/data'],
      ['-v', 'v:/data:rx'],
      ['-v', 'v:/data', '-v', 'v:/data/sub'], // one process cannot serve a mount inside its own
      ['-v', `v:${path.join(testHome, 'mnt')}`], // over Cairn's own state
      ['-v', `v:${path.join(base, 'store', 'mnt')}`], // inside the file store
    ]) {
      const r = await cairn(['run', ...args, '--', 'touch', marker], { timeoutMs: 20_000 });
      assert.notEqual(r.code, 0, `${args.join(' ')} must fail`);
      assert.match(r.stderr, /INVALID_ARGUMENT|NOT_FOUND/);
      await assert.rejects(fs.access(marker), 'the command never started');
    }
  });
});
