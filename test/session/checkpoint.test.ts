import '../helpers/env.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Volume } from '../../src/volume/index.js';
import { openStore } from '../../src/store/open.js';
import { keys } from '../../src/format/index.js';
import { CHECKPOINT_EVERY } from '../../src/session/index.js';

describe('checkpoints', () => {
  it('are written every CHECKPOINT_EVERY seqs and let a new session start without the whole log', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-cp-'));
    const store = await openStore(`file://${dir}`);
    const vol = await Volume.fromName('cp', { store, createIfMissing: true });
    const s = await vol.session();
    // POSIX metadata, the root's included, must survive the checkpoint too.
    await s.chown('/', 7, 8);
    await s.chmod('/', 0o1777);
    await s.setxattr('/', 'user.root', Buffer.from('r'));
    await s.mknod('/dev0', 'chardev', 0o600, 0x0103, { uid: 9, gid: 9 });
    await s.setTimes('/dev0', { atimeMs: 5000, mtimeMs: 6000 });
    for (let i = 1; i <= CHECKPOINT_EVERY + 3; i++) {
      await s.create(`/f${i % 7}`, 0o644);
      await s.write(`/f${i % 7}`, 0, Buffer.from(`v${i}`));
      await s.commit();
    }
    const cps = await store.list(keys.checkpointPrefix(vol.id));
    assert.deepEqual(
      cps.map((o) => Number(o.key.split('/').pop())),
      [CHECKPOINT_EVERY],
    );
    // remove the early records: a new session must not need them
    for (let seq = 1; seq <= CHECKPOINT_EVERY; seq++) await store.delete(keys.log(vol.id, seq));
    const fresh = await vol.session();
    assert.equal(fresh.seq, CHECKPOINT_EVERY + 3);
    for (let k = 0; k < 7; k++) {
      const last = [...Array(CHECKPOINT_EVERY + 3).keys()]
        .map((i) => i + 1)
        .filter((i) => i % 7 === k)
        .pop()!;
      assert.equal((await fresh.read(`/f${k}`, 0, 100)).toString(), `v${last}`);
    }
    const root = await fresh.stat('/');
    assert.deepEqual([root.uid, root.gid, root.mode], [7, 8, 0o1777]);
    assert.equal((await fresh.getxattr('/', 'user.root')).toString(), 'r');
    const dev = await fresh.stat('/dev0');
    assert.deepEqual([dev.type, dev.rdev, dev.uid, dev.atimeMs, dev.mtimeMs], ['chardev', 0x0103, 9, 5000, 6000]);
    await Promise.all([s.close(), fresh.close()]);
    await vol.close();
    await fs.rm(dir, { recursive: true, force: true });
  });
});
