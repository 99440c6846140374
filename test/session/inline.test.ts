/**
 * Small files written in a session live in their journal entry (inline, up to INLINE_MAX) and
 * need no staging file: creates and small writes cost one journal transaction each. Their bytes
 * survive a reopen of the session directory, move to a staging file intact when they outgrow the
 * limit (also with a small write racing the move), and commit like any other file.
 */
import '../helpers/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Volume } from '../../src/volume/index.js';
import { INLINE_MAX } from '../../src/session/content.js';

describe('inline files of a session', () => {
  let tmp: string;
  let store: string;
  before(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-inline-'));
    store = `file://${path.join(tmp, 'store')}`;
  });
  after(async () => {
    await fs.rm(tmp, { recursive: true, force: true });
  });
  const staged = async (dir: string) => (await fs.readdir(path.join(dir, 'staging')).catch(() => [])).length;

  it('keeps small files in the journal, across a reopen, and commits them', async () => {
    const vol = await Volume.fromName('small', { store, createIfMissing: true });
    const dir = path.join(tmp, 's1');
    const s = await vol.session({ dir });
    await s.create('/empty', 0o644);
    await s.create('/a', 0o600);
    await s.write('/a', 0, Buffer.from('hello'));
    await s.write('/a', 3000, Buffer.from('tail'));
    await s.create('/t', 0o644);
    await s.write('/t', 0, Buffer.from('0123456789'));
    await s.truncate('/t', 4);
    await s.fsync('/a');
    assert.equal(await staged(dir), 0, 'no staging file for small files');
    const want = Buffer.alloc(3004);
    want.write('hello', 0);
    want.write('tail', 3000);
    assert.ok((await s.read('/a', 0, 1 << 20)).equals(want));
    await s.close();
    const again = await vol.session({ dir });
    assert.equal((await again.stat('/a')).size, 3004);
    assert.equal((await again.stat('/a')).mode & 0o777, 0o600);
    assert.ok((await again.read('/a', 0, 1 << 20)).equals(want));
    assert.equal((await again.read('/t', 0, 100)).toString(), '0123');
    assert.equal((await again.stat('/empty')).size, 0);
    const c = await again.commit();
    assert.deepEqual([...c.paths].sort(), ['a', 'empty', 't']);
    await again.close();
    const other = await vol.session();
    assert.ok((await other.read('/a', 0, 1 << 20)).equals(want));
    assert.equal((await other.read('/t', 0, 100)).toString(), '0123');
    assert.equal((await other.stat('/empty')).size, 0);
    await other.close();
    await vol.close();
  });

  it('moves a file that outgrows the limit to a staging file, racing small writes included', async () => {
    const vol = await Volume.fromName('grow', { store, createIfMissing: true });
    const dir = path.join(tmp, 's2');
    const s = await vol.session({ dir });
    await s.create('/g', 0o644);
    const head = crypto.randomBytes(INLINE_MAX);
    await s.write('/g', 0, head);
    assert.equal(await staged(dir), 0);
    const big = crypto.randomBytes(100_000);
    // The big write starts the copy into staging; the small one lands while it runs.
    await Promise.all([s.write('/g', INLINE_MAX, big), s.write('/g', 10, Buffer.from('XY'))]);
    // Its staging file (and empty spares the staging area makes ahead).
    assert.ok((await staged(dir)) >= 1);
    const want = Buffer.concat([head, big]);
    want.write('XY', 10);
    assert.ok((await s.read('/g', 0, 1 << 20)).equals(want));
    await s.commit();
    await s.close();
    const other = await vol.session();
    assert.ok((await other.read('/g', 0, 1 << 20)).equals(want));
    await other.close();
    await vol.close();
  });
});
