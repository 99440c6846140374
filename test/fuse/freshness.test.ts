/**
 * A reload never leaves stale pages in the kernel: a file that another writer replaced with
 * different bytes of the same size and the same mtime (a batch upload of a file whose mtime was
 * preserved) reads as the new version after reload, though the kernel keeps cached pages across
 * opens while size and mtime are unchanged (auto_cache). Unit test of Freshness, then a real
 * mount (real session, embedded file store).
 */
import '../helpers/env.js';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { controlRequest } from '../../src/fuse/control.js';
import { Freshness } from '../../src/fuse/freshness.js';
import { Volume } from '../../src/volume/index.js';
import { cleanupAll, q, shOk, startMainDaemon, tmpDir } from '../helpers/mount.js';

describe('Freshness', () => {
  it('reports the entry mtime until a reload changed the file, then a new one', () => {
    const f = new Freshness();
    assert.equal(f.mtimeOf('a', 1000, 5), 1000);
    f.changed(['b']); // never shown: nothing to do
    assert.equal(f.mtimeOf('b', 1000, 5), 1000);
    f.changed(['a']);
    const after1 = f.mtimeOf('a', 1000, 5);
    assert.notEqual(after1, 1000, 'same size and mtime after a change: a new mtime');
    assert.equal(f.mtimeOf('a', 1000, 5), after1, 'stable until the next change');
    f.changed(['a']);
    assert.notEqual(f.mtimeOf('a', 1000, 5), after1);
    assert.equal(f.mtimeOf('a', 2000, 5), 2000, 'a new entry mtime is reported as it is');
    f.changed(['a']);
    assert.equal(f.mtimeOf('a', 2000, 6), 2000, 'a new size is news enough');
    assert.equal(f.mtimeOf('c', 3000, 5), 3000);
    f.changed(['c']);
    assert.equal(f.mtimeOf('c', 3000, 5), 3001);
    f.changed(['c']); // another version whose own mtime is the one reported before
    assert.notEqual(f.mtimeOf('c', 3001, 5), 3001);
    assert.equal(f.mtimeOf('b', 1000, 5), 1000);
  });

  it('past its bound of remembered files it forgets the oldest quarter at once, not one file per new file', () => {
    // Forgetting one file per new file walked the Map's deleted slots each time (quadratic: 118 µs
    // a file, 65 s in `ls -R` of 1,000,000 files); a quarter at a time is one pass per 65,536 files.
    const bound = 1 << 18;
    const f = new Freshness();
    for (let i = 0; i < bound; i++) f.mtimeOf(`d/f${i}`, 1, 1);
    f.mtimeOf('e/f0', 1, 1); // past the bound
    const lastForgotten = `d/f${bound / 4 - 1}`;
    const firstKept = `d/f${bound / 4}`;
    f.changed([lastForgotten, firstKept]);
    assert.equal(f.mtimeOf(firstKept, 1, 1), 2, 'remembered: its change is reported');
    assert.equal(f.mtimeOf(lastForgotten, 1, 1), 1, 'the whole oldest quarter was forgotten by one new file');
  });

  it('once stopped (native binding) reports entries as they are and remembers none', () => {
    const f = new Freshness();
    assert.equal(f.mtimeOf('a', 1000, 5), 1000);
    f.stop();
    f.changed(['a']);
    assert.equal(f.mtimeOf('a', 1000, 5), 1000);
    assert.equal((f as unknown as { shown: Map<string, unknown> }).shown.size, 0);
  });
});

describe('reload and the kernel page cache (real session)', () => {
  after(() => cleanupAll());

  it('shows the new bytes of a file replaced with the same size and mtime', async () => {
    const base = await tmpDir();
    const store = `file://${path.join(base, 'store')}`;
    const vol = await Volume.fromName('fresh', { store, createIfMissing: true });
    const src = path.join(base, 'src');
    const when = new Date('2020-01-01T00:00:00Z'); // e.g. normalised by a reproducible build
    const upload = async (text: string) => {
      await fs.writeFile(src, text);
      await fs.utimes(src, when, when);
      await vol.batchUpload({ force: true }, (b) => b.putFile(src, '/f.txt'));
    };
    await upload('version-1');
    await vol.batchUpload({}, (b) => b.putFile(Buffer.from('mine'), '/other.txt'));
    const mnt = path.join(base, 'mnt');
    const d = await startMainDaemon(() => ({ store }))({ mountpoint: mnt, volume: 'fresh' });
    try {
      const before = (await fs.stat(path.join(mnt, 'other.txt'))).mtimeMs;
      assert.equal(await shOk(`cat ${q(mnt)}/f.txt`), 'version-1'); // now in the page cache
      for (const v of ['version-2', 'version-3']) {
        await upload(v);
        await controlRequest(mnt, 'reload');
        assert.equal(await shOk(`cat ${q(mnt)}/f.txt`), v);
        assert.equal(await shOk(`cat ${q(mnt)}/f.txt`), v, 'and again, from the cache');
      }
      const now = (await fs.stat(path.join(mnt, 'other.txt'))).mtimeMs;
      assert.equal(now, before, 'files nobody changed keep their mtime');
    } finally {
      await d.stop();
      await vol.close();
      await fs.rm(base, { recursive: true, force: true });
    }
  });
});
