/**
 * Volumes under transient store faults. A commit whose reply is lost (the record landed, the
 * writer heard 500, a reset, ALREADY_EXISTS on its retry, or nothing because it died) is
 * published exactly once, and another writer's newer value committed meanwhile survives. Then a
 * suite runs volume operations — create, batchUpload, two writers committing concurrently,
 * reload, readFile, listdir, history — through the fault-injecting proxy at 25 % faults and
 * checks every byte and the log: each commit once (by commitId), nothing committed missing.
 *
 *   node --test dist/test/volume/faults.test.js 2>&1 | grep 'faults:'
 */
import '../helpers/env.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Volume } from '../../src/volume/index.js';
import type { Session } from '../../src/session/session.js';
import { VolumeLog } from '../../src/format/log.js';
import { CairnError, isCairnError } from '../../src/errors.js';
import { MemoryStore } from '../../src/store/memory.js';
import { openStore } from '../../src/store/open.js';
import type { ByteRange, ListOptions, ObjectStore, PutOptions } from '../../src/store/types.js';
import { seededRandom, useFaultedS3, type FaultRule } from '../helpers/faultproxy.js';

const LOG_KEY = /\/log\/\d+$/;
const retriesOf = (store: ObjectStore): number => (store as { retries?: number }).retries ?? NaN;

async function writeFile(s: Session, p: string, data: string | Buffer): Promise<void> {
  await s.create(p, 0o644);
  await s.write(p, 0, Buffer.from(data));
}
const text = async (s: Session, p: string): Promise<string> => (await s.read(p, 0, 1 << 30)).toString();
async function readAll(vol: Volume, p: string): Promise<Buffer> {
  const bufs: Buffer[] = [];
  for await (const b of vol.readFile(p)) bufs.push(b);
  return Buffer.concat(bufs);
}

/** The volume's log, read without faults: asserts that no commitId appears twice. */
async function logOf(store: ObjectStore, vol: Volume) {
  const records = await new VolumeLog(store, vol.id).recordsAfter(0);
  const ids = records.map((r) => r.commitId);
  assert.equal(new Set(ids).size, ids.length, `a commit was published twice: ${ids.join(' ')}`);
  assert.deepEqual(
    records.map((r) => r.seq),
    records.map((_, i) => i + 1),
    'seqs are 1..n',
  );
  return records;
}

/**
 * A store whose next put of a key matching `key` lands, runs `hook`, then fails with `error`:
 * a reply lost after the write (the error a client sees then: UNAVAILABLE after its retries, or
 * ALREADY_EXISTS from a retry that found the key).
 */
class LossyStore implements ObjectStore {
  private lose: { key: RegExp; error: CairnError; hook?: () => Promise<void> } | undefined;
  constructor(readonly inner: ObjectStore) {}
  get url() {
    return this.inner.url;
  }
  get conditionalWrites() {
    return this.inner.conditionalWrites;
  }
  loseNextReply(key: RegExp, error: CairnError, hook?: () => Promise<void>): void {
    this.lose = { key, error, hook };
  }
  async put(key: string, body: Uint8Array, options?: PutOptions): Promise<void> {
    const lose = this.lose;
    if (!lose || !lose.key.test(key)) return this.inner.put(key, body, options);
    this.lose = undefined;
    await this.inner.put(key, body, options);
    await lose.hook?.();
    throw lose.error;
  }
  get(key: string, range?: ByteRange) {
    return this.inner.get(key, range);
  }
  head(key: string) {
    return this.inner.head(key);
  }
  list(prefix: string, options?: ListOptions) {
    return this.inner.list(prefix, options);
  }
  delete(key: string) {
    return this.inner.delete(key);
  }
  close() {
    return this.inner.close();
  }
}

describe('a commit whose reply is lost is published once (memory store, reply replaced)', () => {
  let n = 0;
  /** Writer A (through the lossy store) and writer B (straight) on one fresh volume. */
  async function twoWriters(dirA?: string) {
    const inner = new MemoryStore();
    const lossy = new LossyStore(inner);
    const volA = await Volume.fromName(`v${++n}`, { createIfMissing: true, store: lossy });
    const volB = await Volume.fromName(`v${n}`, { store: inner });
    const a = await volA.session(dirA ? { dir: dirA } : {});
    const b = await volB.session();
    await writeFile(a, '/p', 'A1');
    await writeFile(a, '/only-a', 'a');
    await writeFile(b, '/p', 'B2');
    return { inner, lossy, volA, volB, a, b };
  }

  for (const code of ['ALREADY_EXISTS', 'UNAVAILABLE'] as const) {
    it(`the retry heard ${code}: the newer value of another writer survives`, async () => {
      const { inner, lossy, volA, volB, a, b } = await twoWriters();
      let bSeq = 0;
      lossy.loseNextReply(LOG_KEY, new CairnError(code, 'reply lost (injected)'), async () => {
        bSeq = (await b.commit()).seq;
      });
      if (code === 'ALREADY_EXISTS') {
        const ra = await a.commit();
        assert.equal(ra.seq, 1);
      } else {
        await assert.rejects(a.commit(), (e: unknown) => isCairnError(e, 'UNAVAILABLE'));
        // The next commit finishes the one that landed instead of publishing it again.
        await writeFile(a, '/later', 'l');
        const again = await a.commit();
        assert.deepEqual(again.paths, ['later']);
      }
      assert.equal(bSeq, 2);
      const records = await logOf(inner, volA);
      const expected = code === 'ALREADY_EXISTS' ? ['p,only-a', 'p'] : ['p,only-a', 'p', 'later'];
      assert.deepEqual(
        records.map((r) =>
          r.ops
            .filter((o) => o.op !== 'times')
            .map((o) => o.path)
            .join(),
        ),
        expected,
      );
      await a.reload();
      assert.equal(await text(a, '/p'), 'B2');
      assert.equal((await readAll(volB, '/p')).toString(), 'B2');
      for (const x of [a, b]) await x.close();
      for (const v of [volA, volB]) await v.close();
    });
  }

  it('a restarted writer finds its landed record though other records follow it', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-faults-'));
    try {
      const { inner, lossy, volA, volB, a, b } = await twoWriters(dir);
      const died = new CairnError('UNAVAILABLE', 'died before hearing the reply (injected)');
      lossy.loseNextReply(LOG_KEY, died, async () => void (await b.commit()));
      await assert.rejects(a.commit(), (e: unknown) => isCairnError(e, 'UNAVAILABLE'));
      await writeFile(b, '/q', 'B3');
      await b.commit();
      await a.close(); // as if the process died: the journal still says "commit in flight"
      const a2 = await volA.session({ dir });
      const r = await a2.commit();
      assert.equal(r.committed, false, 'nothing left to publish');
      const records = await logOf(inner, volA);
      assert.deepEqual(
        records.map((x) =>
          x.ops
            .filter((o) => o.op !== 'times')
            .map((o) => o.path)
            .join(),
        ),
        ['p,only-a', 'p', 'q'],
      );
      await a2.reload();
      assert.equal(await text(a2, '/p'), 'B2');
      assert.equal(await text(a2, '/only-a'), 'a');
      await a2.close();
      await b.close();
      for (const v of [volA, volB]) await v.close();
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('volumes through the fault-injecting proxy (S3)', () => {
  const env = useFaultedS3(5);

  it('500 after the log PUT landed: the commit is published once, the newer value survives', async () => {
    const url = env.fp.freshUrl();
    const storeA = await openStore(url);
    const storeB = await openStore(url.replace(env.fp.endpoint, env.s3.endpoint));
    const volA = await Volume.fromName('dup', { createIfMissing: true, store: storeA });
    const volB = await Volume.fromName('dup', { store: storeB });
    const a = await volA.session();
    const b = await volB.session();
    await writeFile(a, '/p', 'A1');
    await writeFile(b, '/p', 'B2');
    let bSeq = 0;
    const hook = async () => void (bSeq = (await b.commit()).seq);
    env.fp.once({ mode: '500-after', methods: ['PUT'], key: LOG_KEY, hook });
    const ra = await a.commit();
    assert.equal(ra.seq, 1);
    assert.equal(bSeq, 2);
    const records = await logOf(storeB, volB);
    assert.equal(records.length, 2, 'one record per commit');
    await a.reload();
    assert.equal(await text(a, '/p'), 'B2');
    assert.equal((await readAll(volB, '/p')).toString(), 'B2');
    for (const x of [a, b]) await x.close();
    for (const v of [volA, volB]) await v.close();
    await Promise.all([storeA.close(), storeB.close()]);
  });

  it('a commit and reads during a 2 s outage succeed once the store is back', async () => {
    env.fp.rules = [];
    const store = await openStore(env.fp.freshUrl());
    const vol = await Volume.fromName('outage', { createIfMissing: true, store });
    const s = await vol.session();
    let outage: Promise<void> | undefined;
    try {
      const before = crypto.randomBytes(50_000);
      await writeFile(s, '/before', before);
      await s.commit();
      const during = crypto.randomBytes(50_000);
      await writeFile(s, '/during', during);
      env.fp.resetCounters();
      outage = env.fp.outage(2_000);
      const [r, got] = await Promise.all([s.commit(), readAll(vol, '/before')]);
      assert.ok(env.fp.counters.injected.outage > 0, 'connections were refused');
      assert.equal(r.committed, true);
      assert.ok(got.equals(before));
      assert.ok((await readAll(vol, '/during')).equals(during));
      assert.equal((await logOf(store, vol)).length, 2);
    } finally {
      await outage;
      await s.close();
      await vol.close();
      await store.close();
    }
  });

  it('a name object cut short on every read is UNAVAILABLE, never CORRUPT; a damaged one is CORRUPT', async () => {
    env.fp.rules = [];
    const url = env.fp.freshUrl();
    const store = await openStore(url);
    try {
      await (await Volume.fromName('cut', { createIfMissing: true, store })).close();
      env.fp.rules = [{ mode: 'truncate', rate: 1, methods: ['GET'], key: /names\/cut$/ }];
      const is = (code: string) => (e: unknown) => isCairnError(e, code as 'CORRUPT') || assert.fail(String(e));
      await assert.rejects(Volume.fromName('cut', { store }), is('UNAVAILABLE'));
      env.fp.rules = [];
      await store.put('names/bad', Buffer.from('{"id": "vo-'));
      await assert.rejects(Volume.fromName('bad', { store }), is('CORRUPT'));
      assert.equal((await Volume.fromName('cut', { store })).name, 'cut', 'whole again once the network is');
    } finally {
      env.fp.rules = [];
      await store.close();
    }
  });

  const single = [
    ['500-before', 0.2],
    ['500-after', 0.2],
    ['503', 0.2],
    ['reset', 0.2],
    ['truncate', 0.25],
    ['stall', 0.15],
  ] as const;
  for (const [mode, rate] of single) {
    it(`volume operations at ${rate * 100}% ${mode}: none fails, each commit once`, { timeout: 300_000 }, async () => {
      env.fp.rules = [];
      const url = env.fp.freshUrl(mode === 'stall' ? 'timeout_ms=3000' : undefined);
      const store = await openStore(url);
      const clean = await openStore(url.replace(env.fp.endpoint, env.s3.endpoint));
      const vol = await Volume.fromName('ops', { createIfMissing: true, store });
      const s = await vol.session();
      const model = new Map<string, Buffer>();
      let calls = 0;
      let failed = 0;
      const codes: Record<string, number> = {};
      const op = async <T>(fn: () => Promise<T>): Promise<T | undefined> => {
        calls++;
        try {
          return await fn();
        } catch (err) {
          failed++;
          const code = isCairnError(err) ? err.code : String(err);
          codes[code] = (codes[code] ?? 0) + 1;
          return undefined;
        }
      };
      env.fp.resetCounters();
      env.fp.rules = [{ mode, rate }];
      const t0 = Date.now();
      try {
        for (let i = 0; i < 10; i++) {
          const data = crypto.randomBytes(i % 2 ? 300 : 20_000);
          await writeFile(s, `/f${i}`, data);
          await op(() => s.commit());
          model.set(`f${i}`, data); // committed now or by the next commit
        }
        await op(() => s.commit());
        for (const [p, data] of model) {
          const got = await op(() => readAll(vol, `/${p}`));
          if (got) assert.ok(got.equals(data), `/${p}`);
        }
        for (let i = 0; i < 4; i++) {
          const listed = await op(() => vol.listdir('/'));
          if (listed) assert.deepEqual(listed.map((e) => e.path.replace(/^\//, '')).sort(), [...model.keys()].sort());
          await op(() => vol.history());
          await op(() => s.reload());
        }
      } finally {
        env.fp.rules = [];
      }
      const line =
        `faults: volume ops, ${mode} ${rate * 100}%: ` +
        `failed ${failed}/${calls} operations ${JSON.stringify(codes)}; ` +
        `${env.fp.counters.requests} requests, ${env.fp.injectedTotal()} faults injected, ${Date.now() - t0} ms`;
      env.lines.push(line);
      const records = await logOf(clean, vol);
      const committedPaths = records.flatMap((r) => r.ops.filter((o) => o.op !== 'times').map((o) => o.path)).sort();
      assert.deepEqual(committedPaths, [...model.keys()].sort(), 'every file committed once');
      await s.close();
      await vol.close();
      await Promise.all([store.close(), clean.close()]);
      assert.ok(env.fp.injectedTotal() > 0, 'faults were injected');
      assert.equal(failed, 0, line);
    });
  }

  const suite = 'create, batchUpload, two writers, reload, read, list, history at 25% faults: every byte and the log';
  it(suite, { timeout: 300_000 }, async () => {
    const rnd = seededRandom(42);
    const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rnd() * 256)));
    const local = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-faults-local-'));
    const url = env.fp.freshUrl('timeout_ms=3000');
    const model = new Map<string, Buffer>();
    env.fp.rules = [];
    const storeA = await openStore(url);
    const storeB = await openStore(url);
    const clean = await openStore(url.replace(env.fp.endpoint, env.s3.endpoint));
    const rules: FaultRule[] = (['500-before', '500-after', '503', 'reset', 'truncate', 'stall'] as const).map((mode) => ({
      mode,
      rate: mode === 'stall' ? 0.03 : 0.045,
    }));
    env.fp.resetCounters();
    env.fp.rules = rules;
    const t0 = Date.now();
    try {
      // batchUpload: small (inline), medium (packed) and one 3 MB file.
      await fs.mkdir(path.join(local, 'tree/sub'), { recursive: true });
      const files: [string, Buffer][] = [];
      for (let i = 0; i < 24; i++) files.push([`tree/s${i}.txt`, bytes(50 + Math.floor(rnd() * 3000))]);
      for (let i = 0; i < 6; i++) files.push([`tree/sub/m${i}.bin`, bytes(10_000 + Math.floor(rnd() * 200_000))]);
      files.push(['tree/big.bin', crypto.randomBytes(3_000_000)]);
      for (const [p, b] of files) {
        await fs.writeFile(path.join(local, p), b);
        model.set(p, b);
      }
      const volA = await Volume.fromName('faulty', { createIfMissing: true, store: storeA });
      // Meanwhile a reader (no faults) sees none of the batch or all of it, never a part.
      const watcher = await Volume.fromName('faulty', { store: clean });
      let uploading = true;
      const seen = new Set<number>();
      const watching = (async () => {
        while (uploading) {
          const n = await watcher.listdir('/tree', { recursive: true }).then(
            (es) => es.filter((e) => e.type === 'file').length,
            (e: unknown) => (isCairnError(e, 'NOT_FOUND') ? 0 : Promise.reject(e)),
          );
          seen.add(n);
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      try {
        await volA.batchUpload({}, (batch) => batch.putDirectory(path.join(local, 'tree'), '/tree'));
      } finally {
        uploading = false;
        await watching;
        await watcher.close();
      }
      assert.ok(
        [...seen].every((n) => n === 0 || n === files.length),
        `partial batch visible: ${[...seen]}`,
      );
      const volB = await Volume.fromName('faulty', { store: storeB });
      const a = await volA.session();
      const b = await volB.session();
      // Rounds of concurrent commits from two writers, on distinct and on shared paths.
      const commits: { seq: number; writes: Map<string, Buffer> }[] = [];
      for (let round = 0; round < 4; round++) {
        const plan = (who: string) => {
          const w = new Map<string, Buffer>();
          for (let i = 0; i < 4; i++) {
            w.set(`${who}/r${round}-${i}`, bytes(i === 0 ? 20_000 : 100 + Math.floor(rnd() * 2000)));
          }
          w.set(`shared/k${round % 2}`, Buffer.from(`${who} round ${round}`));
          return w;
        };
        const wa = plan('a');
        const wb = plan('b');
        for (const [s, w] of [
          [a, wa],
          [b, wb],
        ] as const) {
          await s.mkdirp(`/${[...w.keys()][0]!.split('/')[0]}`);
          await s.mkdirp('/shared');
          for (const [p, data] of w) await writeFile(s, `/${p}`, data);
        }
        const [ra, rb] = await Promise.all([a.commit(), b.commit()]);
        commits.push({ seq: ra.seq, writes: wa }, { seq: rb.seq, writes: wb });
      }
      await Promise.all([a.reload(), b.reload()]);
      for (const c of commits.sort((x, y) => x.seq - y.seq)) for (const [p, data] of c.writes) model.set(p, data);
      // Read everything back through the faults, from both sessions and the volume handle.
      for (const [p, data] of model) {
        assert.ok((await readAll(volA, `/${p}`)).equals(data), `readFile /${p}`);
        assert.ok((await a.read(`/${p}`, 0, data.length + 1)).equals(data), `session a /${p}`);
        assert.ok((await b.read(`/${p}`, 0, data.length + 1)).equals(data), `session b /${p}`);
      }
      const listed = (await volB.listdir('/', { recursive: true })).filter((e) => e.type === 'file').map((e) => e.path.replace(/^\//, ''));
      assert.deepEqual(listed.sort(), [...model.keys()].sort());
      const history = await volA.history();
      env.fp.rules = [];
      const faults = env.fp.injectedTotal();
      const requests = env.fp.counters.requests;
      env.lines.push(
        `faults: volume suite, 6 modes (stall 3%, others 4.5% each): ${requests} requests, ${faults} faults ` +
          `injected ${JSON.stringify(env.fp.counters.injected)}, ${retriesOf(storeA) + retriesOf(storeB)} retries, ` +
          `0 failed operations, ${Date.now() - t0} ms`,
      );
      // The log, read without faults: the batch and every commit exactly once, in the order of their seqs.
      const records = await logOf(clean, volA);
      assert.equal(records.length, 1 + commits.length, 'the batch and each commit once');
      assert.equal(history.length, records.length);
      for (const c of commits) {
        const r = records.find((x) => x.seq === c.seq)!;
        const files = r.ops.filter((o) => o.op === 'put' && o.entry.type === 'file').map((o) => o.path);
        assert.deepEqual(files.sort(), [...c.writes.keys()].sort());
      }
      assert.ok(faults > 20, `faults were injected (${faults})`);
      for (const x of [a, b]) await x.close();
      for (const v of [volA, volB]) await v.close();
    } finally {
      env.fp.rules = [];
      await Promise.all([storeA.close(), storeB.close(), clean.close()]);
      await fs.rm(local, { recursive: true, force: true });
    }
  });
});
