/**
 * Format 3: the POSIX metadata of entries (owner, group, full mode, rdev, atime/ctime, extended
 * attributes) round-trips through records and checkpoints, is bounded, and is validated strictly;
 * format 2 objects keep reading and may not carry the new fields.
 */
import '../helpers/env.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { hashChunk } from '../../src/chunks/hash.js';
import {
  type CommitRecord,
  type EntryData,
  FORMAT_VERSION,
  XATTR_LIMITS,
  decodeCheckpoint,
  decodeRecord,
  encodeCheckpoint,
  encodeRecord,
  keys,
} from '../../src/format/index.js';

const KEY = keys.log('vo-x', 1);

const record = (entry: object, path = 'f'): CommitRecord =>
  ({ version: FORMAT_VERSION, seq: 1, base: 0, time: 1, author: 'a', commitId: 'c', ops: [{ op: 'put', path, entry }] }) as CommitRecord;

/** A sealed record of format `version` holding one put of wire entry `w`. */
function sealed(version: number, w: object): Buffer {
  const line = `${JSON.stringify({ version, seq: 1, base: 0, time: 1, author: 'a', commitId: 'c', ops: [{ op: 'put', path: 'f', entry: w }] })}\n`;
  return Buffer.from(`${line}{"blake3":"${hashChunk(Buffer.from(line))}"}`);
}

const FULL: EntryData = {
  type: 'file',
  mode: 0o6755,
  mtimeMs: 1700000000123,
  atimeMs: 1600000000456,
  ctimeMs: 1700000000999,
  uid: 65534,
  gid: 100,
  size: 3,
  inline: Buffer.from('abc'),
  xattrs: { 'user.a': Buffer.from('1'), 'trusted.b': Buffer.alloc(0), 'security.capability': Buffer.from([0, 1, 2, 255]) },
};

describe('format 3: POSIX metadata of entries', () => {
  it('is in the version written (format 4 adds inode ids: links-format.test.ts)', () => assert.equal(FORMAT_VERSION, 4));

  it('round-trips owner, group, setuid/setgid/sticky mode, times, xattrs and devices through a record', () => {
    const dev: EntryData = { type: 'chardev', mode: 0o620, mtimeMs: 5, atimeMs: 5, ctimeMs: 5, uid: 0, gid: 5, size: 0, rdev: 0x0103 };
    const fifo: EntryData = { type: 'fifo', mode: 0o1777, mtimeMs: 5, size: 0, uid: 1, gid: 1 };
    for (const e of [FULL, dev, fifo, { type: 'blockdev', mode: 0o660, mtimeMs: 1, size: 0, rdev: 2 ** 32 - 1 } as EntryData]) {
      assert.deepEqual(decodeRecord(encodeRecord(record(e)), KEY, 'vo-x'), record(e));
    }
  });

  it('round-trips them through a checkpoint', async () => {
    const body = await encodeCheckpoint(4, [
      ['d', { type: 'directory', mode: 0o1777, mtimeMs: 1, size: 0, uid: 7, gid: 8 }],
      ['d/f', FULL],
    ]);
    const cp = await decodeCheckpoint(body, keys.checkpoint('vo-x', 4), 'vo-x');
    assert.equal(cp.version, FORMAT_VERSION);
    assert.deepEqual(cp.entries[1], ['d/f', FULL]);
    assert.equal(cp.entries[0]![1].uid, 7);
  });

  it('refuses to write what it would not read (INVALID_ARGUMENT), and bounds xattrs (TOO_LARGE)', () => {
    const big = Buffer.alloc(XATTR_LIMITS.value + 1);
    const cases: [object, string][] = [
      [{ ...FULL, uid: -1 }, 'INVALID_ARGUMENT'],
      [{ ...FULL, gid: 2 ** 32 }, 'INVALID_ARGUMENT'],
      [{ ...FULL, mode: 0o10000 }, 'INVALID_ARGUMENT'],
      [{ ...FULL, atimeMs: NaN }, 'INVALID_ARGUMENT'],
      [{ ...FULL, rdev: 1 }, 'INVALID_ARGUMENT'], // rdev only on devices
      [{ type: 'chardev', mode: 0o600, mtimeMs: 1, size: 0 }, 'INVALID_ARGUMENT'], // a device needs its rdev
      [{ ...FULL, xattrs: { 'system.posix_acl_access': Buffer.from('x') } }, 'INVALID_ARGUMENT'],
      [{ ...FULL, xattrs: { 'user.': Buffer.from('x') } }, 'INVALID_ARGUMENT'],
      [{ ...FULL, xattrs: { [`user.${'n'.repeat(251)}`]: Buffer.from('x') } }, 'TOO_LARGE'],
      [{ ...FULL, xattrs: { 'user.a': big } }, 'TOO_LARGE'],
      [{ ...FULL, xattrs: Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`user.${i}`, Buffer.alloc(60 << 10)])) }, 'TOO_LARGE'],
    ];
    for (const [bad, code] of cases) {
      assert.throws(
        () => encodeRecord(record(bad)),
        (e: any) => e.code === code,
        JSON.stringify(bad).slice(0, 200),
      );
    }
    // At the limits exactly: fine.
    const edge = { ...FULL, xattrs: { [`user.${'n'.repeat(250)}`]: Buffer.alloc(XATTR_LIMITS.value) } };
    assert.equal(decodeRecord(encodeRecord(record(edge)), KEY, 'vo-x').ops.length, 1);
  });

  it('decodes strictly: bad or misplaced new fields are CORRUPT', () => {
    const w = { t: 'file', m: 420, mt: 1, s: 0 };
    const corrupt = (v: number, entry: object): void =>
      assert.throws(
        () => decodeRecord(sealed(v, entry), KEY, 'vo-x'),
        (e: any) => e.code === 'CORRUPT',
        `${v} ${JSON.stringify(entry)}`,
      );
    // The new fields are format 3's: a format 2 record carrying one is damaged.
    for (const extra of [{ u: 0 }, { g: 0 }, { at: 1 }, { ct: 1 }, { x: {} }]) corrupt(2, { ...w, ...extra });
    corrupt(2, { t: 'chardev', m: 420, mt: 1, s: 0, rd: 1 });
    // Format 3: each field in its range and place.
    for (const bad of [
      { u: -1 },
      { u: 1.5 },
      { g: 2 ** 32 },
      { u: '0' },
      { at: 'x' },
      { ct: 9e15 },
      { rd: 1 },
      { m: 0o10000 },
      { x: [] },
      { x: { 'user.a': 'not base64!' } },
      { x: { 'other.a': '' } },
      { x: { 'user.a\u0000': '' } },
    ])
      corrupt(3, { ...w, ...bad });
    corrupt(3, { t: 'blockdev', m: 420, mt: 1, s: 0 });
    corrupt(3, { t: 'chardev', m: 420, mt: 1, s: 1, rd: 1 });
    corrupt(3, { t: 'pipe', m: 420, mt: 1, s: 0 });
    const ok = decodeRecord(sealed(3, { ...w, u: 5, g: 6, at: 2, ct: 3, x: { 'user.k': 'dg==' } }), KEY, 'vo-x');
    const op = ok.ops[0]!;
    assert.ok(op.op === 'put');
    assert.deepEqual(op.entry, {
      type: 'file',
      mode: 420,
      mtimeMs: 1,
      size: 0,
      uid: 5,
      gid: 6,
      atimeMs: 2,
      ctimeMs: 3,
      xattrs: { 'user.k': Buffer.from('v') },
    });
  });

  it('a format 2 record and checkpoint still read, without owners (the reader supplies them)', async () => {
    const r = decodeRecord(sealed(2, { t: 'file', m: 0o644, mt: 1, s: 0 }), KEY, 'vo-x');
    assert.equal(r.version, 2);
    const op = r.ops[0]!;
    assert.ok(op.op === 'put');
    assert.deepEqual(op.entry, { type: 'file', mode: 0o644, mtimeMs: 1, size: 0 });
    const text = `{"version":2,"seq":3}\n["a",{"t":"file","m":420,"mt":1,"s":0}]\n`;
    const cp = await decodeCheckpoint(
      gzipSync(Buffer.from(`${text}{"blake3":"${hashChunk(Buffer.from(text))}"}`)),
      keys.checkpoint('vo-x', 3),
      'vo-x',
    );
    assert.deepEqual(cp.entries, [['a', { type: 'file', mode: 0o644, mtimeMs: 1, size: 0 }]]);
    const bad = `{"version":2,"seq":3}\n["a",{"t":"file","m":420,"mt":1,"s":0,"u":0}]\n`;
    await assert.rejects(
      decodeCheckpoint(gzipSync(Buffer.from(`${bad}{"blake3":"${hashChunk(Buffer.from(bad))}"}`)), keys.checkpoint('vo-x', 3), 'vo-x'),
      (e: any) => e.code === 'CORRUPT',
    );
  });
});
