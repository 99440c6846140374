/**
 * Compaction on every backend: a pack half dead is rewritten (its live chunks copied, a
 * forwarding object written, the pack condemned) and deleted a grace later; every retained
 * snapshot reads back byte-exact from a fresh cache, a reader with a view from before the
 * compaction reads through the forwarding object, stored bytes drop, verify is clean; a dry run
 * changes nothing; a writer that dedups against a dead chunk of the pack while it is being
 * compacted keeps the pack alive; a GC SIGKILLed mid-compaction leaves everything readable and
 * the next runs finish the work; forwarding objects go once nothing retained references their pack.
 */
import '../helpers/env.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Volume } from '../../src/index.js';
import type { ObjectStore } from '../../src/store/types.js';
import { ChunkCache, ChunkStore, type ChunkRef, decodeForward, encodeForward, hashChunk } from '../../src/chunks/index.js';
import { keys } from '../../src/format/index.js';
import { readSnapshot } from '../../src/session/index.js';
import type { Session } from '../../src/session/session.js';
import { gcVolume, storeNow } from '../../src/volume/gc.js';
import { forEachBackend, useBackendStore } from '../helpers/backends.js';
import { pausedAt } from '../helpers/paused.js';
import { isCairnError } from '../../src/errors.js';

const GRACE = 2_000;
const KILLER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'gc-kill.js');

async function aged(store: ObjectStore): Promise<void> {
  const t = await storeNow(store);
  while ((await storeNow(store)) < t + GRACE + 1_000) await new Promise((r) => setTimeout(r, 200));
}

async function put(s: Session, p: string, data: Buffer): Promise<number> {
  await s.create(p, 0o644);
  await s.write(p, 0, data);
  return (await s.commit()).seq;
}

/** Every file of snapshot `seq`, read with a chunk store of its own (no cache, no memory). */
async function readAll(store: ObjectStore, id: string, seq: number): Promise<Map<string, Buffer>> {
  const cs = new ChunkStore({ store, packPrefix: keys.packPrefix(id), cache: null, memoryBytes: 0 });
  const files: { path: string; size: number; chunks: ChunkRef[]; inline?: Buffer }[] = [];
  await readSnapshot(store, id, seq, (e, d) => {
    if (e.type === 'file') files.push({ path: e.path, size: e.size, chunks: d.chunks ?? [], inline: d.inline });
  });
  const out = new Map<string, Buffer>();
  for (const f of files) out.set(f.path, f.inline ?? (await cs.read(f.chunks, 0, f.size)));
  return out;
}

async function packBytes(store: ObjectStore, id: string): Promise<number> {
  return (await store.list(keys.packPrefix(id))).reduce((n, o) => n + o.size, 0);
}

/**
 * A volume whose first pack is half dead: seq 1 writes a (300 kB) and b (400 kB) in one pack P,
 * seq 2 deletes b, seqs 3 and 4 write small c and d. With keepLast 2 (3 and 4 retained) P is 57% dead.
 */
async function halfDead(store: ObjectStore, name: string) {
  const vol = await Volume.fromName(name, { store, createIfMissing: true });
  const w = await vol.session();
  const data = {
    a: crypto.randomBytes(300_000),
    b: crypto.randomBytes(400_000),
    c: crypto.randomBytes(5_000),
    d: crypto.randomBytes(6_000),
  };
  await w.create('a', 0o644);
  await w.write('a', 0, data.a);
  await w.create('b', 0o644);
  await w.write('b', 0, data.b);
  await w.commit();
  await w.unlink('b');
  await w.commit();
  await put(w, 'c', data.c);
  await put(w, 'd', data.d);
  const packs = (await store.list(keys.packPrefix(vol.id))).map((o) => o.key.slice(keys.packPrefix(vol.id).length));
  const refsA: ChunkRef[] = [];
  await readSnapshot(store, vol.id, 4, (e, d) => {
    if (e.path === 'a') refsA.push(...(d.chunks ?? []));
  });
  const P = refsA[0]!.pack;
  assert.ok(packs.includes(P));
  const expect = (seq: number) => {
    const m = new Map([
      ['a', data.a],
      ['c', data.c],
    ]);
    if (seq >= 4) m.set('d', data.d);
    return m;
  };
  return { vol, w, data, P, refsA, expect };
}

async function checkRetained(store: ObjectStore, vol: Volume, expect: (seq: number) => Map<string, Buffer>, seqs: number[]): Promise<void> {
  for (const seq of seqs) assert.deepEqual(await readAll(store, vol.id, seq), expect(seq), `snapshot ${seq}`);
  const v = await vol.verify({ data: true });
  assert.deepEqual(v.problems, []);
}

forEachBackend((b) =>
  describe(`gc compaction (${b.name})`, () => {
    let store: ObjectStore;
    useBackendStore(b, (s) => (store = s));

    it('compacts a half-dead pack; retained snapshots read exactly, a stale view reads through forwarding', async () => {
      const { vol, w, data, P, refsA, expect } = await halfDead(store, 'half');
      await w.close();
      const stale = await vol.session({ seq: 4, readOnly: true }); // opened before the compaction
      await aged(store);
      const keysBefore = (await store.list(keys.volume(vol.id))).map((o) => o.key);
      const dry = await vol.gc({ keepLast: 2, graceMs: GRACE, dryRun: true });
      assert.equal(dry.compaction.packs, 1);
      assert.equal(dry.compaction.copiedBytes, 300_000);
      assert.equal(dry.compaction.threshold, 0.5);
      assert.deepEqual(
        (await store.list(keys.volume(vol.id))).map((o) => o.key),
        keysBefore,
        'a dry run writes nothing',
      );

      const before = await packBytes(store, vol.id);
      const r1 = await vol.gc({ keepLast: 2, graceMs: GRACE });
      assert.equal(r1.retainedFrom, 3);
      assert.equal(r1.compaction.packs, 1);
      assert.equal(r1.compaction.copiedBytes, 300_000);
      assert.equal(r1.packs.condemned, 1, 'the compacted pack is condemned');
      const fwd = decodeForward(await store.get(keys.forwardPrefix(vol.id) + P), keys.forwardPrefix(vol.id) + P);
      assert.deepEqual([...fwd.chunks.keys()].sort(), refsA.map((r) => r.hash).sort());
      await checkRetained(store, vol, expect, [3, 4]);

      await aged(store);
      const r2 = await vol.gc({ keepLast: 2, graceMs: GRACE });
      assert.equal(r2.packs.deleted, 1);
      assert.equal(r2.compaction.packs, 0, 'nothing is compacted twice');
      assert.ok(!(await store.head(keys.packPrefix(vol.id) + P)), 'the old pack is gone');
      const after = await packBytes(store, vol.id);
      assert.ok(after < before - 350_000, `stored pack bytes drop (${before} -> ${after})`);
      await checkRetained(store, vol, expect, [3, 4]);
      // The stale reader: P is gone, its own cache emptied; it reads a through forward/P.
      await fs.rm(ChunkCache.shared().dir, { recursive: true, force: true });
      assert.deepEqual(await stale.read('a', 0, 300_000), data.a);
      await stale.close();
      const cs = new ChunkStore({ store, packPrefix: keys.packPrefix(vol.id), cache: null, memoryBytes: 0 });
      assert.deepEqual(await cs.read(refsA, 0, 300_000), data.a);
      assert.equal((await vol.usage()).reclaimableBytes, 0, 'the new pack counts as live');

      // Retention drops every reference to P: its forwarding object goes, the new pack is condemned.
      const w2 = await vol.session();
      await w2.unlink('a');
      await w2.commit();
      await w2.close();
      const r3 = await vol.gc({ keepLast: 1, graceMs: GRACE });
      assert.equal(r3.compaction.forwardsDeleted, 1);
      assert.deepEqual(await store.list(keys.forwardPrefix(vol.id)), []);
      const v = await vol.verify({ data: true });
      assert.deepEqual(v.problems, []);
      await vol.close();
    });

    it('a writer deduplicating against a dead chunk of a pack being compacted keeps the pack', async () => {
      const { vol, w, data, P, expect } = await halfDead(store, 'dedup');
      await aged(store);
      let seq5 = 0;
      // Right before the forwarding object is written (after the mark), w writes b again: its
      // dedup index still knows b's chunks in P, which the mark found dead.
      const paused = pausedAt(
        store,
        'put',
        (k) => k.startsWith(keys.forwardPrefix(vol.id)),
        async () => void (seq5 = await put(w, 'b2', data.b)),
      );
      const r1 = await gcVolume(paused, { id: vol.id, name: vol.name }, { keepLast: 2, graceMs: GRACE });
      assert.equal(r1.compaction.packs, 1);
      assert.equal(seq5, 5);
      await w.close();
      const refsB: ChunkRef[] = [];
      await readSnapshot(store, vol.id, 5, (e, d) => void (e.path === 'b2' && refsB.push(...(d.chunks ?? []))));
      assert.ok(
        refsB.every((r) => r.pack === P),
        'the record references the old pack',
      );
      await aged(store);
      const r2 = await vol.gc({ keepLast: 2, graceMs: GRACE });
      assert.equal(r2.packs.deleted, 0, 'a chunk the forwarding object does not name is referenced: the pack stays');
      assert.ok(await store.head(keys.packPrefix(vol.id) + P));
      const exp5 = (seq: number) => (seq === 5 ? new Map([...expect(4), ['b2', data.b]]) : expect(seq));
      await checkRetained(store, vol, exp5, [4, 5]);
      await vol.close();
    });

    for (const at of ['/forward/', '/gc/']) {
      it(`a gc SIGKILLed mid-compaction (before its put of ${at}) leaves everything readable; later runs finish`, async () => {
        const { vol, w, P, expect } = await halfDead(store, `kill${at.replaceAll('/', '')}`);
        await w.close();
        await aged(store);
        const child = spawn(process.execPath, [KILLER, store.url, vol.name, '2', String(GRACE), at], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        const signal = await new Promise((resolve) => child.on('exit', (_code, sig) => resolve(sig)));
        assert.equal(signal, 'SIGKILL', `killed (stdout: ${out})`);
        await checkRetained(store, vol, expect, [3, 4]);
        for (let run = 0; run < 3; run++) {
          await vol.gc({ keepLast: 2, graceMs: GRACE });
          await aged(store);
        }
        assert.ok(!(await store.head(keys.packPrefix(vol.id) + P)), 'the old pack is gone in the end');
        await checkRetained(store, vol, expect, [3, 4]);
        await vol.close();
      });
    }
  }),
);

describe('forwarding objects', () => {
  it('round-trip; damage is CORRUPT, a newer version UNSUPPORTED', () => {
    const P = '0123456789abcdef0123456789abcdef';
    const key = `volumes/vo-x/forward/${P}`;
    const ref = { hash: 'a'.repeat(64), pack: 'f'.repeat(32), offset: 10, length: 20 };
    const f = { pack: P, time: 1796031459000, chunks: new Map([[ref.hash, ref]]) };
    assert.deepEqual(decodeForward(encodeForward(f), key), f);
    assert.equal(keys.forwardPrefix('vo-x') + P, key);
    const body = encodeForward(f);
    body[15] ^= 1;
    assert.throws(
      () => decodeForward(body, key),
      (e) => isCairnError(e, 'CORRUPT'),
    );
    assert.throws(
      () => decodeForward(encodeForward(f), `volumes/vo-x/forward/${'1'.repeat(32)}`),
      (e) => isCairnError(e, 'CORRUPT'),
    );
    const newer = encodeForward(f).toString().replace('"version":1', '"version":9').split('\n')[0]!;
    const payload = Buffer.from(`${newer}\n`);
    const sealed = Buffer.concat([payload, Buffer.from(`{"blake3":"${hashChunk(payload)}"}`)]);
    assert.throws(
      () => decodeForward(sealed, key),
      (e) => isCairnError(e, 'UNSUPPORTED'),
    );
  });
});
