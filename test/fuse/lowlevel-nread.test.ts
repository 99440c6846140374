/**
 * Unit tests of NativeReads (src/fuse/lowlevel-nread.ts) against a stand-in addon: registering a
 * file for native opens at its LOOKUP checks only JavaScript's handles for writers (the addon's
 * own handles are read-only: their list is not asked for), and a file open for writing through
 * JavaScript is still never registered.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HandleTable, O_RDWR } from '../../src/fuse/handles.js';
import type { NreadAddon } from '../../src/fuse/lowlevel-addon.js';
import { NativeReads, type ChunkSource } from '../../src/fuse/lowlevel-nread.js';

/** A stand-in addon: records layouts registered for native opens and counts `nreadOpened` calls. */
function fakeAddon(): NreadAddon & { layouts: number[]; openedCalls: number } {
  const a = {
    layouts: [] as number[],
    openedCalls: 0,
    nreadOpen: () => undefined,
    nreadClose: () => undefined,
    nreadDrop: () => 0,
    nreadHas: () => true,
    nreadPut: () => true,
    nreadStats: () => ({
      served: 0,
      servedBytes: 0,
      servedNs: 0,
      misses: 0,
      puts: 0,
      putBytes: 0,
      evictions: 0,
      bytes: 0,
      chunks: 0,
      files: 0,
      budget: 1,
    }),
    nreadCache: () => true,
    nreadLayout: (_ctx: unknown, ino: number) => (a.layouts.push(ino), true),
    nreadForget: () => undefined,
    nreadOpened: () => {
      a.openedCalls++;
      return Float64Array.from([2 ** 32 + 1, 9, 4242]); // one file open natively: /d/c (inode 9)
    },
  };
  return a;
}

const INODES: Record<string, number> = { '/d/a': 7, '/d/b': 8, '/d/c': 9, '/d/w': 10 };
const source: ChunkSource = {
  entryAt: (p) =>
    p in INODES ? { type: 'file', size: 100, chunks: [{ hash: 'ab'.repeat(32), pack: 'p', offset: 0, length: 100 }] } : undefined,
  readdir: async () => Object.keys(INODES).map((p) => ({ path: p, type: 'file' })),
  chunks: { readChunk: async () => Buffer.alloc(100), cacheDir: '/nonexistent' },
};
const inodes = {
  peek: (p: string) => INODES[p],
  path: (ino: number) => Object.keys(INODES).find((p) => INODES[p] === ino) ?? null,
};

describe('NativeReads', () => {
  it('registers files at LOOKUP without asking the addon for its open handles; never a file open for writing', async () => {
    const addon = fakeAddon();
    const handles = new HandleTable();
    const nr = new NativeReads(addon, {}, source, handles, inodes);
    assert.ok(nr.nativeOpens);
    const w = handles.add('/d/w', O_RDWR, 1);
    const fh = handles.add('/d/a', 0, 1);
    await new Promise<void>((r) => nr.open(fh, 7, '/d/a', 0, r)); // registers /d/a, then its directory (next turn)
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(addon.layouts.sort(), [7, 8, 9], 'the directory registered, but not the file open for writing');
    addon.layouts.length = 0;
    const calls = addon.openedCalls;
    nr.looked('/d/b', 8);
    nr.looked('/d/w', 10);
    assert.deepEqual(addon.layouts, [8], 'registered at LOOKUP, the file open for writing not');
    assert.equal(addon.openedCalls, calls, 'the addon was not asked for its open handles');
    // The table still counts the native handles as open files (reload, unmount, status).
    assert.deepEqual(
      handles.list().map((h) => h.path),
      ['/d/w', '/d/a', '/d/c'],
    );
    handles.remove(w);
    nr.looked('/d/w', 10);
    assert.deepEqual(addon.layouts, [8, 10], 'registered once no longer open for writing');
  });
});
