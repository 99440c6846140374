/**
 * The main job: a guided demonstration of Cairn on the embedded default store, every step
 * checked (any misbehaviour exits non-zero). Run by `bash scripts/demo.sh`.
 *
 * Two "containers" are two private mount namespaces (`unshare --mount`), each holding its own
 * FUSE mount of one volume at the same path; commands run inside them with `nsenter`.
 * Size of the large file: `$CAIRN_DEMO_MB` (default 256).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const MB = Number(process.env.CAIRN_DEMO_MB || 256);
const volume = `demo-${crypto.randomBytes(3).toString('hex')}`;
const work = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-demo-'));
const mnt = path.join(work, 'mnt');
const sleepers: ChildProcess[] = [];
let step = 0;

const say = (msg: string) => console.log(msg);
const title = (msg: string) => say(`\n== ${++step}. ${msg}`);
function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`check failed: ${what}`);
  say(`   ok: ${what}`);
}

/** `cairn ARGS` on the host. */
async function cairn(...args: string[]): Promise<string> {
  say(`   $ cairn ${args.join(' ')}`);
  const { stdout } = await run(process.execPath, [CLI, ...args], { maxBuffer: 1 << 26 });
  return stdout;
}

/** A container: a process holding a private mount namespace. */
async function container(): Promise<number> {
  const p = spawn('unshare', ['--mount', '--propagation', 'private', 'sleep', '86400'], { stdio: 'ignore' });
  sleepers.push(p);
  await new Promise((r) => setTimeout(r, 200));
  if (p.exitCode !== null || !p.pid) throw new Error('cannot create a mount namespace (unshare --mount needs root)');
  return p.pid;
}

/** A shell command inside a container. Resolves with stdout; rejects with stderr on failure. */
async function inside(pid: number, label: string, script: string, shown?: string): Promise<string> {
  say(`   [${label}] $ ${shown ?? script.replaceAll(`${q(process.execPath)} ${q(CLI)}`, 'cairn')}`);
  const { stdout } = await run('nsenter', ['-t', String(pid), '-m', '--', 'sh', '-c', script], { maxBuffer: 1 << 26 });
  return stdout;
}
const cairnIn = (pid: number, label: string, args: string) => inside(pid, label, `${q(process.execPath)} ${q(CLI)} ${args}`);
const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

async function main(): Promise<void> {
  say(`Cairn demonstration — volume ${volume}, store: the embedded default (${process.env.CAIRN_HOME || '~/.cairn'})`);

  title('a local directory with a few files and a large one');
  const local = path.join(work, 'dataset');
  await fs.mkdir(path.join(local, 'configs'), { recursive: true });
  await fs.writeFile(path.join(local, 'README.txt'), 'a small dataset\n');
  await fs.writeFile(path.join(local, 'configs', 'train.json'), '{"epochs": 3}\n');
  const big = crypto.randomBytes(MB * 1024 * 1024);
  const bigHash = crypto.createHash('sha256').update(big).digest('hex');
  await fs.writeFile(path.join(local, 'big.bin'), big);
  say(`   ${local}: README.txt, configs/train.json, big.bin (${MB} MiB)`);

  title('create a volume and put the directory into it');
  await cairn('volume', 'create', volume);
  await cairn('volume', 'put', volume, local, '/data');
  const listing = await cairn('volume', 'ls', volume, '/data');
  say(listing.trimEnd().replace(/^/gm, '   '));
  check(listing.includes('big.bin') && listing.includes('configs'), 'the volume lists the uploaded files');

  title('two containers, each with its own mount of the volume at the same path');
  const a = await container();
  const b = await container();
  await fs.mkdir(mnt, { recursive: true });
  await cairnIn(a, 'A', `mount ${volume} ${q(mnt)} --commit-interval 0`);
  await cairnIn(b, 'B', `mount ${volume} ${q(mnt)} --commit-interval 0`);
  const hostSees = await run('sh', ['-c', `grep -c ' ${mnt} ' /proc/self/mountinfo || true`]);
  check(hostSees.stdout.trim() === '0', "the host does not see the containers' mounts");
  check((await inside(a, 'A', `cat ${q(mnt)}/data/README.txt`)) === 'a small dataset\n', 'container A reads the volume');

  title('write in A: invisible in B until A commits and B reloads');
  await inside(a, 'A', `echo 'hello from A' > ${q(mnt)}/hello.txt`);
  const before = await inside(b, 'B', `test -e ${q(mnt)}/hello.txt && echo yes || echo no`);
  check(before.trim() === 'no', 'B does not see the uncommitted file');
  say((await cairnIn(a, 'A', `commit ${q(mnt)}`)).trimEnd().replace(/^/gm, '   '));
  const stillNot = await inside(b, 'B', `test -e ${q(mnt)}/hello.txt && echo yes || echo no`);
  check(stillNot.trim() === 'no', "B still sees its own snapshot after A's commit");
  await cairnIn(b, 'B', `reload ${q(mnt)}`);
  const seen = await inside(b, 'B', `cat ${q(mnt)}/hello.txt`);
  check(seen === 'hello from A\n', `B reads A's file after reload: ${JSON.stringify(seen.trim())}`);

  title('a reload is refused while a file is open, and names it');
  const holder = spawn('nsenter', ['-t', String(b), '-m', '--', 'sh', '-c', `exec 3< ${q(mnt)}/hello.txt; exec sleep 60`], {
    stdio: 'ignore',
  });
  sleepers.push(holder);
  await new Promise((r) => setTimeout(r, 500));
  const refused = await cairnIn(b, 'B', `reload ${q(mnt)}`).then(
    () => '',
    (err: { stderr?: string }) => String(err.stderr ?? ''),
  );
  say(`   ${refused.trim()}`);
  check(refused.includes('VOLUME_BUSY') && refused.includes('/hello.txt'), 'reload refused with VOLUME_BUSY naming /hello.txt');
  holder.kill('SIGKILL');
  await new Promise((r) => holder.once('exit', r));
  await new Promise((r) => setTimeout(r, 300));
  await cairnIn(b, 'B', `reload ${q(mnt)}`);
  check(true, 'reload allowed once the file is closed');

  title(`read the ${MB} MiB file in parallel from both containers`);
  const reader = `const c=require('crypto'),f=require('fs');const h=c.createHash('sha256');const t=process.hrtime.bigint();let n=0;const s=f.createReadStream(process.argv[1],{highWaterMark:1<<20});s.on('data',d=>{n+=d.length;h.update(d)});s.on('end',()=>{const sec=Number(process.hrtime.bigint()-t)/1e9;console.log(JSON.stringify({bytes:n,sec,sha256:h.digest('hex')}))})`;
  const t0 = process.hrtime.bigint();
  const results = await Promise.all(
    [a, b].map(async (pid, i) =>
      JSON.parse(
        await inside(
          pid,
          i ? 'B' : 'A',
          `${q(process.execPath)} -e ${q(reader)} ${q(`${mnt}/data/big.bin`)}`,
          `sha256 + time of ${mnt}/data/big.bin`,
        ),
      ),
    ),
  );
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  for (const [i, r] of results.entries()) {
    say(`   ${i ? 'B' : 'A'}: ${(r.bytes / 1048576 / r.sec).toFixed(0)} MiB/s (${r.sec.toFixed(2)} s)`);
    check(r.sha256 === bigHash, `${i ? 'B' : 'A'} read the file byte for byte`);
  }
  say(
    `   aggregate: ${((2 * MB) / wall).toFixed(0)} MiB/s over ${wall.toFixed(2)} s (cold: the chunks came from the store once, then from the host cache)`,
  );
  say(
    `   RESULT ${JSON.stringify({ mib: MB, readers: 2, aggregateMiBps: Math.round((2 * MB) / wall), perReaderMiBps: results.map((r) => Math.round(r.bytes / 1048576 / r.sec)) })}`,
  );

  title('unmount both (final commit) and show the history');
  await cairnIn(a, 'A', `unmount ${q(mnt)}`);
  await cairnIn(b, 'B', `unmount ${q(mnt)}`);
  const history = await cairn('volume', 'history', volume);
  say(history.trimEnd().replace(/^/gm, '   '));
  check(history.includes('hello.txt'), 'the history shows the commit of hello.txt');
}

async function cleanup(): Promise<void> {
  for (const pid of sleepers.map((s) => s.pid)) {
    if (!pid) continue;
    await run('nsenter', ['-t', String(pid), '-m', '--', 'fusermount', '-uz', mnt]).catch(() => undefined);
  }
  for (const s of sleepers) s.kill('SIGKILL');
  await run(process.execPath, [CLI, 'volume', 'delete', volume, '--yes', '--allow-missing']).catch(() => undefined);
  await fs.rm(work, { recursive: true, force: true });
}

try {
  await main();
  await cleanup();
  say('\nDemonstration complete: every check passed.');
} catch (err) {
  console.error(`\nDEMO FAILED at step ${step}: ${(err as { stderr?: string }).stderr || (err as Error).message}`);
  await cleanup();
  process.exit(1);
}
