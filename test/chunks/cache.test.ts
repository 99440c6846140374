import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ChunkCache } from '../../src/chunks/cache.js';
import { hashChunk } from '../../src/chunks/hash.js';

const run = promisify(execFile);
const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'cache-child.js');

/** Total bytes of the files under `dir` (recursively), and how many there are. */
async function du(dir: string): Promise<{ bytes: number; files: number }> {
  let bytes = 0;
  let files = 0;
  for (const e of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    bytes += (await fs.stat(path.join(e.parentPath ?? e.path, e.name))).size;
    files++;
  }
  return { bytes, files };
}

function chunk(n: number): { data: Buffer; hash: string } {
  const data = crypto.randomBytes(n);
  return { data, hash: hashChunk(data) };
}

describe('ChunkCache', () => {
  let root: string;
  let i = 0;
  const freshDir = (): string => path.join(root, `c${i++}`);
  before(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-cache-'));
  });
  after(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  it('stores content-addressed files and counts hits and misses', async () => {
    const dir = freshDir();
    const cache = new ChunkCache({ dir, maxBytes: 1 << 30 });
    const c = chunk(1000);
    assert.equal(await cache.get(c.hash), undefined);
    await cache.put(c.hash, c.data);
    assert.deepEqual(await cache.get(c.hash), c.data);
    assert.deepEqual(await fs.readFile(path.join(dir, c.hash.slice(0, 2), c.hash)), c.data);
    assert.equal(await cache.get('not-a-hash'), undefined);
    const s = cache.stats();
    assert.equal(s.hits, 1);
    assert.equal(s.misses, 1);
    assert.equal(s.bytes, 1000);
    // Another handle on the same directory (as another process would) sees it.
    assert.deepEqual(await new ChunkCache({ dir, maxBytes: 1 << 30 }).get(c.hash), c.data);
  });

  it('drops a corrupted entry and treats it as a miss', async () => {
    const dir = freshDir();
    const cache = new ChunkCache({ dir, maxBytes: 1 << 30 });
    const c = chunk(5000);
    await cache.put(c.hash, c.data);
    const file = cache.pathOf(c.hash);
    const bad = Buffer.from(c.data);
    bad[1234] ^= 0xff;
    await fs.writeFile(file, bad);
    assert.equal(await cache.get(c.hash), undefined);
    await assert.rejects(fs.stat(file), { code: 'ENOENT' });
    assert.equal(cache.stats().corrupt, 1);
    await fs.writeFile(file, c.data.subarray(0, 100)); // truncated
    assert.equal(await cache.get(c.hash), undefined);
  });

  it('evicts least recently used entries first', async () => {
    const dir = freshDir();
    const cache = new ChunkCache({ dir, maxBytes: 1_000_000 });
    const [a, b, c, d] = [chunk(300_000), chunk(300_000), chunk(300_000), chunk(300_000)];
    for (const x of [a, b, c]) await cache.put(x.hash, x.data);
    const now = Date.now() / 1000;
    await fs.utimes(cache.pathOf(a.hash), now - 300, now - 300);
    await fs.utimes(cache.pathOf(b.hash), now - 200, now - 200);
    await fs.utimes(cache.pathOf(c.hash), now - 100, now - 100);
    assert.ok(await cache.get(a.hash)); // touches a
    await cache.flush();
    await cache.put(d.hash, d.data);
    assert.equal(await cache.get(b.hash), undefined, 'b was least recently used');
    for (const x of [a, c, d]) assert.ok(await cache.get(x.hash));
    assert.ok((await du(dir)).bytes <= 1_000_000);
  });

  it('a put with evictLater resolves with its entry in place and leaves the eviction to run behind it', async () => {
    const dir = freshDir();
    const cache = new ChunkCache({ dir, maxBytes: 1_000_000 });
    const xs = [chunk(300_000), chunk(300_000), chunk(300_000), chunk(300_000)];
    for (const x of xs) {
      await cache.put(x.hash, x.data, { evictLater: true });
      assert.ok(await cache.has(x.hash), 'in place when put resolves');
    }
    assert.ok((await cache.trim()) <= 1_000_000);
    assert.ok((await du(dir)).bytes <= 1_000_000);
  });

  it('stays within its bound under many concurrent puts', async () => {
    const dir = freshDir();
    const max = 1024 * 1024;
    const cache = new ChunkCache({ dir, maxBytes: max });
    await Promise.all(Array.from({ length: 100 }, () => chunk(64 * 1024)).map((c) => cache.put(c.hash, c.data)));
    const { bytes, files } = await du(dir);
    assert.ok(bytes <= max, `${bytes} > ${max}`);
    assert.ok(files > 0);
    assert.ok(cache.stats().evicted > 0);
  });

  it('is shared safely by several processes and respects its bound', async () => {
    const dir = freshDir();
    const max = 2 * 1024 * 1024;
    const results = await Promise.all(
      Array.from({ length: 4 }, () => run(process.execPath, [CHILD, dir, String(max), '64', String(48 * 1024)])),
    );
    for (const r of results) {
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { wrong: number; stats: { puts: number } };
      assert.equal(out.wrong, 0);
      assert.equal(out.stats.puts, 64);
    }
    const { bytes } = await du(dir);
    assert.ok(bytes <= max, `${bytes} > ${max}`);
    // No temp files left behind.
    const names = await fs.readdir(dir, { recursive: true });
    assert.ok(!names.some((n) => path.basename(String(n)).startsWith('.tmp-')));
  });

  it('removes stale temp files and tolerates the directory vanishing', async () => {
    const dir = freshDir();
    const cache = new ChunkCache({ dir, maxBytes: 1 << 20 });
    const c = chunk(100);
    await cache.put(c.hash, c.data);
    const tmp = path.join(dir, c.hash.slice(0, 2), '.tmp-leftover');
    await fs.writeFile(tmp, 'x');
    const old = Date.now() / 1000 - 3600;
    await fs.utimes(tmp, old, old);
    await cache.trim();
    await assert.rejects(fs.stat(tmp), { code: 'ENOENT' });
    await fs.rm(dir, { recursive: true, force: true });
    assert.equal(await cache.get(c.hash), undefined);
    await cache.put(c.hash, c.data); // may be dropped silently, never throws
    await cache.put(c.hash, c.data);
    assert.deepEqual(await cache.get(c.hash), c.data);
  });

  it('shared() is one instance at config.cacheDir()', async () => {
    const dir = freshDir();
    process.env.CAIRN_CACHE_DIR = dir;
    try {
      const s = ChunkCache.shared();
      assert.equal(s, ChunkCache.shared());
      assert.equal(s.dir, path.resolve(dir));
    } finally {
      delete process.env.CAIRN_CACHE_DIR;
    }
  });
});
