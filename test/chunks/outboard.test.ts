import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { blockCvOf, hashChunk, outboardAsync } from '../../src/chunks/hash.js';
import { loadAddon } from '../../src/util/addon.js';
import { blockCount, blockCv, chunkOutboard, CV_BYTES, isBlockSize, verifyOutboard } from '../../src/chunks/outboard.js';

const KiB = 1024;

describe('outboard (BLAKE3 tree)', () => {
  it('block CVs merge to the chunk name, for many lengths and block sizes', () => {
    const lengths = [1025, 2047, 2048, 2049, 4096 + 1, 64 * KiB + 1, 65 * KiB, 128 * KiB, 200_001, 256 * KiB + 3, 1 << 20, 1_234_567];
    for (const bs of [1 * KiB, 4 * KiB, 64 * KiB]) {
      for (const len of lengths) {
        if (len <= bs) continue;
        const chunk = crypto.randomBytes(len);
        const ob = chunkOutboard(chunk, bs);
        assert.equal(ob.length, blockCount(len, bs) * CV_BYTES);
        assert.ok(verifyOutboard(ob, hashChunk(chunk), len, bs), `len ${len} block ${bs}`);
      }
    }
  });

  it('a block matches only its own CV: bytes and position are both bound', () => {
    const bs = 64 * KiB;
    const chunk = crypto.randomBytes(5 * bs + 777);
    const ob = chunkOutboard(chunk, bs);
    const cv = (g: number): Buffer => Buffer.from(ob.subarray(g * CV_BYTES, (g + 1) * CV_BYTES));
    for (let g = 0; g < 6; g++) {
      const block = chunk.subarray(g * bs, Math.min(chunk.length, (g + 1) * bs));
      assert.ok(cv(g).equals(blockCv(block, g, bs)));
    }
    // Block 1's bytes at position 2 (same length) do not match block 2's CV, nor block 1's bytes with one bit flipped.
    assert.ok(!cv(2).equals(blockCv(chunk.subarray(bs, 2 * bs), 2, bs)));
    const bad = Buffer.from(chunk.subarray(bs, 2 * bs));
    bad[100] ^= 1;
    assert.ok(!cv(1).equals(blockCv(bad, 1, bs)));
    // The last block's length is bound too.
    assert.ok(!cv(5).equals(blockCv(chunk.subarray(5 * bs, chunk.length - 1), 5, bs)));
  });

  it('refuses a damaged outboard, a wrong name or length, and single-block chunks', () => {
    const bs = 64 * KiB;
    const chunk = crypto.randomBytes(300 * KiB);
    const hash = hashChunk(chunk);
    const ob = chunkOutboard(chunk, bs);
    assert.ok(verifyOutboard(ob, hash, chunk.length, bs));
    for (let at = 0; at < ob.length; at += 37) {
      const bad = Buffer.from(ob);
      bad[at] ^= 0x10;
      assert.equal(verifyOutboard(bad, hash, chunk.length, bs), false);
    }
    assert.equal(verifyOutboard(ob, hashChunk(Buffer.from('other')), chunk.length, bs), false);
    assert.equal(verifyOutboard(ob, hash, chunk.length + bs, bs), false); // (the last block's CV binds the exact length)
    assert.equal(verifyOutboard(ob.subarray(32), hash, chunk.length, bs), false);
    assert.equal(blockCount(bs, bs), 0);
    assert.equal(chunkOutboard(crypto.randomBytes(bs), bs).length, 0);
    assert.deepEqual([1024, 65536, 3000, 512, 0].map(isBlockSize), [true, true, false, false, false]);
  });

  it("the addon's outboard (native/ntree.c, what outboardAsync uses) is byte for byte this one", async () => {
    const tree = (loadAddon() as { ntreeOutboard?: (b: Buffer, bs: number) => Buffer | null } | undefined)?.ntreeOutboard;
    assert.equal(typeof tree, 'function', 'the addon is built (scripts/setup.sh)');
    const lengths = [1, 1024, 1025, 32 * KiB, 32 * KiB + 1, 65 * KiB, 200_001, 1 << 20, 1_234_567, 4 << 20];
    for (const bs of [1 * KiB, 32 * KiB, 64 * KiB, 1 << 20]) {
      for (const len of lengths) {
        const chunk = crypto.randomBytes(len);
        const want = Buffer.from(chunkOutboard(chunk, bs));
        assert.ok(tree!(chunk, bs)!.equals(want), `ntreeOutboard: len ${len} block ${bs}`);
        // A view into a larger buffer at an odd offset, as a pack writer's slice is.
        const big = Buffer.concat([Buffer.alloc(3), chunk, Buffer.alloc(5)]);
        assert.ok(Buffer.from(await outboardAsync(big.subarray(3, 3 + len), bs)).equals(want), `outboardAsync: len ${len} block ${bs}`);
      }
    }
    assert.throws(() => tree!(Buffer.alloc(10), 3000), TypeError);
  });

  it("the addon's block CV (what partial reads check blocks with) is byte for byte blockCv", () => {
    const cv = (loadAddon() as { ntreeBlockCv?: (b: Buffer, i: number, bs: number) => Buffer | null } | undefined)?.ntreeBlockCv;
    assert.equal(typeof cv, 'function', 'the addon is built (scripts/setup.sh)');
    for (const bs of [1 * KiB, 32 * KiB, 64 * KiB]) {
      for (const [len, index] of [
        [bs, 0],
        [bs, 1],
        [bs, 37],
        [1, 5],
        [bs - 1, 2],
        [1025, 3],
        [bs, 2 ** 33],
      ] as const) {
        if (len > bs) continue;
        const block = crypto.randomBytes(len);
        const want = Buffer.from(blockCv(block, index, bs));
        assert.ok(cv!(block, index, bs)!.equals(want), `ntreeBlockCv: len ${len} index ${index} block ${bs}`);
        assert.ok(Buffer.from(blockCvOf(Buffer.concat([Buffer.alloc(7), block]).subarray(7), index, bs)).equals(want));
      }
    }
    assert.throws(() => cv!(Buffer.alloc(2 * KiB), 0, KiB), TypeError); // longer than a block
    assert.throws(() => cv!(Buffer.alloc(0), 0, KiB), TypeError);
  });
});
