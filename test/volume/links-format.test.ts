/**
 * Format 4: an entry's inode id (`ino`, hard links) round-trips through records and checkpoints,
 * is validated strictly (16–64 lowercase hex, never on a directory, never in a format 3 object),
 * and a volume whose history was written in format 3 keeps reading and takes new links.
 */
import '../helpers/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hashChunk } from '../../src/chunks/hash.js';
import {
  type CommitRecord,
  type EntryData,
  FORMAT_VERSION,
  decodeCheckpoint,
  decodeRecord,
  encodeCheckpoint,
  encodeRecord,
  keys,
} from '../../src/format/index.js';
import { Volume } from '../../src/volume/index.js';
import { forEachBackend } from '../helpers/backends.js';

const KEY = keys.log('vo-x', 1);
const INO = '0123456789abcdef0123456789abcdef';

const record = (ops: CommitRecord['ops']): CommitRecord =>
  ({ version: FORMAT_VERSION, seq: 1, base: 0, time: 1, author: 'a', commitId: 'c', ops }) as CommitRecord;

/** A sealed record of format `version` with wire ops `ops`, at seq `seq`. */
function sealed(version: number, ops: object[], seq = 1): Buffer {
  const line = `${JSON.stringify({ version, seq, base: seq - 1, time: 1, author: 'a', commitId: `c${seq}`, ops })}\n`;
  return Buffer.from(`${line}{"blake3":"${hashChunk(Buffer.from(line))}"}`);
}

const FILE: EntryData = { type: 'file', mode: 0o644, mtimeMs: 5, size: 2, inline: Buffer.from('hi'), ino: INO };

describe('format 4: inode ids of entries', () => {
  it('round-trips through a record and a checkpoint', async () => {
    const ops: CommitRecord['ops'] = [
      { op: 'put', path: 'a', entry: FILE },
      { op: 'put', path: 'd/b', entry: FILE },
      { op: 'put', path: 's', entry: { type: 'symlink', mode: 0o777, mtimeMs: 1, size: 1, target: 'a', ino: 'f'.repeat(16) } },
    ];
    assert.deepEqual(decodeRecord(encodeRecord(record(ops)), KEY, 'vo-x'), record(ops));
    const cp = await decodeCheckpoint(
      await encodeCheckpoint(2, [
        ['a', FILE],
        ['d', { type: 'directory', mode: 0o755, mtimeMs: 1, size: 0 }],
        ['d/b', FILE],
      ]),
      keys.checkpoint('vo-x', 2),
      'vo-x',
    );
    assert.equal(cp.version, 4);
    assert.deepEqual(cp.entries[2], ['d/b', FILE]);
  });

  it('refuses to write a bad inode id, or one on a directory (INVALID_ARGUMENT)', () => {
    for (const ino of ['ABCDEF0123456789', 'abc', 'g'.repeat(16), 'a'.repeat(65)]) {
      assert.throws(
        () => encodeRecord(record([{ op: 'put', path: 'a', entry: { ...FILE, ino } }])),
        (e: any) => e.code === 'INVALID_ARGUMENT',
        ino,
      );
    }
    const dir: EntryData = { type: 'directory', mode: 0o755, mtimeMs: 1, size: 0, ino: INO };
    assert.throws(
      () => encodeRecord(record([{ op: 'put', path: 'a', entry: dir }])),
      (e: any) => e.code === 'INVALID_ARGUMENT',
    );
  });

  it('decodes strictly: a bad, misplaced or format 3 inode id is CORRUPT', () => {
    const w = { t: 'file', m: 420, mt: 1, s: 0 };
    const corrupt = (v: number, entry: object): void =>
      assert.throws(
        () => decodeRecord(sealed(v, [{ op: 'put', path: 'f', entry }]), KEY, 'vo-x'),
        (e: any) => e.code === 'CORRUPT',
        `${v} ${JSON.stringify(entry)}`,
      );
    corrupt(3, { ...w, ino: INO }); // format 4's field in a format 3 record
    for (const ino of [1, '', 'xyz', INO.toUpperCase(), `${INO}${INO}0`]) corrupt(4, { ...w, ino });
    corrupt(4, { t: 'directory', m: 493, mt: 1, s: 0, ino: INO });
    const op = decodeRecord(sealed(4, [{ op: 'put', path: 'f', entry: { ...w, ino: INO } }]), KEY, 'vo-x').ops[0]!;
    assert.ok(op.op === 'put' && op.entry.ino === INO);
    assert.throws(
      () => decodeRecord(sealed(5, [{ op: 'put', path: 'f', entry: w }]), KEY, 'vo-x'),
      (e: any) => e.code === 'UNSUPPORTED',
    );
  });
});

forEachBackend((b) =>
  describe(`a format 3 volume (${b.name})`, () => {
    before(() => b.start());
    after(() => b.stop());

    it('keeps reading (no links: every entry its own file) and takes new links in format 4', async () => {
      const store = await b.open();
      const vol = await Volume.fromName('v3links', { createIfMissing: true, store });
      const { id } = await vol.info();
      const file = (s: string) => ({ t: 'file', m: 420, mt: 1000, s: s.length, i: Buffer.from(s).toString('base64'), u: 0, g: 0 });
      await store.put(
        keys.log(id, 1),
        sealed(3, [
          { op: 'put', path: 'a', entry: file('same') },
          { op: 'put', path: 'b', entry: file('same') },
          { op: 'times', path: '', mt: 1000, ct: 1000 },
        ]),
        { ifAbsent: true },
      );
      const s = await vol.session();
      assert.deepEqual([(await s.stat('/a')).nlink, (await s.stat('/a')).linkId], [1, undefined]);
      assert.equal((await s.read('/b', 0, 10)).toString(), 'same');
      await s.write('/a', 0, Buffer.from('S'));
      assert.equal((await s.read('/b', 0, 10)).toString(), 'same', 'equal content is not a link');
      await s.link('/a', '/c');
      assert.equal((await s.commit()).seq, 2);
      await s.close();
      const again = await vol.session();
      assert.equal((await again.read('/c', 0, 10)).toString(), 'Same');
      assert.deepEqual([(await again.stat('/a')).nlink, (await again.stat('/b')).nlink], [2, 1]);
      await again.close();
      const old = await vol.session({ seq: 1 });
      assert.equal((await old.read('/a', 0, 10)).toString(), 'same');
      await old.close();
      await vol.close();
    });
  }),
);
