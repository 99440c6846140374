/**
 * A daemon killed with SIGKILL loses no flushed write: the next mount of the same mountpoint
 * (same session directory) recovers its pending changes and commits them — also when it was
 * killed in the middle of a commit (at each step: test/volume/crashpoints.test.ts). Real session,
 * embedded file store.
 */
import '../helpers/env.js';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Volume } from '../../src/volume/index.js';
import {
  cleanupAll,
  forceUnmount,
  q,
  readVolumeFile,
  shOk,
  startFileDaemon,
  tmpDir,
  type DaemonSpec,
  type RunningDaemon,
} from '../helpers/mount.js';
import { waitFor } from '../helpers/wait.js';

const start = startFileDaemon();

async function kill9(d: RunningDaemon) {
  d.child.kill('SIGKILL');
  await d.exited;
  await forceUnmount(d.mountpoint);
}

describe('SIGKILL of the daemon (real session)', () => {
  after(() => cleanupAll());

  it('keeps every flushed byte written before the kill, and commits it at the next mount', async () => {
    const base = await tmpDir();
    const spec: DaemonSpec = { mountpoint: path.join(base, 'mnt'), volume: 'crash1', storeDir: path.join(base, 'store') };
    const payload = crypto.randomBytes(3 * 1024 * 1024 + 17);
    const src = path.join(base, 'payload.bin');
    await fs.writeFile(src, payload);
    let d = await start(spec);
    await shOk(
      `cd ${q(spec.mountpoint)} && mkdir -p dir && dd if=${q(src)} of=dir/flushed.bin bs=1M conv=fsync status=none && printf small > small.txt && sync small.txt`,
    );
    // a writer still busy when the daemon dies
    const writer = shOk(`dd if=/dev/urandom of=${q(spec.mountpoint)}/busy.bin bs=64k count=100000 status=none`).catch(() => 'killed');
    const busySize = async () => (await fs.stat(path.join(spec.mountpoint, 'busy.bin'))).size;
    await waitFor(async () => (await busySize()) >= 1 << 20, { what: 'the busy writer to have written 1 MiB' });
    await kill9(d);
    await writer;
    d = await start(spec); // recovery: pending changes are committed at mount
    const viaMount = await shOk(`sha256sum ${q(spec.mountpoint)}/dir/flushed.bin | cut -d' ' -f1`);
    assert.equal(viaMount.trim(), crypto.createHash('sha256').update(payload).digest('hex'));
    await d.stop();
    // committed: another reader of the volume sees it without any mount
    assert.ok((await readVolumeFile(spec.storeDir!, 'crash1', '/dir/flushed.bin')).equals(payload));
    assert.equal((await readVolumeFile(spec.storeDir!, 'crash1', '/small.txt')).toString(), 'small');
    const vol = await Volume.fromName('crash1', { store: `file://${spec.storeDir}` });
    const busy = (await vol.listdir('/busy.bin'))[0]!;
    const got = await readVolumeFile(spec.storeDir!, 'crash1', '/busy.bin');
    assert.equal(got.length, busy.size, 'the half-written file is consistent: its size is its content');
    await vol.close();
  });
  // Kills at each step of a commit (deterministic crash points): test/volume/crashpoints.test.ts.
});
