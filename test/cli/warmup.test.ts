import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startS3, useS3rverCredentials, type S3Server } from '../helpers/s3server.js';
import { cliWithStore } from './harness.js';

/** Bytes of the files under `dir` (the chunk cache's entries). */
async function duBytes(dir: string): Promise<number> {
  let n = 0;
  for (const e of await fs.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])) {
    if (e.isFile()) n += (await fs.stat(path.join(e.parentPath, e.name))).size;
  }
  return n;
}

describe('cairn volume warmup', () => {
  let s3: S3Server;
  let tmp: string;
  const saved = { ...process.env };
  const { ok, run } = cliWithStore(() => s3.url);

  before(async () => {
    useS3rverCredentials();
    s3 = await startS3();
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-warmup-'));
    process.env.CAIRN_HOME = path.join(tmp, 'home');
    process.env.CAIRN_CACHE_DIR = path.join(tmp, 'cache');
    await fs.mkdir(path.join(tmp, 'src', 'models'), { recursive: true });
    await fs.writeFile(path.join(tmp, 'src', 'models', 'a.bin'), crypto.randomBytes(6 << 20));
    await fs.writeFile(path.join(tmp, 'src', 'models', 'b.bin'), crypto.randomBytes(3 << 20));
    await ok('volume', 'create', 'w');
    await ok('volume', 'put', 'w', path.join(tmp, 'src', 'models'), '/models');
    await fs.rm(process.env.CAIRN_CACHE_DIR, { recursive: true, force: true }); // cold host cache
  });
  after(async () => {
    process.env = saved;
    await s3.stop();
    await fs.rm(tmp, { recursive: true, force: true });
  });

  it("fetches a directory's files into the host cache, then finds them there", async () => {
    const first = JSON.parse(await ok('volume', 'warmup', 'w', '/models', '--json')) as Record<string, number>;
    assert.equal(first.files, 2);
    assert.equal(first.bytes, 9 << 20);
    assert.equal(first.fetchedBytes, 9 << 20);
    assert.ok((await duBytes(process.env.CAIRN_CACHE_DIR!)) >= 9 << 20, 'chunks in the cache directory');
    const again = JSON.parse(await ok('volume', 'warmup', 'w', '/models/a.bin', '--json')) as Record<string, number>;
    assert.deepEqual([again.files, again.bytes, again.fetched], [1, 6 << 20, 0]);
  });

  it('names a missing path', async () => {
    const r = await run('volume', 'warmup', 'w', '/nope');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /NOT_FOUND/);
  });
});
