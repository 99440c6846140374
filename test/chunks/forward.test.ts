/**
 * Reads through forwarding objects (src/chunks/forward.ts) with a real ChunkStore: a chunk whose
 * pack is gone is read where its forwarding object says, through a chain of two compactions, and
 * verified; a pack gone without a forwarding object, or one that does not name the chunk, fails
 * as its GET did (NOT_FOUND); a forwarding object naming other bytes is CORRUPT, never data.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { MemoryStore } from '../../src/store/memory.js';
import { ChunkStore, PackBuilder, encodeForward, forwardKey, hashChunk, type ChunkRef } from '../../src/chunks/index.js';
import { isCairnError } from '../../src/errors.js';

const PREFIX = 'volumes/vo-t/packs/';

async function packOf(store: MemoryStore, chunks: Buffer[]): Promise<ChunkRef[]> {
  const b = new PackBuilder();
  const refs = chunks.map((c) => {
    const hash = hashChunk(c);
    return { hash, pack: b.id, offset: b.add(hash, c), length: c.length };
  });
  await store.put(PREFIX + b.id, b.seal());
  return refs;
}

async function forward(store: MemoryStore, from: string, to: ChunkRef[]): Promise<void> {
  await store.put(forwardKey(PREFIX, from), encodeForward({ pack: from, time: 1, chunks: new Map(to.map((r) => [r.hash, r])) }), {
    ifAbsent: true,
  });
}

const fresh = (store: MemoryStore) => new ChunkStore({ store, packPrefix: PREFIX, cache: null, memoryBytes: 0 });

describe('forwarding', () => {
  it('reads a chunk of a gone pack through a chain of forwarding objects, verified', async () => {
    const store = new MemoryStore();
    const [a, b] = [crypto.randomBytes(1000), crypto.randomBytes(2000)];
    const old = await packOf(store, [a, b]);
    const mid = await packOf(store, [b]); // compaction 1: b copied, a dead
    await forward(store, old[0]!.pack, mid);
    await store.delete(PREFIX + old[0]!.pack);
    assert.equal(forwardKey(PREFIX, 'p'), 'volumes/vo-t/forward/p');
    assert.deepEqual(await fresh(store).read([old[1]!], 0, 2000), b);
    const last = await packOf(store, [b]); // compaction 2 of the new pack
    await forward(store, mid[0]!.pack, last);
    await store.delete(PREFIX + mid[0]!.pack);
    assert.deepEqual(await fresh(store).read([old[1]!], 0, 2000), b);
    // a was not forwarded: gone, as the pack's GET says (NOT_FOUND), never other bytes.
    await assert.rejects(fresh(store).read([old[0]!], 0, 1000), (e) => isCairnError(e, 'NOT_FOUND'));
  });

  it('a pack gone without forwarding is NOT_FOUND; a forwarding object pointing at other bytes is CORRUPT', async () => {
    const store = new MemoryStore();
    const [a, c] = [crypto.randomBytes(1000), crypto.randomBytes(1000)];
    const gone = await packOf(store, [a]);
    await store.delete(PREFIX + gone[0]!.pack);
    await assert.rejects(fresh(store).read(gone, 0, 1000), (e) => isCairnError(e, 'NOT_FOUND'));
    const other = await packOf(store, [c]);
    await forward(store, gone[0]!.pack, [{ ...other[0]!, hash: gone[0]!.hash }]);
    await assert.rejects(fresh(store).read(gone, 0, 1000), (e) => isCairnError(e, 'CORRUPT'));
  });
});
