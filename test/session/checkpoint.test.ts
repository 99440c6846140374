import '../helpers/env.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Volume } from '../../src/volume/index.js';
import { openStore } from '../../src/store/open.js';
import { gunzipSync, gzipSync } from 'node:zlib';
import { type EntryData, FORMAT_VERSION, VolumeLog, encodeCheckpointSync, keys, streamCheckpoint } from '../../src/format/index.js';
import { isCairnError } from '../../src/errors.js';
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

  it('stream: many gzip members, entries one batch at a time, damage anywhere CORRUPT before a session uses any', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-cp-stream-'));
    const store = await openStore(`file://${dir}`);
    const vol = await Volume.fromName('big', { store, createIfMissing: true });
    const n = 30_000;
    const all: [string, EntryData][] = [['d', { type: 'directory', mode: 0o755, mtimeMs: 1, size: 0 }]];
    for (let i = 0; i < n; i++)
      all.push([`d/f${i}`, { type: 'file', mode: 0o644, mtimeMs: 2, size: 40, inline: Buffer.alloc(40, i % 251) }]);
    const body = encodeCheckpointSync(1, all);
    const text = gunzipSync(body);
    assert.ok(text.length > 3 << 20, `${text.length} bytes of text`);
    let members = 0;
    for (let i = body.indexOf(Buffer.from([0x1f, 0x8b, 0x08])); i >= 0; i = body.indexOf(Buffer.from([0x1f, 0x8b, 0x08]), i + 1)) members++;
    assert.ok(members >= 3, `${members} gzip members`);
    const key = keys.checkpoint(vol.id, 1);
    const got: [string, EntryData][] = [];
    let batches = 0;
    const r = await streamCheckpoint(body, key, vol.id, (b) => {
      batches++;
      got.push(...b);
    });
    assert.deepEqual(r, { version: FORMAT_VERSION, seq: 1, count: n + 1 });
    assert.ok(batches > 10);
    assert.deepEqual(got, all);
    // A session starts from it.
    const log = new VolumeLog(store, vol.id);
    await log.putCheckpoint(1, body);
    const s = await vol.session();
    assert.equal((await s.readdir('d')).length, n);
    assert.deepEqual(await s.read(`d/f${n - 1}`, 0, 40), Buffer.alloc(40, (n - 1) % 251));
    await s.close();
    // A byte of text changed in its last entry (gzip intact): the checksum says so, no session opens.
    const bad = Buffer.from(text);
    bad[bad.lastIndexOf(Buffer.from('"m":420')) + 5] = 0x31;
    const damaged = Buffer.concat([gzipSync(bad.subarray(0, 1 << 20)), gzipSync(bad.subarray(1 << 20))]);
    await store.put(key, damaged);
    await assert.rejects(vol.session(), (e) => isCairnError(e, 'CORRUPT') && /checksum does not match/.test(e.message));
    // A path twice (a well-sealed checkpoint): CORRUPT too.
    await store.put(key, encodeCheckpointSync(1, [...all, all[5]!]));
    await assert.rejects(vol.session(), (e) => isCairnError(e, 'CORRUPT') && /appears twice/.test(e.message));
    await vol.close();
    await fs.rm(dir, { recursive: true, force: true });
  });
});
