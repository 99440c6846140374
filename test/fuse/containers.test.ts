/**
 * Two "containers" — processes in separate mount namespaces (`unshare --mount`), each with its
 * own mount of one volume at the same path — against the real session and the embedded file
 * store: isolation until commit + reload, reload refused while a file is open there, concurrent
 * commits to different files both survive, and the last committer wins on one file.
 */
import '../helpers/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Volume } from '../../src/volume/index.js';
import { VolumeLog } from '../../src/format/log.js';
import { q, tmpDir } from '../helpers/mount.js';
import { waitFor } from '../helpers/wait.js';

const run = promisify(execFile);
const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const MOUNT_JS = path.join(DIST, 'src', 'fuse', 'mount.js');
const CONTROL_JS = path.join(DIST, 'src', 'fuse', 'control.js');
const INDEX_JS = path.join(DIST, 'src', 'index.js');

class Container {
  private constructor(readonly proc: ChildProcess) {}

  static async start(): Promise<Container> {
    const proc = spawn('unshare', ['--mount', '--propagation', 'private', 'sleep', '3600'], { stdio: 'ignore' });
    const ours = await fs.readlink('/proc/self/ns/mnt');
    // ready once the child runs in a mount namespace of its own
    const own = async () => (await fs.readlink(`/proc/${proc.pid}/ns/mnt`)) !== ours;
    await waitFor(async () => proc.exitCode !== null || (await own()), { what: 'unshare --mount' });
    if (proc.exitCode !== null) throw new Error('unshare --mount failed');
    return new Container(proc);
  }

  /** Runs a shell command in this container's mount namespace; resolves with { code, stdout, stderr }. */
  sh(script: string): Promise<{ code: number; stdout: string; stderr: string }> {
    return run('nsenter', ['-t', String(this.proc.pid), '-m', '--', 'sh', '-c', script], { env: process.env }).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (e) => ({ code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }),
    );
  }

  async node(code: string): Promise<{ code: number; stdout: string; stderr: string }> {
    return this.sh(`${q(process.execPath)} --input-type=module -e ${q(code)}`);
  }

  async mount(volume: string, mnt: string, store: string): Promise<void> {
    const r = await this.node(
      `const m = await import(${JSON.stringify(MOUNT_JS)}); await m.mount({ volume: ${JSON.stringify(volume)}, mountpoint: ${JSON.stringify(mnt)}, store: ${JSON.stringify(store)}, commitIntervalSec: 0 }); process.exit(0);`,
    );
    assert.equal(r.code, 0, r.stderr);
  }

  /** commit / reload over the control socket; resolves with the error code or 'OK'. */
  async control(mnt: string, op: 'commit' | 'reload'): Promise<{ result: string; message: string }> {
    const r = await this.node(
      `const c = await import(${JSON.stringify(CONTROL_JS)}); try { await c.controlRequest(${JSON.stringify(mnt)}, ${JSON.stringify(op)}); console.log(JSON.stringify({ result: 'OK', message: '' })); } catch (e) { console.log(JSON.stringify({ result: e.code, message: e.message })); }`,
    );
    return JSON.parse(r.stdout.trim().split('\n').pop() || '{}');
  }

  async stop(mnt: string): Promise<void> {
    await this.node(`const m = await import(${JSON.stringify(MOUNT_JS)}); await m.unmount(${JSON.stringify(mnt)}).catch(() => {});`);
    await this.sh(`fusermount -uz ${q(mnt)} 2>/dev/null || true`);
    this.proc.kill('SIGKILL');
  }
}

describe('two containers, one volume (real session)', () => {
  let a: Container;
  let b: Container;
  let mnt = '';
  let store = '';
  before(async () => {
    const base = await tmpDir();
    mnt = path.join(base, 'mnt');
    store = `file://${path.join(base, 'store')}`;
    await Volume.objects.create('shared', { store });
    await run('mkdir', ['-p', mnt]);
    a = await Container.start();
    b = await Container.start();
    await a.mount('shared', mnt, store);
    await b.mount('shared', mnt, store);
  });
  after(async () => {
    await a?.stop(mnt);
    await b?.stop(mnt);
  });

  it('mounts are private to their container', async () => {
    const host = await run('sh', ['-c', `grep -c ' ${mnt} ' /proc/self/mountinfo || true`]);
    assert.equal(host.stdout.trim(), '0');
    assert.match((await a.sh(`grep ' ${mnt} ' /proc/self/mountinfo`)).stdout, /cairn:shared/);
  });

  it('a write in A is invisible in B until A commits and B reloads', async () => {
    assert.equal((await a.sh(`echo one > ${q(mnt)}/a.txt`)).code, 0);
    assert.notEqual((await b.sh(`cat ${q(mnt)}/a.txt`)).code, 0);
    assert.equal((await a.control(mnt, 'commit')).result, 'OK');
    assert.notEqual((await b.sh(`cat ${q(mnt)}/a.txt`)).code, 0, 'not before reload');
    assert.equal((await b.control(mnt, 'reload')).result, 'OK');
    assert.equal((await b.sh(`cat ${q(mnt)}/a.txt`)).stdout, 'one\n');
  });

  it('reload in B is refused while B holds a file open, allowed after close', async () => {
    const hold = `exec 3< ${q(mnt)}/a.txt; echo open; exec sleep 30`;
    const args = ['-t', String(b.proc.pid), '-m', '--', 'sh', '-c', hold];
    const holder = spawn('nsenter', args, { stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise((r) => holder.stdout!.once('data', r)); // the file is open
    const refused = await b.control(mnt, 'reload');
    assert.equal(refused.result, 'VOLUME_BUSY');
    assert.match(refused.message, /\/a\.txt/);
    holder.kill('SIGKILL');
    await new Promise((r) => holder.once('exit', r));
    // the kernel releases the file asynchronously after the holder's exit
    let res = refused;
    const reloaded = async () => (res = await b.control(mnt, 'reload')).result !== 'VOLUME_BUSY';
    await waitFor(reloaded, { what: 'the release of a.txt' });
    assert.equal(res.result, 'OK');
  });

  it("the library's vol.commit() inside a container commits that container's mount", async () => {
    await a.sh(`echo via-library > ${q(mnt)}/lib.txt`);
    const r = await a.node(
      `const { Volume } = await import(${JSON.stringify(INDEX_JS)}); const v = await Volume.fromName('shared', { store: ${JSON.stringify(store)} }); await v.commit(); await v.close();`,
    );
    assert.equal(r.code, 0, r.stderr);
    const vol = await Volume.fromName('shared', { store });
    const got: Buffer[] = [];
    for await (const buf of vol.readFile('/lib.txt')) got.push(buf);
    await vol.close();
    assert.equal(Buffer.concat(got).toString(), 'via-library\n');
  });

  it('concurrent commits to different files both survive; on one file the last committer wins', async () => {
    await a.sh(`echo from-a > ${q(mnt)}/only-a.txt && echo a-version > ${q(mnt)}/same.txt`);
    await b.sh(`echo from-b > ${q(mnt)}/only-b.txt && echo b-version > ${q(mnt)}/same.txt`);
    const [ca, cb] = await Promise.all([a.control(mnt, 'commit'), b.control(mnt, 'commit')]);
    assert.equal(ca.result, 'OK');
    assert.equal(cb.result, 'OK');
    for (const c of [a, b]) {
      assert.equal((await c.control(mnt, 'reload')).result, 'OK');
      assert.equal((await c.sh(`cat ${q(mnt)}/only-a.txt`)).stdout, 'from-a\n');
      assert.equal((await c.sh(`cat ${q(mnt)}/only-b.txt`)).stdout, 'from-b\n');
    }
    // the later of the two records decides /same.txt: read what each record wrote there
    const vol = await Volume.fromName('shared', { store });
    const writes = (await new VolumeLog(vol.store, vol.id).recordsAfter(0)).flatMap((r) =>
      r.ops.flatMap((o) => (o.op === 'put' && o.path === 'same.txt' ? [{ seq: r.seq, text: `${o.entry.inline}` }] : [])),
    );
    await vol.close();
    const concurrent = writes.slice(-2);
    assert.deepEqual(concurrent.map((w) => w.text).sort(), ['a-version\n', 'b-version\n'], 'both recorded /same.txt');
    const later = concurrent.reduce((x, y) => (y.seq > x.seq ? y : x));
    assert.equal((await a.sh(`cat ${q(mnt)}/same.txt`)).stdout, later.text, 'A sees the later commit');
    assert.equal((await b.sh(`cat ${q(mnt)}/same.txt`)).stdout, later.text, 'B sees the later commit');
    // sequential: A commits after B -> A wins
    await a.sh(`echo a-last > ${q(mnt)}/same.txt`);
    await b.sh(`echo b-first > ${q(mnt)}/same.txt`);
    assert.equal((await b.control(mnt, 'commit')).result, 'OK');
    assert.equal((await a.control(mnt, 'commit')).result, 'OK');
    assert.equal((await b.control(mnt, 'reload')).result, 'OK');
    assert.equal((await b.sh(`cat ${q(mnt)}/same.txt`)).stdout, 'a-last\n');
    assert.equal((await a.control(mnt, 'reload')).result, 'OK');
    assert.equal((await a.sh(`cat ${q(mnt)}/same.txt`)).stdout, 'a-last\n');
  });
});
