/**
 * A real engine: busybox containers under podman (runc, `--network none`, so the daemon's
 * abstract socket is out of reach) use host mounts of a volume (`cairn mount`) bind-mounted at
 * /data, and commit and reload through /data/.cairn-control. Two host mounts are two sessions:
 * what a container commits on one is seen through the other after a reload from inside its
 * container. Skipped (with the reason) where podman, runc or busybox-static are missing.
 */
import '../helpers/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { Volume } from '../../src/volume/index.js';
import { cairn, unmountQuietly } from '../cli/harness.js';
import { tmpDir } from '../helpers/mount.js';
import { assertBusyWith, controlReplies } from '../helpers/control.js';
import { busyboxRootfs, podmanMissing, removeContainers, runBusybox } from '../helpers/podman.js';

const missing = await podmanMissing();

/** The shell idiom a container uses: one command, one JSON reply (head reads with read(2)). */
const control = (op: string) => `exec 3<>/data/.cairn-control; echo ${op} >&3; head -n1 <&3; exec 3<&-`;

describe('podman containers on host mounts', { skip: missing }, () => {
  let base = '';
  let rootfs = '';
  let m1 = '';
  let m2 = '';
  let store = '';
  const env = (): NodeJS.ProcessEnv => ({ ...process.env, CAIRN_STORE: store });

  before(async () => {
    base = await tmpDir('cairn-podman-');
    rootfs = await busyboxRootfs();
    store = `file://${path.join(base, 'store')}`;
    m1 = path.join(base, 'm1');
    m2 = path.join(base, 'm2');
    await Volume.objects.create('pod', { store });
    for (const m of [m1, m2]) {
      const r = await cairn(['mount', 'pod', m, '--commit-interval', '0'], { env: env() });
      assert.equal(r.code, 0, r.err);
    }
  });
  after(async () => {
    await removeContainers();
    for (const m of [m1, m2]) if (m) await unmountQuietly(m);
    await fsp.rm(base, { recursive: true, force: true });
    if (rootfs) await fsp.rm(rootfs, { recursive: true, force: true });
  });

  it('a container writes and commits; a container on another session sees it after its reload', async () => {
    const a = await runBusybox(rootfs, `echo from-a > /data/a.txt && ${control('commit')}`, {
      volumes: [`${m1}:/data`],
    });
    assert.equal(a.code, 0, a.stderr);
    const reply = JSON.parse(a.stdout.trim());
    assert.equal(reply.ok, true, a.stdout);
    assert.equal(reply.op, 'commit');
    assert.deepEqual(reply.result.paths, ['a.txt']);
    const seq = reply.seq as number;

    // The commit is on the store: a fresh reader has it.
    const v = await Volume.fromName('pod', { store });
    const got: Buffer[] = [];
    for await (const b of v.readFile('/a.txt')) got.push(b);
    assert.equal(Buffer.concat(got).toString(), 'from-a\n');

    const b = await runBusybox(rootfs, `if test -e /data/a.txt; then echo early; fi; ${control('reload')}; cat /data/a.txt`, {
      volumes: [`${m2}:/data`],
    });
    assert.equal(b.code, 0, b.stderr);
    const [reload, content, ...rest] = b.stdout.trim().split('\n');
    assert.equal(JSON.parse(reload).seq, seq, b.stdout);
    assert.equal(content, 'from-a');
    assert.deepEqual(rest, []);
  });

  it('reload from inside a container is refused while one of its files is open, naming it', async () => {
    await fsp.writeFile(path.join(m2, 'held.txt'), 'held');
    const r = await runBusybox(rootfs, `exec 4</data/held.txt; ${control('reload')}; exec 4<&-; ${control('status')}`, {
      volumes: [`${m2}:/data`],
    });
    assert.equal(r.code, 0, r.stderr);
    const [busy, status] = controlReplies(r.stdout);
    assertBusyWith(busy, ['/held.txt']);
    assert.equal(status.ok, true);
    assert.deepEqual((status.result as { openFiles: unknown[] }).openFiles, [], 'the control file is not an open file');
  });
});
