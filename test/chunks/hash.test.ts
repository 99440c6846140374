import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import { promisify } from 'node:util';
import { hashChunk, isChunkHash, verifyChunk } from '../../src/chunks/hash.js';
import { isCairnError } from '../../src/errors.js';

const run = promisify(execFile);

describe('hash', () => {
  it('is BLAKE3 (official test vectors)', () => {
    assert.equal(hashChunk(new Uint8Array(0)), 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262');
    assert.equal(hashChunk(Buffer.from('abc')), '6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85');
    // BLAKE3 test vector input: bytes i % 251, length 1024 (crosses a chunk boundary of the tree).
    const input = Uint8Array.from({ length: 1024 }, (_, i) => i % 251);
    assert.equal(hashChunk(input), '42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7');
  });

  it('hashes views by their bytes only', () => {
    const big = Buffer.from('xxabcxx');
    assert.equal(hashChunk(big.subarray(2, 5)), hashChunk(Buffer.from('abc')));
  });

  it('recognises well-formed names', () => {
    assert.ok(isChunkHash(hashChunk(Buffer.from('a'))));
    assert.ok(!isChunkHash('A'.repeat(64)));
    assert.ok(!isChunkHash('ab'));
    assert.ok(!isChunkHash(undefined));
  });

  it('verifyChunk throws CORRUPT on a mismatch or wrong length', () => {
    const data = Buffer.from('hello');
    const h = hashChunk(data);
    assert.equal(verifyChunk(data, h, 5), data);
    assert.throws(() => verifyChunk(Buffer.from('hellp'), h), (e: unknown) => isCairnError(e, 'CORRUPT'));
    assert.throws(() => verifyChunk(data, h, 6), (e: unknown) => isCairnError(e, 'CORRUPT'));
  });
});

describe('hash worker pool', () => {
  it('gives the same names as hashChunk, for views and under concurrency', async () => {
    const { hashChunkAsync, ASYNC_HASH_MIN_BYTES } = await import('../../src/chunks/hash.js');
    const big = crypto.randomBytes(8 * 1024 * 1024);
    const views = [0, 1, ASYNC_HASH_MIN_BYTES - 1, ASYNC_HASH_MIN_BYTES, 300_000, 1 << 20, 4 << 20].map((n, i) => big.subarray(i * 3, i * 3 + n));
    const many = Array.from({ length: 40 }, (_, i) => big.subarray(i * 150_000, i * 150_000 + 200_000 + i));
    const all = [...views, ...many];
    const got = await Promise.all(all.map((v) => hashChunkAsync(v)));
    assert.deepEqual(got, all.map((v) => hashChunk(v)));
    assert.equal(big.length, 8 * 1024 * 1024, 'input untouched (a copy is transferred)');
  });

  it('verifyChunkAsync throws CORRUPT on a mismatch', async () => {
    const { verifyChunkAsync } = await import('../../src/chunks/hash.js');
    const data = crypto.randomBytes(1 << 20);
    const h = hashChunk(data);
    assert.equal(await verifyChunkAsync(data, h, data.length), data);
    const bad = Buffer.from(data);
    bad[77] ^= 1;
    await assert.rejects(verifyChunkAsync(bad, h), (e: unknown) => isCairnError(e, 'CORRUPT'));
  });

  it('never keeps a process alive, and never loses a result to exit', async () => {
    const mod = new URL('../../src/chunks/hash.js', import.meta.url).href;
    const script = `import { hashChunkAsync } from ${JSON.stringify(mod)};
      import { hashPoolStats } from ${JSON.stringify(mod)};
      const h = await hashChunkAsync(new Uint8Array(1 << 20)); console.log(h, hashPoolStats().jobs);`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000, env: { ...process.env, CAIRN_HASH_THREADS: '2' } });
    assert.equal(stdout.trim(), `${hashChunk(new Uint8Array(1 << 20))} 1`, 'hashed by a worker');
  });
});
