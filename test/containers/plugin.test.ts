/**
 * `cairn plugin` with real podman: `podman volume create --driver cairn`, busybox containers
 * (`--network none`) that write into `-v NAME:/data`, commit through /data/.cairn-control or
 * leave the final commit to the last Unmount; what they write is on the store (read with
 * `cairn volume get`) and in the next container; ls/inspect/rm behave (rm refused in use); a
 * plugin killed while a container writes, then restarted, loses nothing. The protocol's quirks
 * (Get of a missing volume answers only Err) are checked on the socket itself.
 *
 * podman is pointed at the plugin through CONTAINERS_CONF (a temp containers.conf); containers
 * run from an image imported from a busybox directory (see importImage for why not --rootfs).
 */
import '../helpers/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { cairn } from '../cli/harness.js';
import { CLI } from '../cli/harness.js';
import { forceUnmount, tmpDir } from '../helpers/mount.js';
import {
  busyboxRootfs,
  exec,
  importImage,
  podmanMissing,
  removeContainers,
  removeImage,
  runBusybox,
  PODMAN_GLOBAL,
} from '../helpers/podman.js';
import { parseOptions, redactUrl } from '../../src/plugin/driver.js';
import { CairnError } from '../../src/errors.js';

const missing = await podmanMissing();
const control = (op: string) => `exec 3<>/data/.cairn-control; echo ${op} >&3; head -n1 <&3; exec 3<&-`;

/** POSTs one plugin call on a Unix socket; resolves with the parsed answer. */
function call(socket: string, route: string, body: object): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const headers = { 'Content-Type': 'application/json' };
    const req = http.request({ socketPath: socket, path: route, method: 'POST', headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve(JSON.parse(text) as Record<string, unknown>));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

describe('plugin options', () => {
  it('redacts credentials and rejects unknown or unsupported options', () => {
    assert.equal(
      redactUrl('s3://AKIA:secret@bucket/p?endpoint=http://x&secret_key=abc&region=r'),
      's3://***@bucket/p?endpoint=http://x&secret_key=***&region=r',
    );
    assert.deepEqual(parseOptions({ ro: 'true', commit_interval: '2', volume: 'data' }), {
      readOnly: true,
      commitIntervalSec: 2,
      volume: 'data',
    });
    assert.throws(
      () => parseOptions({ colour: 'blue' }),
      (e: CairnError) => e.code === 'INVALID_ARGUMENT',
    );
    assert.throws(
      () => parseOptions({ store: 'ftp://x' }),
      (e: CairnError) => e.code === 'INVALID_ARGUMENT',
    );
    assert.deepEqual(parseOptions({ seq: '3' }), { seq: 3, readOnly: true });
    assert.throws(
      () => parseOptions({ seq: '-1' }),
      (e: CairnError) => e.code === 'INVALID_ARGUMENT',
    );
  });
});

describe('cairn plugin under podman', { skip: missing }, () => {
  let base = '';
  let rootfs = '';
  let socket = '';
  let stateDir = '';
  let store = '';
  let image = '';
  let plugin: ChildProcess | undefined;
  let pluginLog = '';
  const vol = `cairn-t${process.pid}`;
  const env = (): NodeJS.ProcessEnv => ({
    ...process.env,
    CAIRN_STORE: store,
    CONTAINERS_CONF: path.join(base, 'containers.conf'),
  });
  const podman = (...args: string[]) => exec('podman', [...PODMAN_GLOBAL, ...args], { env: env() });
  const run = (script: string, o: { detach?: boolean } = {}) =>
    runBusybox(rootfs, script, { image, env: env(), volumes: [`${vol}:/data`], ...o });

  async function startPlugin(): Promise<void> {
    const args = [CLI, 'plugin', '--socket', socket, '--state-dir', stateDir];
    const child = spawn(process.execPath, args, { env: env(), stdio: ['ignore', 'ignore', 'pipe'] });
    let own = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (c: string) => {
      own += c;
      pluginLog += c;
    });
    plugin = child;
    const deadline = Date.now() + 20_000;
    while (!own.includes('serving')) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`plugin did not start: ${pluginLog}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  async function stopPlugin(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = plugin;
    plugin = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill(signal);
    await exited;
  }
  async function storeFile(p: string, volume = vol): Promise<string> {
    const r = await cairn(['volume', 'get', volume, p, '-'], { env: env() });
    assert.equal(r.code, 0, `${r.err}\nplugin log:\n${pluginLog}`);
    return r.out;
  }

  before(async () => {
    base = await tmpDir('cairn-plugin-');
    socket = path.join(base, 'cairn.sock');
    stateDir = path.join(base, 'state');
    store = `file://${path.join(base, 'store')}`;
    await fsp.writeFile(path.join(base, 'containers.conf'), `[engine.volume_plugins]\ncairn = "${socket}"\n`);
    rootfs = await busyboxRootfs();
    image = await importImage(rootfs, `localhost/cairn-test-busybox:${process.pid}`, env());
    await startPlugin();
  });
  after(async () => {
    await removeContainers(env());
    if (!plugin && base) await startPlugin().catch(() => undefined);
    if (base) await podman('volume', 'rm', '-f', vol);
    await stopPlugin();
    if (image) await removeImage(image, env());
    for (const name of await fsp.readdir(path.join(stateDir, 'mounts')).catch(() => [] as string[])) {
      const dir = path.join(stateDir, 'mounts', name);
      for (const id of await fsp.readdir(dir).catch(() => [] as string[])) await forceUnmount(path.join(dir, id));
    }
    if (base) await fsp.rm(base, { recursive: true, force: true });
    if (rootfs) await fsp.rm(rootfs, { recursive: true, force: true });
  });

  it('answers a Get of a missing volume with Err alone, and serves a root-only socket', async () => {
    const r = await call(socket, '/VolumeDriver.Get', { Name: 'no-such-volume' });
    assert.deepEqual(Object.keys(r), ['Err']);
    assert.match(String(r.Err), /NOT_FOUND/);
    assert.deepEqual(await call(socket, '/Plugin.Activate', {}), { Implements: ['VolumeDriver'] });
    assert.equal((await fsp.stat(socket)).mode & 0o777, 0o600);
  });

  it('gives each Mount ID its own session (Docker calls Mount per container)', async () => {
    const dv = `${vol}-docker`;
    assert.equal((await call(socket, '/VolumeDriver.Create', { Name: dv, Opts: {} })).Err, '');
    const one = String((await call(socket, '/VolumeDriver.Mount', { Name: dv, ID: 'ctr-one' })).Mountpoint);
    const two = String((await call(socket, '/VolumeDriver.Mount', { Name: dv, ID: 'ctr-two' })).Mountpoint);
    assert.ok(one && two && one !== two, `${one} ${two}`);
    await fsp.writeFile(path.join(one, 'd.txt'), 'docker');
    await assert.rejects(fsp.access(path.join(two, 'd.txt')), { code: 'ENOENT' });
    assert.equal((await call(socket, '/VolumeDriver.Unmount', { Name: dv, ID: 'ctr-one' })).Err, '');
    assert.equal(await storeFile('/d.txt', dv), 'docker', 'committed at the Unmount of its ID');
    const busy = await call(socket, '/VolumeDriver.Remove', { Name: dv });
    assert.match(String(busy.Err), /VOLUME_BUSY/);
    assert.equal((await call(socket, '/VolumeDriver.Unmount', { Name: dv, ID: 'ctr-two' })).Err, '');
    assert.equal((await call(socket, '/VolumeDriver.Remove', { Name: dv })).Err, '');
  });

  it('podman volume create / ls / inspect', async () => {
    const c = await podman('volume', 'create', '--driver', 'cairn', vol);
    assert.equal(c.code, 0, c.stderr + pluginLog);
    const ls = await podman('volume', 'ls', '--format', '{{.Driver}} {{.Name}}');
    assert.ok(ls.stdout.split('\n').includes(`cairn ${vol}`), ls.stdout);
    const inspect = await podman('volume', 'inspect', vol);
    assert.equal(inspect.code, 0, inspect.stderr);
    const [info] = JSON.parse(inspect.stdout);
    assert.equal(info.Driver, 'cairn');
    assert.equal(info.Status.volume, vol);
  });

  it('a container writes and commits through the control file; the store and the next container have it', async () => {
    const a = await run(`echo one > /data/one.txt && ${control('commit')}`);
    assert.equal(a.code, 0, a.stderr + pluginLog);
    const reply = JSON.parse(a.stdout.trim());
    assert.equal(reply.ok, true, a.stdout);
    assert.deepEqual(reply.result.paths, ['one.txt']);
    assert.equal(await storeFile('/one.txt'), 'one\n');
    const b = await run('cat /data/one.txt');
    assert.equal(b.code, 0, b.stderr);
    assert.equal(b.stdout, 'one\n');
  });

  it('a container that never commits is committed at the last Unmount', async () => {
    const a = await run('echo two > /data/two.txt');
    assert.equal(a.code, 0, a.stderr + pluginLog);
    assert.equal(await storeFile('/two.txt'), 'two\n');
    const [info] = JSON.parse((await podman('volume', 'inspect', vol)).stdout);
    assert.equal(info.Mountpoint, '', 'unmounted after the last container');
  });

  it('a ro=true volume refuses writes with EROFS and still reloads', async () => {
    const ro = `${vol}-ro`;
    const c = await podman('volume', 'create', '--driver', 'cairn', '-o', 'ro=true', '-o', `volume=${vol}`, ro);
    assert.equal(c.code, 0, c.stderr + pluginLog);
    try {
      const script = `cat /data/one.txt; echo x > /data/w.txt || echo refused; ${control('reload')}`;
      const r = await runBusybox(rootfs, script, {
        image,
        env: env(),
        volumes: [`${ro}:/data`],
      });
      assert.equal(r.code, 0, r.stderr);
      const [content, refused, reload] = r.stdout.trim().split('\n');
      assert.equal(content, 'one');
      assert.equal(refused, 'refused');
      assert.match(r.stderr, /Read-only file system/);
      assert.equal(JSON.parse(reload).ok, true, reload);
    } finally {
      await podman('volume', 'rm', '-f', ro);
    }
  });

  it('a seq=N volume shows that snapshot, read-only', async () => {
    const old = `${vol}-seq`;
    // seq 1 is the commit of one.txt (test 3); two.txt came later.
    const c = await podman('volume', 'create', '--driver', 'cairn', '-o', 'seq=1', '-o', `volume=${vol}`, old);
    assert.equal(c.code, 0, c.stderr + pluginLog);
    try {
      const script = 'cat /data/one.txt; test -e /data/two.txt && echo two; echo x > /data/w.txt || echo refused';
      const r = await runBusybox(rootfs, script, {
        image,
        env: env(),
        volumes: [`${old}:/data`],
      });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout.trim().split('\n'), ['one', 'refused']);
      assert.match(r.stderr, /Read-only file system/);
    } finally {
      await podman('volume', 'rm', '-f', old);
    }
  });

  it('a restarted plugin serves again the mount of a daemon that died, recovering its changes', async () => {
    const a = (await run('echo four > /data/four.txt; sleep 600', { detach: true })).stdout;
    const deadline = Date.now() + 20_000;
    while ((await podman('exec', a, 'cat', '/data/four.txt')).stdout !== 'four\n') {
      if (Date.now() > deadline) throw new Error('the container did not write');
      await new Promise((res) => setTimeout(res, 100));
    }
    const [info] = JSON.parse((await podman('volume', 'inspect', vol)).stdout);
    const st = await cairn(['status', info.Mountpoint, '--json'], { env: env() });
    assert.equal(st.code, 0, st.err);
    const pid = JSON.parse(st.out).pid as number;
    process.kill(pid, 'SIGKILL');
    while (
      await fsp.access(`/proc/${pid}`).then(
        () => true,
        () => false,
      )
    )
      await new Promise((r) => setTimeout(r, 20));

    await stopPlugin();
    await startPlugin();
    assert.equal(await storeFile('/four.txt'), 'four\n', 'recovered when mounted again');
    const b = await run('cat /data/four.txt');
    assert.equal(b.stdout, 'four\n', b.stderr);
    assert.equal((await podman('rm', '-f', '-t', '0', a)).code, 0);
    const [after] = JSON.parse((await podman('volume', 'inspect', vol)).stdout);
    assert.equal(after.Mountpoint, '', pluginLog);
  });

  it('refuses to remove a volume in use; a killed and restarted plugin loses nothing', async () => {
    const name = (await run('echo three > /data/three.txt; sleep 600', { detach: true })).stdout;
    const deadline = Date.now() + 20_000;
    for (;;) {
      const r = await podman('exec', name, 'cat', '/data/three.txt');
      if (r.stdout === 'three\n') break;
      if (Date.now() > deadline) throw new Error(`the container did not write: ${r.stderr}`);
      await new Promise((res) => setTimeout(res, 100));
    }
    const rm = await podman('volume', 'rm', vol);
    assert.notEqual(rm.code, 0, 'rm of a volume in use must fail');

    await stopPlugin('SIGKILL');
    await startPlugin();
    const stop = await podman('rm', '-f', '-t', '0', name);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(await storeFile('/three.txt'), 'three\n', pluginLog);

    const rm2 = await podman('volume', 'rm', vol);
    assert.equal(rm2.code, 0, rm2.stderr + pluginLog);
    const ls = await podman('volume', 'ls', '--format', '{{.Name}}');
    assert.ok(!ls.stdout.split('\n').includes(vol));
    assert.equal(await storeFile('/one.txt'), 'one\n', 'removing the plugin volume keeps its data');
  });
});
