/**
 * GC, retention and usage on every backend: retention prunes records and checkpoints and makes a
 * pruned seq PRUNED; packs go only over two runs a grace apart; a commit that reuses a condemned
 * pack (dedup) re-uploads its chunks instead of publishing a reference GC then deletes; dry runs
 * change nothing; deleted volumes and stale temp files go with a store-wide gc; `vol.verify()` is
 * clean throughout and every retained snapshot reads back exactly.
 */
import '../helpers/env.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { execFile } from 'node:child_process';
import { Volume } from '../../src/index.js';
import { isCairnError } from '../../src/errors.js';
import type { ObjectStore } from '../../src/store/types.js';
import type { Session } from '../../src/session/session.js';
import { keys } from '../../src/format/index.js';
import { storeNow } from '../../src/volume/gc.js';
import { forEachBackend, useBackendStore } from '../helpers/backends.js';

/** The grace the tests use (the minimum); the default (an hour) is never used here. */
export const GRACE = 2_000;
/** Ages are compared with 1 s slack (S3's LastModified resolution). */
const AGED = GRACE + 1_000;

/** Waits until the store's clock is `ms` past `since` (a store-clock time). */
export async function storeClockPast(store: ObjectStore, since: number, ms: number): Promise<void> {
  while ((await storeNow(store)) < since + ms) await new Promise((r) => setTimeout(r, 200));
}

/** Writes a whole file in session `s` (created when missing) and commits; returns the seq. */
export async function putFile(s: Session, p: string, data: Buffer): Promise<number> {
  if (s.lookup(p)) await s.truncate(p, 0);
  else await s.create(p, 0o644);
  await s.write(p, 0, data);
  return (await s.commit()).seq;
}

async function readAt(vol: Volume, seq: number, p: string): Promise<Buffer> {
  const s = await vol.session({ seq, readOnly: true });
  try {
    const st = await s.stat(p);
    return await s.read(p, 0, st.size);
  } finally {
    await s.close();
  }
}

async function packBytes(store: ObjectStore, id: string): Promise<number> {
  return (await store.list(keys.packPrefix(id))).reduce((n, o) => n + o.size, 0);
}

forEachBackend((b) =>
  describe(`gc (${b.name})`, () => {
    let store: ObjectStore;
    useBackendStore(b, (s) => (store = s));

    it('prunes by retention, deletes dead packs a grace after condemning them, keeps the rest exact', async () => {
      const vol = await Volume.fromName('prune', { store, createIfMissing: true });
      const s = await vol.session();
      const versions: Buffer[] = [];
      let seq = 0;
      for (let i = 0; i < 5; i++) {
        versions.push(crypto.randomBytes(200_000));
        seq = await putFile(s, 'f.bin', versions[i]!);
      }
      await s.close();
      const before = await packBytes(store, vol.id);
      const t0 = await storeNow(store);

      // Young packs are never condemned; retention is applied at once.
      const r1 = await vol.gc({ keepLast: 2, graceMs: GRACE });
      assert.equal(r1.retainedFrom, seq - 1);
      assert.equal(r1.packs.condemned, 0);
      assert.equal(r1.packs.deleted, 0);
      assert.ok(r1.records.deleted >= 1);
      assert.equal(await packBytes(store, vol.id), before);
      await assert.rejects(vol.session({ seq: 1 }), (e) => isCairnError(e, 'PRUNED'));

      await storeClockPast(store, t0, AGED);
      const r2 = await vol.gc({ keepLast: 2, graceMs: GRACE });
      assert.equal(r2.packs.condemned, 3, 'the packs of the 3 pruned versions are condemned');
      assert.equal(r2.packs.deleted, 0, 'nothing is deleted before a grace has passed since condemning');
      const t1 = await storeNow(store);
      await storeClockPast(store, t1, AGED);
      const r3 = await vol.gc({ keepLast: 2, graceMs: GRACE });
      assert.equal(r3.packs.deleted, 3);
      assert.ok((await packBytes(store, vol.id)) < before / 2);

      assert.deepEqual(await readAt(vol, seq, 'f.bin'), versions[4]);
      assert.deepEqual(await readAt(vol, seq - 1, 'f.bin'), versions[3]);
      const v = await vol.verify({ data: true });
      assert.deepEqual(v.problems, []);
      assert.deepEqual(v.orphans, []);
      const u = await vol.usage();
      assert.equal(u.liveBytes, 200_000);
      assert.equal(u.reclaimableBytes, 0);
      await vol.close();
    });

    it('a commit reusing a condemned pack (dedup) re-uploads its chunks; the file survives the delete', async () => {
      const vol = await Volume.fromName('dedup', { store, createIfMissing: true });
      const s = await vol.session();
      const a = crypto.randomBytes(300_000);
      await putFile(s, 'f.bin', a);
      await putFile(s, 'f.bin', crypto.randomBytes(300_000));
      const t0 = await storeNow(store);
      await storeClockPast(store, t0, AGED);
      const r1 = await vol.gc({ keepLast: 1, graceMs: GRACE });
      assert.equal(r1.packs.condemned, 1, "a's pack is condemned");
      // The session still knows a's chunks: without the guard its commit would reference the
      // condemned pack, which the next gc deletes.
      const seq = await putFile(s, 'g.bin', a);
      await s.close();
      const t1 = await storeNow(store);
      await storeClockPast(store, t1, AGED);
      const r2 = await vol.gc({ keepLast: 1, graceMs: GRACE });
      assert.equal(r2.packs.deleted, 1);
      assert.deepEqual(await readAt(vol, seq, 'g.bin'), a);
      assert.deepEqual((await vol.verify({ data: true })).problems, []);
      await vol.close();
    });

    it('a commit whose dedup hits a pack gc deleted uploads the chunks again', async () => {
      const vol = await Volume.fromName('gone', { store, createIfMissing: true });
      const s = await vol.session();
      const a = crypto.randomBytes(300_000);
      await putFile(s, 'f.bin', a);
      await putFile(s, 'f.bin', crypto.randomBytes(300_000));
      for (let run = 0; run < 2; run++) {
        const t = await storeNow(store);
        await storeClockPast(store, t, AGED);
        await vol.gc({ keepLast: 1, graceMs: GRACE });
      }
      // a's pack is gone; the session still knows its chunks.
      const seq = await putFile(s, 'g.bin', a);
      await s.close();
      assert.deepEqual(await readAt(vol, seq, 'g.bin'), a);
      assert.deepEqual((await vol.verify({ data: true })).problems, []);
      await vol.close();
    });

    it('a commit carrying over an entry whose pack is condemned copies its chunks to a new pack', async () => {
      const vol = await Volume.fromName('carry', { store, createIfMissing: true });
      const w = await vol.session();
      const old = crypto.randomBytes(300_000);
      await putFile(w, 'f.bin', old);
      const a = await vol.session(); // its view holds f.bin = old
      await putFile(w, 'f.bin', crypto.randomBytes(300_000));
      await w.close();
      const t0 = await storeNow(store);
      await storeClockPast(store, t0, AGED);
      assert.equal((await vol.gc({ keepLast: 1, graceMs: GRACE })).packs.condemned, 1);
      // A chmod publishes f.bin's whole entry, refs into the condemned pack included.
      await a.chmod('f.bin', 0o600);
      const seq = (await a.commit()).seq;
      await a.close();
      const t1 = await storeNow(store);
      await storeClockPast(store, t1, AGED);
      assert.equal((await vol.gc({ keepLast: 1, graceMs: GRACE })).packs.deleted, 1);
      assert.deepEqual(await readAt(vol, seq, 'f.bin'), old, 'last writer wins: the chmod put the old content back');
      assert.deepEqual((await vol.verify({ data: true })).problems, []);
      await vol.close();
    });

    it('a handle whose view was pruned reopens its session; history starts at the floor', async () => {
      const vol = await Volume.fromName('handle', { store, createIfMissing: true });
      const other = await Volume.fromName('handle', { store });
      assert.deepEqual(await other.listdir('/'), []); // its private session is at seq 0
      const s = await vol.session();
      for (let i = 0; i < 4; i++) await putFile(s, `f${i}`, Buffer.from(`v${i}`));
      await s.close();
      await vol.gc({ keepLast: 2, graceMs: GRACE });
      assert.deepEqual((await other.listdir('/')).map((e) => e.path).sort(), ['f0', 'f1', 'f2', 'f3']);
      assert.deepEqual(
        (await vol.history()).map((h) => h.seq),
        [3, 4],
      );
      await other.close();
      await vol.close();
    });

    it('a session whose view fell below the pruned floor re-bootstraps at reload and commits its changes', async () => {
      const vol = await Volume.fromName('rebase', { store, createIfMissing: true });
      const old = await vol.session();
      await putFile(old, 'mine', Buffer.from('v0')); // seq 1: old's view
      const w = await vol.session();
      for (let i = 0; i < 4; i++) await putFile(w, `f${i}`, Buffer.from(`w${i}`)); // seqs 2..5
      await w.close();
      await old.create('local', 0o644);
      await old.write('local', 0, Buffer.from('L')); // pending in old
      const r = await vol.gc({ keepLast: 1, graceMs: GRACE });
      assert.equal(r.retainedFrom, 5);
      const res = await old.reload();
      assert.equal(res.commit?.committed, true);
      assert.equal(res.commit?.seq, 6);
      assert.deepEqual(res.rebootstrapped, { floor: 5, checkpoint: 5 });
      assert.equal(res.from, 1);
      assert.equal(res.seq, 6);
      assert.equal(res.changed, undefined); // anything may have changed
      assert.deepEqual((await old.readdir('')).map((e) => e.path).sort(), ['f0', 'f1', 'f2', 'f3', 'local', 'mine']);
      assert.equal((await old.read('local', 0, 1)).toString(), 'L');
      assert.equal(old.pendingCount(), 0);
      // A later reload goes record by record again.
      const again = await old.reload();
      assert.equal(again.rebootstrapped, undefined);
      await old.close();
      assert.equal((await readAt(vol, 6, 'local')).toString(), 'L');
      await vol.close();
    });

    it('a reopened session directory below the pruned floor re-bootstraps with its pending changes on top', async () => {
      const vol = await Volume.fromName('rebase-dir', { store, createIfMissing: true });
      const dir = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-rebase-')), 's');
      let s = await vol.session({ dir });
      await putFile(s, 'keep', Buffer.from('k0')); // seq 1
      await putFile(s, 'gone', Buffer.from('g0')); // seq 2
      await s.write('keep', 0, Buffer.from('k1')); // pending: keep = k1
      await s.unlink('gone'); // pending: delete gone
      await s.close(); // the directory keeps the pending ops
      const w = await vol.session();
      await putFile(w, 'other', Buffer.from('o')); // seq 3
      await putFile(w, 'keep', Buffer.from('kw')); // seq 4
      await w.close();
      await vol.gc({ keepLast: 1, graceMs: GRACE });
      s = await vol.session({ dir });
      assert.equal(s.seq, 4);
      assert.equal(s.pendingCount(), 2);
      assert.equal((await s.read('keep', 0, 2)).toString(), 'k1');
      assert.equal(s.lookup('gone'), undefined);
      assert.equal((await s.read('other', 0, 1)).toString(), 'o');
      assert.equal((await s.commit()).seq, 5);
      await s.close();
      assert.equal((await readAt(vol, 5, 'keep')).toString(), 'k1');
      await assert.rejects(readAt(vol, 5, 'gone'), (e) => isCairnError(e, 'NOT_FOUND'));
      await vol.close();
    });

    it('dry runs change nothing; retention is stored, validated and used by gc', async () => {
      const vol = await Volume.fromName('dry', { store, createIfMissing: true });
      assert.deepEqual(await vol.retention(), { keepLast: 100, keepDays: 7 });
      await assert.rejects(vol.setRetention({ keepLast: 0 }), (e) => isCairnError(e, 'INVALID_ARGUMENT'));
      await assert.rejects(vol.setRetention({ keepDays: -1 }), (e) => isCairnError(e, 'INVALID_ARGUMENT'));
      assert.deepEqual(await vol.setRetention({ keepLast: 1, keepDays: 0 }), { keepLast: 1, keepDays: 0 });
      const s = await vol.session();
      for (let i = 0; i < 3; i++) await putFile(s, 'f.bin', crypto.randomBytes(100_000));
      await s.close();
      const t0 = await storeNow(store);
      await storeClockPast(store, t0, AGED);
      const keysBefore = (await store.list(keys.volume(vol.id))).map((o) => o.key);
      const dry = await vol.gc({ dryRun: true, graceMs: GRACE });
      assert.equal(dry.retainedFrom, 3);
      assert.equal(dry.packs.condemned, 2);
      assert.equal(dry.records.deleted, 2, 'records 1-2 (3 stays: the log head)');
      assert.deepEqual(
        (await store.list(keys.volume(vol.id))).map((o) => o.key),
        keysBefore,
      );
      const real = await vol.gc({ graceMs: GRACE });
      assert.equal(real.retainedFrom, 3);
      assert.equal(real.packs.condemned, 2);
      await assert.rejects(vol.gc({ graceMs: 10 }), (e) => isCairnError(e, 'INVALID_ARGUMENT'));
      await vol.close();
    });

    it('a store-wide gc removes the data of deleted volumes and stale temporary files', async () => {
      // A store of its own: the other tests' volumes would make each gc take seconds.
      const store = await b.open();
      const vol = await Volume.fromName('doomed', { store, createIfMissing: true });
      const s = await vol.session();
      await putFile(s, 'f.bin', crypto.randomBytes(50_000));
      await s.close();
      const id = vol.id;
      await vol.close();
      // A delete that died after removing the name: the objects stay behind.
      await store.delete(keys.name('doomed'));
      let tmp: string | undefined;
      if (store.url.startsWith('file:')) {
        tmp = path.join(fileURLToPath(store.url), '.tmp-1-deadbeef');
        await fs.writeFile(tmp, 'left by a crash');
      }
      const fresh = await Volume.fromName('fresh', { store, createIfMissing: true });
      // A longer grace here: 'young' must stay younger than it through two gcs, which take seconds
      // on a loaded Ceph RGW (whose LastModified has 1 s resolution).
      const grace = 8_000;
      const t0 = await storeNow(store);
      await storeClockPast(store, t0, grace + 1_000);
      const young = await Volume.fromName('young', { store, createIfMissing: true });
      await store.delete(keys.name('young')); // a create between its meta and its name, as it looks
      const dry = await Volume.objects.gc({ store, graceMs: grace, dryRun: true });
      assert.deepEqual(dry.deletedVolumes.ids, [id]);
      assert.ok((await store.list(keys.volume(id))).length > 0);
      const r = await Volume.objects.gc({ store, graceMs: grace });
      assert.deepEqual(r.deletedVolumes.ids, [id]);
      assert.deepEqual(await store.list(keys.volume(id)), []);
      assert.ok((await store.list(keys.volume(young.id))).length > 0, 'a young nameless volume stays');
      assert.ok((await store.list(keys.volume(fresh.id))).length > 0);
      if (tmp) {
        assert.equal(r.temporary.count, 1);
        await assert.rejects(fs.stat(tmp), { code: 'ENOENT' });
      }
      await fresh.close();
      await young.close();
      await store.close();
    });
  }),
);

describe('cairn volume gc / du / retention', () => {
  const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');
  const run = (args: string[]) =>
    new Promise<{ code: number; out: string; err: string }>((resolve) => {
      execFile(process.execPath, [CLI, ...args], { env: process.env }, (error, out, err) => {
        const status = (error as { code?: unknown } | null)?.code;
        resolve({ code: error ? (typeof status === 'number' ? status : 1) : 0, out, err });
      });
    });

  it('sets and shows retention, reports gc and du as JSON, refuses bad values', async () => {
    const dir = await fs.mkdtemp(path.join((await import('node:os')).tmpdir(), 'cairn-gc-cli-'));
    try {
      const store = ['--store', pathToFileURL(dir).href];
      assert.equal((await run([...store, 'volume', 'create', 'v'])).code, 0);
      const set = await run([...store, 'volume', 'retention', 'v', '--keep-last', '1', '--keep-days', '0', '--json']);
      assert.deepEqual(JSON.parse(set.out), { keepLast: 1, keepDays: 0 });
      const bad = await run([...store, 'volume', 'retention', 'v', '--keep-last', '0']);
      assert.equal(bad.code, 1);
      assert.match(bad.err, /INVALID_ARGUMENT/);
      assert.equal((await run([...store, 'volume', 'gc', 'v', '--keep-last', 'x'])).code, 2);
      const dry = JSON.parse((await run([...store, 'volume', 'gc', 'v', '--dry-run', '--json', '--grace', '2'])).out);
      assert.equal(dry.dryRun, true);
      assert.equal(dry.graceMs, 2000);
      assert.deepEqual(dry.compaction, { threshold: 0.5, packs: 0, packBytes: 0, copiedBytes: 0, forwardsDeleted: 0 });
      const badThreshold = await run([...store, 'volume', 'gc', 'v', '--compact-threshold', '0', '--nice', '0']);
      assert.equal(badThreshold.code, 1);
      assert.match(badThreshold.err, /INVALID_ARGUMENT/);
      const set2 = JSON.parse((await run([...store, 'volume', 'gc', 'v', '--json', '--grace', '2', '--compact-threshold', '0.8'])).out);
      assert.equal(set2.compaction.threshold, 0.8);
      const all = JSON.parse((await run([...store, 'volume', 'gc', '--json', '--grace', '2'])).out);
      assert.deepEqual(
        all.volumes.map((r: { volume: string }) => r.volume),
        ['v'],
      );
      const du = JSON.parse((await run([...store, 'volume', 'du', 'v', '--json'])).out);
      assert.equal(du.liveBytes, 0);
      assert.equal(du.policy.keepLast, 1);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('retention and gc objects', () => {
  it('round-trip, and every damage or unknown field is CORRUPT, a newer version UNSUPPORTED', async () => {
    const r = await import('../../src/format/index.js');
    const key = 'volumes/vo-x/gc/000001796031459-0123456789abcdef';
    const c = { time: 1796031459000, graceMs: 2000, packs: ['0123456789abcdef0123456789abcdef'] };
    assert.deepEqual(r.decodeCondemnation(r.encodeCondemnation(c), key, 'v'), c);
    const p = { keepLast: 3, keepDays: 0.5 };
    assert.deepEqual(r.decodeRetention(r.encodeRetention(p), 'volumes/vo-x/retention', 'v'), p);
    const f = { seq: 57, time: 1 };
    assert.deepEqual(r.decodePruned(r.encodePruned(f), r.keys.pruned('vo-x', 57), 'v'), f);
    const corrupt = (fn: () => unknown) => assert.throws(fn, (e) => isCairnError(e, 'CORRUPT'));
    corrupt(() => r.decodePruned(r.encodePruned(f), r.keys.pruned('vo-x', 58), 'v'));
    const flipped = r.encodeCondemnation(c);
    flipped[20] ^= 1;
    corrupt(() => r.decodeCondemnation(flipped, key, 'v'));
    corrupt(() => r.decodeCondemnation(Buffer.from(JSON.stringify({ version: 2, ...c })), key, 'v'));
    corrupt(() => r.decodeCondemnation(r.encodeCondemnation({ ...c, packs: ['nope'] }), key, 'v'));
    corrupt(() => r.decodeRetention(r.encodeRetention({ keepLast: 0, keepDays: 1 }), 'volumes/vo-x/retention', 'v'));
    const extra = Buffer.from(`${JSON.stringify({ version: 2, ...p, more: 1 })}\n`);
    const { hashChunk } = await import('../../src/chunks/hash.js');
    const sealed = (b: Buffer) => Buffer.concat([b, Buffer.from(`{"blake3":"${hashChunk(b)}"}`)]);
    corrupt(() => r.decodeRetention(sealed(extra), 'volumes/vo-x/retention', 'v'));
    const newer = sealed(Buffer.from(`${JSON.stringify({ version: r.FORMAT_VERSION + 1, ...p })}\n`));
    assert.throws(
      () => r.decodeRetention(newer, 'volumes/vo-x/retention', 'v'),
      (e) => isCairnError(e, 'UNSUPPORTED'),
    );
  });
});
