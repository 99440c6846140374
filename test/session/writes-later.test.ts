/**
 * Writes to a file whose put is already pending keep its new size and times in memory (the
 * journal's `update(…, true)`, the view's `setLater`) instead of a transaction per write. What must
 * hold, real session on the embedded file store, real SQLite:
 * - the session sees every write at once (stat, a listing), and the journal's table has them after
 *   a listing, an fsync, a commit, a close, or WRITES_LATER_MS;
 * - a commit publishes the last size; a rename, a truncate or a new write after a commit's fence
 *   keeps every byte;
 * - a writer killed with SIGKILL before any of those loses no byte: the size comes back from the
 *   staging file when the session opens again.
 */
import '../helpers/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { Volume } from '../../src/volume/index.js';
import { WRITES_LATER_MS } from '../../src/session/view.js';
import { pieceOf } from '../fixtures/append-writer.js';

const WRITER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'append-writer.js');
const PIECE = 4096;

/** The row of `p` as the journal's SQLite table holds it (another connection: what a crash would keep). */
function row(dir: string, p: string): { size: number; mtime: number } | undefined {
  const db = new Database(path.join(dir, 'journal.db'), { readonly: true });
  try {
    return db.prepare<[string], { size: number; mtime: number }>('SELECT size, mtime FROM entries WHERE path = ?').get(p);
  } finally {
    db.close();
  }
}

describe('writes kept in memory', () => {
  let tmp: string;
  let store: string;
  let n = 0;
  before(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-later-'));
    store = `file://${path.join(tmp, 'store')}`;
  });
  after(async () => {
    await fs.rm(tmp, { recursive: true, force: true });
  });

  async function open(): Promise<{ vol: Volume; s: Awaited<ReturnType<Volume['session']>>; dir: string; name: string }> {
    const name = `v${++n}`;
    await Volume.objects.create(name, { store });
    const vol = await Volume.fromName(name, { store });
    const dir = path.join(tmp, `s${n}`);
    return { vol, s: await vol.session({ dir }), dir, name };
  }

  /** Creates `p` and appends `count` pieces (the second moves it from its entry to a staging file). */
  async function append(s: Awaited<ReturnType<Volume['session']>>, p: string, count: number, from = 0): Promise<void> {
    if (from === 0) await s.create(p);
    for (let i = from; i < from + count; i++) await s.write(p, i * PIECE, pieceOf(i, PIECE));
  }

  /** A committed file's bytes, read by a fresh volume handle. */
  async function whole(vol: Volume, p: string): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const b of vol.readFile(p)) parts.push(b);
    return Buffer.concat(parts);
  }

  const content = (count: number): Buffer => Buffer.concat(Array.from({ length: count }, (_, i) => pieceOf(i, PIECE)));

  it('answers from memory, and writes the rows before a listing, an fsync and a close', async () => {
    const { vol, s, dir } = await open();
    await s.mkdir('/d');
    await append(s, '/d/a', 1);
    await append(s, '/d/a', 9, 1);
    assert.equal((await s.stat('/d/a')).size, 10 * PIECE);
    // The first piece is inline, the second moves the file to a staging file (a transaction); the
    // writes after it took none: the table still has the second one's size.
    assert.equal(row(dir, 'd/a')!.size, 2 * PIECE);
    const listed = await s.readdir('/d');
    assert.deepEqual(
      listed.map((e) => [e.path, e.size]),
      [['d/a', 10 * PIECE]],
    );
    assert.equal(row(dir, 'd/a')!.size, 10 * PIECE, 'a listing writes the kept rows first');
    await append(s, '/d/a', 2, 10);
    const mtime = (await s.stat('/d/a')).mtimeMs;
    assert.equal(row(dir, 'd/a')!.size, 10 * PIECE);
    await s.fsync('/d/a');
    assert.deepEqual(row(dir, 'd/a'), { size: 12 * PIECE, mtime }, 'fsync writes size and mtime');
    await append(s, '/d/a', 1, 12);
    await s.close();
    assert.equal(row(dir, 'd/a')!.size, 13 * PIECE, 'close writes the kept rows');
    await vol.close();
  });

  it(`writes a kept row within ${WRITES_LATER_MS} ms on its own`, async () => {
    const { vol, s, dir } = await open();
    await append(s, '/a', 3);
    assert.equal(row(dir, 'a')!.size, 2 * PIECE);
    await new Promise((r) => setTimeout(r, WRITES_LATER_MS + 300));
    assert.equal(row(dir, 'a')!.size, 3 * PIECE);
    await s.close();
    await vol.close();
  });

  it('publishes the last size at commit, and keeps every byte through rename, truncate and writes during a commit', async () => {
    const { vol, s, name } = await open();
    await append(s, '/a', 8);
    const committing = s.commit();
    // Above the fence of the commit in flight: these must take a pending put of their own.
    await append(s, '/a', 4, 8);
    await committing;
    await s.commit();
    await append(s, '/a', 2, 12);
    await s.rename('/a', '/b');
    await append(s, '/b', 2, 14);
    await s.truncate('/b', 15 * PIECE + 100);
    await append(s, '/b', 1, 16);
    await s.commit();
    await s.close();
    await vol.close();
    const fresh = await Volume.fromName(name, { store });
    try {
      const want = Buffer.concat([content(15), pieceOf(15, PIECE).subarray(0, 100), Buffer.alloc(PIECE - 100), pieceOf(16, PIECE)]);
      assert.ok((await whole(fresh, '/b')).equals(want));
      assert.deepEqual(
        (await fresh.listdir('/')).map((e) => e.path),
        ['b'],
      );
    } finally {
      await fresh.close();
    }
  });

  it('loses no byte when the writer is killed before the kept rows are written', async () => {
    const { vol, s, dir, name } = await open();
    await s.close();
    const count = 50;
    const child = spawn(process.execPath, [WRITER, JSON.stringify({ store, volume: name, dir, path: '/a', count, piece: PIECE })], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise((r) => child.once('exit', r));
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (b: Buffer) => b.toString().includes('written') && resolve());
      child.once('exit', (code) => reject(new Error(`the writer exited (${code}) before writing`)));
    });
    child.kill('SIGKILL');
    await exited;
    assert.ok(row(dir, 'a')!.size < count * PIECE, 'the killed writer had rows kept in memory');
    const again = await vol.session({ dir });
    try {
      assert.equal((await again.stat('/a')).size, count * PIECE);
      assert.ok((await again.read('/a', 0, count * PIECE)).equals(content(count)));
      await again.commit();
    } finally {
      await again.close();
    }
    const fresh = await Volume.fromName(name, { store });
    try {
      assert.ok((await whole(fresh, '/a')).equals(content(count)));
    } finally {
      await fresh.close();
      await vol.close();
    }
  });
});
