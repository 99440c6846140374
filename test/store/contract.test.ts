/**
 * The ObjectStore contract, written once and run against every backend (file, s3 on s3rver, ceph):
 * put/get/range/head/list/delete, ifAbsent, large bodies (multipart on s3), a real multi-process
 * ifAbsent race, and bad keys that must be refused before anything is written.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { forEachBackend, useBackendStore } from '../helpers/backends.js';
import { isCairnError, type ErrorCode } from '../../src/errors.js';
import type { ObjectStore } from '../../src/store/types.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const RACE_SCRIPT = path.join(here, '..', 'fixtures', 'store-race.js');

async function rejectsWith(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isCairnError(err), `expected a CairnError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

interface RaceResult {
  result: 'win' | 'lose' | 'error';
  body?: string;
  code?: string;
}

/** Starts `n` processes racing put-ifAbsent on one key; releases them together once all are ready. */
async function race(url: string, key: string, n: number): Promise<RaceResult[]> {
  const children = Array.from({ length: n }, (_, i) =>
    spawn(process.execPath, [RACE_SCRIPT, url, key, `racer-${i}`], { stdio: ['pipe', 'pipe', 'inherit'] }),
  );
  const outputs = children.map((c) => {
    let out = '';
    let readyResolve!: () => void;
    const ready = new Promise<void>((r) => (readyResolve = r));
    c.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready\n')) readyResolve();
    });
    const done = new Promise<string>((resolve, reject) => {
      c.on('error', reject);
      c.on('close', () => resolve(out));
    });
    return { ready, done };
  });
  await Promise.all(outputs.map((o) => o.ready));
  for (const c of children) c.stdin.write('go\n');
  const texts = await Promise.all(outputs.map((o) => o.done));
  return texts.map((t) => JSON.parse(t.split('\n').filter((l) => l.startsWith('{'))[0] ?? '{"result":"error"}') as RaceResult);
}

forEachBackend((b) => {
  describe(`ObjectStore contract: ${b.name}`, () => {
    let store: ObjectStore;
    useBackendStore(b, (s) => (store = s));

    it('puts, gets and heads an object', async () => {
      const body = randomBytes(1000);
      await store.put('basic/one', body);
      assert.deepEqual(await store.get('basic/one'), body);
      const info = await store.head('basic/one');
      assert.deepEqual({ ...info, lastModified: undefined }, { key: 'basic/one', size: 1000, lastModified: undefined });
      // lastModified is the store's clock (GC's only clock): a time, close to this host's here.
      assert.ok(Math.abs(info!.lastModified! - Date.now()) < 60_000, `lastModified ${info!.lastModified}`);
      const [listed] = await store.list('basic/one');
      assert.ok(Math.abs(listed!.lastModified! - info!.lastModified!) < 1_500, "list and head agree (to S3's 1 s)");
      assert.equal(await store.head('basic/missing'), undefined);
      await rejectsWith(store.get('basic/missing'), 'NOT_FOUND');
    });

    it('overwrites without ifAbsent and stores empty bodies', async () => {
      await store.put('over/k', Buffer.from('first'));
      await store.put('over/k', Buffer.from('second!'));
      assert.equal((await store.get('over/k')).toString(), 'second!');
      await store.put('over/empty', Buffer.alloc(0));
      assert.equal((await store.get('over/empty')).length, 0);
      assert.equal((await store.head('over/empty'))?.size, 0);
    });

    it('reads byte ranges, clipped at the end of the object', async () => {
      const body = randomBytes(10_000);
      await store.put('range/obj', body);
      assert.deepEqual(await store.get('range/obj', { offset: 0, length: 10 }), body.subarray(0, 10));
      assert.deepEqual(await store.get('range/obj', { offset: 4096, length: 1000 }), body.subarray(4096, 5096));
      assert.deepEqual(await store.get('range/obj', { offset: 9990, length: 100 }), body.subarray(9990));
      assert.equal((await store.get('range/obj', { offset: 20_000, length: 5 })).length, 0);
      assert.equal((await store.get('range/obj', { offset: 5, length: 0 })).length, 0);
      await rejectsWith(store.get('range/missing', { offset: 0, length: 1 }), 'NOT_FOUND');
      await rejectsWith(store.get('range/obj', { offset: -1, length: 1 }), 'INVALID_ARGUMENT');
      await rejectsWith(store.get('range/obj', { offset: 0, length: 1.5 }), 'INVALID_ARGUMENT');
    });

    it('lists by prefix in byte order, with startAfter and limit', async () => {
      const keys = ['ls/a', 'ls/a/b', 'ls/a-b', 'ls/a/a/c', 'ls/b', 'ls/a0', 'ls/m/n/o', 'ls/é', 'ls/Z', 'lsx/other'];
      for (const k of keys) await store.put(k, Buffer.from(k));
      const sorted = keys.filter((k) => k.startsWith('ls/')).sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
      const all = await store.list('ls/');
      assert.deepEqual(
        all.map((o) => o.key),
        sorted,
      );
      assert.deepEqual({ key: all[0]!.key, size: all[0]!.size }, { key: 'ls/Z', size: 4 });
      assert.ok(all.every((o) => typeof o.lastModified === 'number'));
      assert.deepEqual(
        (await store.list('ls/a')).map((o) => o.key),
        sorted.filter((k) => k.startsWith('ls/a')),
      );
      assert.deepEqual(
        (await store.list('ls/', { startAfter: 'ls/a/b' })).map((o) => o.key),
        sorted.slice(sorted.indexOf('ls/a/b') + 1),
      );
      assert.deepEqual(
        (await store.list('ls/', { startAfter: 'ls/a', limit: 3 })).map((o) => o.key),
        sorted.slice(sorted.indexOf('ls/a') + 1, sorted.indexOf('ls/a') + 4),
      );
      assert.deepEqual(
        (await store.list('ls/', { limit: 2 })).map((o) => o.key),
        sorted.slice(0, 2),
      );
      assert.deepEqual(await store.list('nothing/'), []);
      assert.ok((await store.list('')).some((o) => o.key === 'lsx/other'));
    });

    it('pages long listings (more than one S3 page)', async () => {
      const keys = Array.from({ length: 1100 }, (_, i) => `page/${String(i).padStart(5, '0')}`);
      for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((k) => store.put(k, Buffer.from('x'))));
      const listed = await store.list('page/');
      assert.deepEqual(
        listed.map((o) => o.key),
        keys,
      );
      assert.deepEqual(
        (await store.list('page/', { startAfter: keys[999], limit: 50 })).map((o) => o.key),
        keys.slice(1000, 1050),
      );
    });

    it('deletes keys; deleting a missing key is fine', async () => {
      await store.put('del/x/y', Buffer.from('1'));
      await store.put('del/x', Buffer.from('2'));
      await store.delete('del/x/y');
      assert.equal(await store.head('del/x/y'), undefined);
      assert.equal((await store.get('del/x')).toString(), '2');
      await store.delete('del/x/y');
      await store.delete('del/never');
      await store.delete('del/x');
      assert.deepEqual(await store.list('del/'), []);
      await store.put('del/x/y', Buffer.from('3'));
      assert.equal((await store.get('del/x/y')).toString(), '3');
    });

    it('ifAbsent: the second put fails with ALREADY_EXISTS and leaves the body unchanged', async () => {
      assert.equal(store.conditionalWrites, true);
      await store.put('cond/k', Buffer.from('first'), { ifAbsent: true });
      await rejectsWith(store.put('cond/k', Buffer.from('second'), { ifAbsent: true }), 'ALREADY_EXISTS');
      assert.equal((await store.get('cond/k')).toString(), 'first');
      assert.deepEqual(
        (await store.list('cond/')).map((o) => o.key),
        ['cond/k'],
      );
    });

    it('ifAbsent: concurrent puts from one process, exactly one wins', async () => {
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) => store.put('cond/many', Buffer.from(`body-${i}`), { ifAbsent: true })),
      );
      const wins = results.map((r, i) => (r.status === 'fulfilled' ? i : -1)).filter((i) => i >= 0);
      assert.equal(wins.length, 1);
      for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as { code: string }).code, 'ALREADY_EXISTS');
      assert.equal((await store.get('cond/many')).toString(), `body-${wins[0]}`);
    });

    it('round-trips an 80 MiB body (multipart on s3), and refuses it with ifAbsent once present', { timeout: 120_000 }, async () => {
      const body = randomBytes(80 * 1024 * 1024);
      await store.put('large/blob', body);
      assert.equal((await store.head('large/blob'))?.size, body.length);
      assert.ok((await store.get('large/blob')).equals(body));
      const mid = 70 * 1024 * 1024 - 3;
      assert.ok((await store.get('large/blob', { offset: mid, length: 1 << 20 })).equals(body.subarray(mid, mid + (1 << 20))));
      await rejectsWith(store.put('large/blob', randomBytes(70 * 1024 * 1024), { ifAbsent: true }), 'ALREADY_EXISTS');
      assert.ok((await store.get('large/blob', { offset: 0, length: 4096 })).equals(body.subarray(0, 4096)));
      await store.delete('large/blob');
    });

    // Ceph RGW ignores If-None-Match on CompleteMultipartUpload: a large ifAbsent body must not go up in parts.
    it('ifAbsent: racing puts of a 70 MiB body, exactly one wins, its body stored', { timeout: 180_000 }, async () => {
      const bodies = Array.from({ length: 3 }, (_, i) => Buffer.alloc(70 * 1024 * 1024, i + 1));
      const results = await Promise.allSettled(bodies.map((body) => store.put('large/racy', body, { ifAbsent: true })));
      const wins = results.map((r, i) => (r.status === 'fulfilled' ? i : -1)).filter((i) => i >= 0);
      for (const r of results) {
        if (r.status === 'rejected') assert.equal((r.reason as { code: string }).code, 'ALREADY_EXISTS');
      }
      assert.equal(wins.length, 1, `winners: ${JSON.stringify(wins)}`);
      const stored = await store.get('large/racy', { offset: 0, length: 1 });
      assert.equal(stored[0], wins[0] + 1);
      await store.delete('large/racy');
    });

    it('many processes racing ifAbsent on one key: exactly one wins, and its body is stored', { timeout: 60_000 }, async () => {
      const url = b.url();
      const results = await race(url, 'race/key', 8);
      const wins = results.filter((r) => r.result === 'win');
      assert.deepEqual(
        results.filter((r) => r.result === 'error'),
        [],
      );
      assert.equal(wins.length, 1, JSON.stringify(results));
      assert.equal(results.filter((r) => r.result === 'lose').length, 7);
      const { openStore } = await import('../../src/store/open.js');
      const check = await openStore(url);
      try {
        assert.equal((await check.get('race/key')).toString(), wins[0].body);
      } finally {
        await check.close();
      }
    });

    it('refuses bad keys with INVALID_ARGUMENT and writes nothing', async () => {
      const fresh = await b.open();
      try {
        const bad = ['', '/abs', 'a/../b', '..', 'a/./b', 'a//b', 'a/', 'nul\0key', 'x'.repeat(2000)];
        for (const key of bad) {
          await rejectsWith(fresh.put(key, Buffer.from('x')), 'INVALID_ARGUMENT');
          await rejectsWith(fresh.put(key, Buffer.from('x'), { ifAbsent: true }), 'INVALID_ARGUMENT');
          await rejectsWith(fresh.get(key), 'INVALID_ARGUMENT');
          await rejectsWith(fresh.head(key), 'INVALID_ARGUMENT');
          await rejectsWith(fresh.delete(key), 'INVALID_ARGUMENT');
        }
        await rejectsWith(fresh.list('../'), 'INVALID_ARGUMENT');
        await rejectsWith(fresh.list('/abs'), 'INVALID_ARGUMENT');
        assert.deepEqual(await fresh.list(''), []);
      } finally {
        await fresh.close();
      }
    });

    it('fails with CLOSED after close', async () => {
      const s = await b.open();
      await s.close();
      await rejectsWith(s.get('anything'), 'CLOSED');
      await rejectsWith(s.put('anything', Buffer.from('x')), 'CLOSED');
    });
  });
});
