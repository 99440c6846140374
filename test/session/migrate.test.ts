/**
 * A journal written by a cairn of schema 1 (before format 3's POSIX metadata) opens under this
 * one: its entries and pending ops are kept, and the new fields and the `times` op work on it.
 */
import '../helpers/env.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Journal } from '../../src/session/journal.js';
import { SCHEMA_VERSION } from '../../src/session/schema.js';

/** Schema 1 as cairn wrote it (src/session/schema.ts, migration 1). */
const V1 = `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
  CREATE TABLE entries (path TEXT PRIMARY KEY, parent TEXT NOT NULL, type TEXT NOT NULL, mode INTEGER NOT NULL,
    mtime INTEGER NOT NULL, size INTEGER NOT NULL, chunks TEXT, inline BLOB, target TEXT, staged TEXT) WITHOUT ROWID;
  CREATE INDEX entries_parent ON entries(parent, path);
  CREATE INDEX entries_staged ON entries(staged) WHERE staged IS NOT NULL;
  CREATE TABLE pending (id INTEGER PRIMARY KEY AUTOINCREMENT, op TEXT NOT NULL CHECK (op IN ('put', 'delete')), path TEXT NOT NULL);
  CREATE INDEX pending_path ON pending(path);
  CREATE TABLE chunks (hash TEXT PRIMARY KEY, pack TEXT NOT NULL, off INTEGER NOT NULL, len INTEGER NOT NULL) WITHOUT ROWID;
`;

describe('journal schema migration', () => {
  it('opens a schema 1 journal, keeping entries and pending ops', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-migrate-'));
    try {
      const file = path.join(dir, 'journal.db');
      const db = new Database(file);
      db.exec(V1);
      db.prepare("INSERT INTO entries VALUES ('', '/', 'directory', 493, 1, 0, NULL, NULL, NULL, NULL)").run();
      db.prepare("INSERT INTO entries VALUES ('d', '', 'directory', 493, 2, 0, NULL, NULL, NULL, NULL)").run();
      db.prepare("INSERT INTO entries VALUES ('d/f', 'd', 'file', 420, 3, 2, NULL, X'6869', NULL, NULL)").run();
      db.prepare("INSERT INTO pending (op, path) VALUES ('put', 'd/f')").run();
      db.pragma('user_version = 1');
      db.close();
      const j = new Journal(file);
      try {
        assert.deepEqual(j.get('d/f'), { path: 'd/f', type: 'file', mode: 0o644, mtimeMs: 3, size: 2, inline: Buffer.from('hi') });
        assert.deepEqual(
          j.pending().map((p) => [p.op, p.path]),
          [['put', 'd/f']],
        );
        j.put(
          'd/g',
          { type: 'fifo', mode: 0o600, mtimeMs: 4, size: 0, uid: 7, gid: 8, xattrs: { 'user.a': Buffer.from('1') } },
          { dirs: ['d'], now: 5 },
        );
        assert.deepEqual([j.get('d/g')!.uid, j.get('d/g')!.xattrs!['user.a']!.toString(), j.get('d')!.mtimeMs], [7, '1', 5]);
        assert.deepEqual(
          j.pending().map((p) => [p.op, p.path]),
          [
            ['put', 'd/f'],
            ['put', 'd/g'],
            ['times', 'd'],
          ],
        );
      } finally {
        j.close();
      }
      const again = new Database(file);
      assert.equal(again.pragma('user_version', { simple: true }), SCHEMA_VERSION);
      again.close();
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
