/**
 * Faults inside a commit, injected by a store wrapper around a real file store: a batch upload
 * whose Nth pack PUT fails lands nothing (all-or-nothing), and a write made while a commit is
 * uploading is not dropped: it is published by the next commit, nor one made while a reload
 * reads the log (after its commit). (Kills at each commit step:
 * ./crashpoints.test.ts.)
 */
import '../helpers/env.js';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CairnError } from '../../src/errors.js';
import { FileStore } from '../../src/store/file.js';
import type { ByteRange, ListOptions, ObjectStore, PutOptions } from '../../src/store/types.js';
import { Volume } from '../../src/volume/index.js';
import { VolumeLog } from '../../src/format/log.js';

/** A real store whose puts first go through `beforePut` (which may throw or wait). */
class HookedStore implements ObjectStore {
  beforePut: (key: string) => void | Promise<void> = () => undefined;
  beforeList: (prefix: string) => void | Promise<void> = () => undefined;
  constructor(readonly inner: ObjectStore) {}
  get url() {
    return this.inner.url;
  }
  get conditionalWrites() {
    return this.inner.conditionalWrites;
  }
  get(key: string, range?: ByteRange) {
    return this.inner.get(key, range);
  }
  async put(key: string, body: Uint8Array, options?: PutOptions) {
    await this.beforePut(key);
    return this.inner.put(key, body, options);
  }
  head(key: string) {
    return this.inner.head(key);
  }
  async list(prefix: string, options?: ListOptions) {
    await this.beforeList(prefix);
    return this.inner.list(prefix, options);
  }
  delete(key: string) {
    return this.inner.delete(key);
  }
  close() {
    return this.inner.close();
  }
}

const dirs: string[] = [];
async function hookedStore(): Promise<HookedStore> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-faults-'));
  dirs.push(dir);
  return new HookedStore(await FileStore.open(dir));
}

async function readAll(vol: Volume, p: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of vol.readFile(p)) parts.push(b);
  return Buffer.concat(parts);
}

describe('faults inside a commit', () => {
  after(async () => {
    for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
  });

  it('a batch upload whose 2nd pack PUT fails lands nothing', async () => {
    const store = await hookedStore();
    const vol = await Volume.fromName('batch', { store, createIfMissing: true });
    await vol.batchUpload({}, (b) => b.putFile(Buffer.from('before'), '/keep.txt'));
    const log = new VolumeLog(store, vol.id);
    const headBefore = await log.head();
    // 40 files of 2 MiB: three 32 MiB packs, the first uploaded before the second fails.
    const local = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-batch-src-'));
    dirs.push(local);
    for (let i = 0; i < 40; i++) await fs.writeFile(path.join(local, `f${i}.bin`), crypto.randomBytes(2 << 20));
    let packPuts = 0;
    store.beforePut = (key) => {
      if (key.includes('/packs/') && ++packPuts === 2) throw new CairnError('IO', `injected failure: ${key}`, { key });
    };
    await assert.rejects(
      vol.batchUpload({}, (b) => {
        b.putDirectory(local, '/data');
        b.putFile(Buffer.from('small'), '/small.txt');
      }),
      (e: CairnError) => e.code === 'IO',
    );
    assert.ok(packPuts >= 2, `the failure was injected (${packPuts} pack PUTs)`);
    store.beforePut = () => undefined;
    assert.equal(await log.head(), headBefore, 'no record was published');
    assert.deepEqual(
      (await vol.listdir('/')).map((e) => e.path),
      ['keep.txt'],
    );
    // The handle still works, and a retry uploads everything.
    await vol.batchUpload({}, (b) => b.putDirectory(local, '/data'));
    assert.equal((await vol.listdir('/data')).length, 40);
    await vol.close();
  });

  it('a write made while a commit uploads is published by the next commit', async () => {
    const store = await hookedStore();
    const vol = await Volume.fromName('during', { store, createIfMissing: true });
    const s = await vol.session();
    const v1 = crypto.randomBytes(300 * 1024);
    await s.create('/a.bin');
    await s.write('/a.bin', 0, v1);
    await s.create('/old.txt');
    await s.write('/old.txt', 0, Buffer.from('old'));
    let entered!: () => void;
    const inUpload = new Promise<void>((r) => (entered = r));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    store.beforePut = async (key) => {
      if (!key.includes('/packs/')) return;
      entered();
      await gate;
    };
    const first = s.commit();
    await inUpload; // the commit is blocked in its pack PUT
    const v2 = crypto.randomBytes(300 * 1024);
    await s.write('/a.bin', 0, v2); // the file the commit is uploading
    await s.create('/b.bin'); // a new file
    await s.write('/b.bin', 0, v1);
    await s.mkdir('/d');
    await s.unlink('/old.txt');
    store.beforePut = () => undefined;
    release();
    const r1 = await first;
    assert.deepEqual(r1.paths.sort(), ['a.bin', 'old.txt']);
    assert.ok(s.pendingCount() > 0, 'the writes made during the commit are still pending');
    const r2 = await s.commit();
    assert.equal(r2.committed, true);
    assert.deepEqual(r2.paths.sort(), ['a.bin', 'b.bin', 'd', 'old.txt']);
    assert.equal(s.pendingCount(), 0);
    await s.close();
    assert.ok((await readAll(vol, '/a.bin')).equals(v2), 'the later write of a.bin won');
    assert.ok((await readAll(vol, '/b.bin')).equals(v1));
    assert.deepEqual((await vol.listdir('/')).map((e) => e.path).sort(), ['a.bin', 'b.bin', 'd']);
    await vol.close();
  });

  it('a write made while a reload reads the log stays in the view and is published by the next commit', async () => {
    const store = await hookedStore();
    const vol = await Volume.fromName('reloadwin', { store, createIfMissing: true });
    await vol.batchUpload({}, (b) => b.putFile(Buffer.from('v0'), '/p.txt'));
    const mine = await vol.session();
    const other = await vol.session();
    await other.write('/p.txt', 0, Buffer.from('OTHER'));
    await other.commit();
    // Our reload has nothing to commit; while it lists the log, a write to /p.txt lands.
    let fired = false;
    store.beforeList = async (prefix) => {
      if (fired || !prefix.endsWith('/log/')) return;
      fired = true;
      await mine.write('/p.txt', 0, Buffer.from('MINE!'));
    };
    await mine.reload();
    store.beforeList = () => undefined;
    assert.ok(fired, 'the write was injected during the reload');
    assert.equal((await mine.read('/p.txt', 0, 100)).toString(), 'MINE!', 'the view keeps the write');
    const r = await mine.commit();
    assert.deepEqual(r.paths, ['p.txt']);
    assert.deepEqual(r.overwrote, []);
    await mine.close();
    await other.close();
    assert.equal((await readAll(vol, '/p.txt')).toString(), 'MINE!', 'the later write won');
    await vol.close();
  });
});
