/**
 * Per-container sessions through the OCI hook (`cairn oci-hook install`, podman `--hooks-dir`,
 * `--annotation cairn.volumes=VOL:/data`): two busybox containers on one volume each have their
 * own session — a file one writes is not visible to the other until the writer commits and the
 * reader reloads through the control file; reload is refused while the reader holds the file
 * open, naming it; a container that stops without committing still publishes its changes
 * (poststop); the mounts are invisible on the host. Skipped where podman is missing.
 */
import '../helpers/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { Volume } from '../../src/volume/index.js';
import { cairn } from '../cli/harness.js';
import { tmpDir } from '../helpers/mount.js';
import { busyboxRootfs, exec, podmanMissing, removeContainers, runBusybox, PODMAN_GLOBAL } from '../helpers/podman.js';

const missing = await podmanMissing();
const control = (op: string) => `exec 3<>/data/.cairn-control; echo ${op} >&3; head -n1 <&3; exec 3<&-`;

describe('OCI hook: a session per container', { skip: missing }, () => {
  let base = '';
  let rootfs = '';
  let hooksDir = '';
  let ociDir = '';
  let store = '';
  const vol = 'hooked';
  const env = (): NodeJS.ProcessEnv => ({ ...process.env, CAIRN_STORE: store, CAIRN_OCI_DIR: ociDir });
  const podman = (...args: string[]) => exec('podman', [...PODMAN_GLOBAL, ...args], { env: env() });
  const sh = (name: string, script: string) => podman('exec', name, 'sh', '-c', script);
  const start = async (mode = ''): Promise<string> => {
    const annotations = ['--annotation', `cairn.volumes=${vol}:/data${mode}`, '--annotation', 'cairn.commit-interval=0'];
    const r = await runBusybox(rootfs, 'sleep 600', {
      env: env(),
      detach: true,
      extra: ['--hooks-dir', hooksDir, ...annotations],
    });
    assert.match(r.stdout, /^cairn-test-/);
    const ok = await sh(r.stdout, 'grep -q " /data " /proc/self/mountinfo');
    assert.equal(ok.code, 0, `no /data in the container: ${ok.stderr}`);
    return r.stdout;
  };

  before(async () => {
    base = await tmpDir('cairn-hook-');
    hooksDir = path.join(base, 'hooks.d');
    ociDir = path.join(base, 'oci');
    store = `file://${path.join(base, 'store')}`;
    rootfs = await busyboxRootfs();
    await Volume.objects.create(vol, { store });
    const r = await cairn(['oci-hook', 'install', '--hooks-dir', hooksDir], { env: env() });
    assert.equal(r.code, 0, r.err);
  });
  after(async () => {
    await removeContainers(env());
    // Daemons a failed test left: their state files name them.
    for (const id of await fsp.readdir(ociDir).catch(() => [] as string[])) {
      const text = await fsp.readFile(path.join(ociDir, id, 'state.json'), 'utf8').catch(() => '');
      for (const m of text ? (JSON.parse(text).mounts as { pid: number; staging: string }[]) : []) {
        try {
          process.kill(m.pid, 'SIGTERM');
        } catch {
          /* gone */
        }
        await exec('umount', ['-l', m.staging]);
      }
    }
    if (ociDir) await exec('umount', ['-l', ociDir]);
    if (base) await fsp.rm(base, { recursive: true, force: true });
    if (rootfs) await fsp.rm(rootfs, { recursive: true, force: true });
  });

  it('isolates two containers until commit + reload, refuses reload with an open file, commits at stop', async () => {
    const a = await start();
    const b = await start();

    // Own sessions: different FUSE connections, and nothing on the host.
    const devA = (await sh(a, "grep ' /data ' /proc/self/mountinfo | cut -d' ' -f3")).stdout.trim();
    const devB = (await sh(b, "grep ' /data ' /proc/self/mountinfo | cut -d' ' -f3")).stdout.trim();
    assert.ok(devA && devB && devA !== devB, `${devA} / ${devB}`);
    const host = await fsp.readFile('/proc/self/mountinfo', 'utf8');
    assert.ok(!host.includes(`cairn:${vol}`), 'the mounts are invisible on the host');

    assert.equal((await sh(a, 'echo from-a > /data/a.txt')).code, 0);
    assert.equal((await sh(b, 'test -e /data/a.txt')).code, 1, 'not visible before commit');
    const commit = JSON.parse((await sh(a, control('commit'))).stdout.trim());
    assert.equal(commit.ok, true, JSON.stringify(commit));
    assert.equal((await sh(b, 'test -e /data/a.txt')).code, 1, 'not visible before the reader reloads');
    const reload = JSON.parse((await sh(b, control('reload'))).stdout.trim());
    assert.equal(reload.seq, commit.seq, JSON.stringify(reload));
    assert.equal((await sh(b, 'cat /data/a.txt')).stdout, 'from-a\n');

    // Reload refused while the reader holds the file open.
    const held = await sh(b, `exec 4</data/a.txt; ${control('reload')}`);
    const busy = JSON.parse(held.stdout.trim());
    assert.equal(busy.error?.code, 'VOLUME_BUSY', held.stdout);
    // (the native binding also names the opener's pid)
    assert.deepEqual(
      busy.error.context.openFiles.map((o: { path: string }) => o.path),
      ['/a.txt'],
    );

    // A container that stops without committing still publishes (poststop: final commit).
    assert.equal((await sh(a, 'echo late > /data/late.txt')).code, 0);
    const stop = await podman('rm', '-f', '-t', '0', a);
    assert.equal(stop.code, 0, stop.stderr);
    const got = await cairn(['volume', 'get', vol, '/late.txt', '-'], { env: env() });
    assert.equal(got.code, 0, got.err);
    assert.equal(got.out, 'late\n');
  });

  it('mounts :ro volumes read-only (EROFS), still reloadable through the control file', async () => {
    const c = await start(':ro');
    assert.equal((await sh(c, 'cat /data/a.txt')).stdout, 'from-a\n');
    const w = await sh(c, 'echo x > /data/w.txt');
    assert.notEqual(w.code, 0);
    assert.match(w.stderr, /Read-only file system/);
    const reload = JSON.parse((await sh(c, control('reload'))).stdout.trim());
    assert.equal(reload.ok, true, JSON.stringify(reload));
    const commit = JSON.parse((await sh(c, control('commit'))).stdout.trim());
    assert.equal(commit.error?.code, 'READ_ONLY');
    assert.equal((await podman('rm', '-f', '-t', '0', c)).code, 0);
  });

  it('recovers and commits at stop what a killed daemon left', async () => {
    const c = await start();
    assert.equal((await sh(c, 'echo survived > /data/killed.txt')).code, 0);
    const id = (await podman('inspect', '--format', '{{.Id}}', c)).stdout.trim();
    const state = JSON.parse(await fsp.readFile(path.join(ociDir, id, 'state.json'), 'utf8'));
    const pid = state.mounts[0].pid as number;
    process.kill(pid, 'SIGKILL');
    const before = await cairn(['volume', 'get', vol, '/killed.txt', '-'], { env: env() });
    assert.notEqual(before.code, 0, 'not committed before the stop');
    while (
      await fsp.access(`/proc/${pid}`).then(
        () => true,
        () => false,
      )
    )
      await new Promise((r) => setTimeout(r, 20));
    assert.equal((await podman('rm', '-f', '-t', '0', c)).code, 0);
    const got = await cairn(['volume', 'get', vol, '/killed.txt', '-'], { env: env() });
    assert.equal(got.code, 0, got.err);
    assert.equal(got.out, 'survived\n');
  });
});
