/**
 * Damage to the volume layer's objects on the store (commit records, checkpoints, name and meta
 * objects) is CORRUPT naming the object and the volume: never wrong bytes, a file under another
 * name, a TypeError or UNSUPPORTED. Format 1 objects (no checksum), as written by the cairn of
 * test/fixtures/format-v1.json, still read, and their damage is caught by strict validation.
 */
import '../helpers/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';
import { Volume } from '../../src/index.js';
import type { ObjectStore } from '../../src/store/types.js';
import { type CommitRecord, FORMAT_VERSION, decodeRecord, encodeRecord, keys } from '../../src/format/index.js';
import { hashChunk } from '../../src/chunks/hash.js';
import { forEachBackend } from '../helpers/backends.js';
import { flip, writeCheckpoint } from '../helpers/damage.js';

const FIXTURE = JSON.parse(readFileSync(new URL('../../../test/fixtures/format-v1.json', import.meta.url), 'utf8')) as {
  volume: string;
  id: string;
  objects: Record<string, string>;
};

const HELLO = 'hello, integrity';
/** 6000 bytes: more than the inline limit, so stored in a pack (the fixture's big.bin). */
const BIG = Buffer.from(Uint8Array.from({ length: 6000 }, (_, i) => (i * 7 + 3) & 0xff));

/**
 * Everything a user can read of a volume through a fresh handle (a new session, so the store's
 * objects are read again): path -> 'dir', the file's bytes (hex), or '-> target'.
 */
async function readAll(store: ObjectStore, name: string): Promise<Record<string, string>> {
  const vol = await Volume.fromName(name, { store });
  try {
    const out: Record<string, string> = {};
    const s = await vol.session({ readOnly: true });
    try {
      for (const e of await vol.listdir('/', { recursive: true })) {
        if (e.type === 'directory') out[e.path] = 'dir';
        else if (e.type === 'symlink') out[e.path] = `-> ${await s.readlink(e.path)}`;
        else {
          const parts: Buffer[] = [];
          for await (const b of vol.readFile(e.path)) parts.push(b);
          out[e.path] = Buffer.concat(parts).toString('hex');
          assert.equal(Buffer.concat(parts).length, e.size);
        }
      }
    } finally {
      await s.close();
    }
    return out;
  } finally {
    await vol.close();
  }
}

/** `p` fails with CORRUPT naming `key` (and a volume); anything else (data, another error) fails the test. */
async function expectCorrupt(p: Promise<unknown>, key: string, what: string): Promise<void> {
  let outcome: unknown;
  try {
    outcome = await p;
  } catch (err) {
    const e = err as { code?: string; context?: { key?: string; volume?: string }; message?: string };
    assert.equal(e.code, 'CORRUPT', `${what}: expected CORRUPT, got ${e.code ?? ''} ${String(err)}`);
    assert.equal(e.context?.key, key, `${what}: the error names ${e.context?.key}`);
    assert.ok(e.context?.volume, `${what}: the error names no volume`);
    return;
  }
  assert.fail(`${what}: expected CORRUPT, the read returned ${JSON.stringify(outcome).slice(0, 300)}`);
}

/** Byte positions to damage: the ones named (first byte of a match, plus `plus`), and a spread over the body. */
function positions(body: Buffer, targets: [string, number][], spread = 24): number[] {
  const out = new Set<number>([0, 1, body.length - 1, body.length - 2]);
  for (const [s, plus] of targets) {
    const at = body.indexOf(s);
    assert.ok(at >= 0, `${s} not in the object`);
    out.add(at + plus);
  }
  for (let k = 1; k < spread; k++) out.add(Math.floor((body.length * k) / spread));
  return [...out].sort((a, b) => a - b);
}

/** The bytes around position `i`, for messages. */
function around(b: Buffer, i: number): string {
  return JSON.stringify(b.toString('latin1', Math.max(0, i - 3), i + 4));
}

/** Targets inside a record or checkpoint text: inline data, a path, a key name, a size digit, the version. */
const TARGETS: [string, number][] = [
  [Buffer.from(HELLO).toString('base64').slice(0, 8), 3], // inside inline data
  ['"docs/hello.txt"', 6], // inside a path
  ['"s":6000', 1], // a key name
  ['"s":6000', 4], // a size digit: 6000 -> 7000
  ['"version":', 10], // the version
  ['"l":"docs/hello.txt"', 8], // a symlink target
  ['"c":[["', 8], // a chunk hash
];

forEachBackend((b) =>
  describe(`format: damaged objects on the store are CORRUPT (${b.name})`, () => {
    let store: ObjectStore;
    let id: string;
    let good: Record<string, string>;
    const name = 'rec';

    before(async () => {
      await b.start();
      store = await b.open();
      const vol = await Volume.fromName(name, { store, createIfMissing: true });
      id = vol.id;
      const s = await vol.session();
      await s.mkdir('docs', 0o755);
      await s.create('docs/hello.txt', 0o644);
      await s.write('docs/hello.txt', 0, Buffer.from(HELLO));
      await s.create('big.bin', 0o600);
      await s.write('big.bin', 0, BIG);
      await s.symlink('docs/hello.txt', 'link');
      await s.commit();
      await s.close();
      await vol.close();
      good = await readAll(store, name);
      assert.deepEqual(Object.keys(good).sort(), ['big.bin', 'docs', 'docs/hello.txt', 'link']);
      assert.equal(good['docs/hello.txt'], Buffer.from(HELLO).toString('hex'));
      assert.equal(good['big.bin'], BIG.toString('hex'));
    });

    after(async () => {
      await store?.close();
      await b.stop();
    });

    it('a record with any byte changed (inline data, a path, a key, a size digit, version…) is CORRUPT', async () => {
      const key = keys.log(id, 1);
      const pristine = await store.get(key);
      assert.match(pristine.toString(), /\n\{"blake3":"[0-9a-f]{64}"\}$/, 'records are written in format 2');
      try {
        for (const i of positions(pristine, [...TARGETS, ['{"blake3":"', 12]])) {
          await store.put(key, flip(pristine, i));
          await expectCorrupt(readAll(store, name), key, `record byte ${i} (${around(pristine, i)})`);
        }
      } finally {
        await store.put(key, pristine);
      }
      assert.deepEqual(await readAll(store, name), good);
    });

    it('a checkpoint with a byte changed in its gzip stream, or in its text (re-gzipped), is CORRUPT', async () => {
      const vol = await Volume.fromName(name, { store });
      const s = await vol.session({ readOnly: true });
      await writeCheckpoint(store, id, 1, s);
      await s.close();
      await vol.close();
      const key = keys.checkpoint(id, 1);
      const pristine = await store.get(key);
      // Sessions now start from the checkpoint alone: damage to the record no longer matters to them.
      const record = await store.get(keys.log(id, 1));
      await store.delete(keys.log(id, 1));
      try {
        assert.deepEqual(await readAll(store, name), good);
        // The gzip header's bytes 3-9 (flags, mtime, extra flags, OS) carry no data; everything else does.
        for (const i of [0, 1, 2, ...positions(pristine, [], 16).filter((p) => p >= 10)]) {
          await store.put(key, flip(pristine, i));
          await expectCorrupt(readAll(store, name), key, `checkpoint (gzip) byte ${i}`);
        }
        const text = gunzipSync(pristine);
        assert.match(text.toString(), /\n\{"blake3":"[0-9a-f]{64}"\}$/);
        for (const i of positions(text, TARGETS)) {
          await store.put(key, gzipSync(flip(text, i)));
          await expectCorrupt(readAll(store, name), key, `checkpoint text byte ${i} (${around(text, i)})`);
        }
      } finally {
        await store.put(keys.log(id, 1), record);
        await store.put(key, pristine);
      }
      assert.deepEqual(await readAll(store, name), good);
      await store.delete(key);
    });

    it('a name or meta object with any byte changed is CORRUPT naming it (no other volume, no NOT_FOUND)', async () => {
      for (const key of [keys.name(name), keys.meta(id)]) {
        const pristine = await store.get(key);
        assert.match(pristine.toString(), /\n\{"blake3":"[0-9a-f]{64}"\}$/);
        try {
          for (const i of positions(
            pristine,
            [
              ['"id":"', 8],
              ['"version":', 10],
              ['"name":"', 9],
            ],
            12,
          )) {
            await store.put(key, flip(pristine, i));
            await expectCorrupt(readAll(store, name), key, `${key} byte ${i}`);
          }
        } finally {
          await store.put(key, pristine);
        }
      }
      assert.deepEqual(await readAll(store, name), good);
    });

    it('a well-formed record of a newer format is UNSUPPORTED; without its checksum, CORRUPT', async () => {
      const key = keys.log(id, 1);
      const pristine = await store.get(key);
      const line = pristine
        .subarray(0, pristine.lastIndexOf(0x0a) + 1)
        .toString()
        .replace(`"version":${FORMAT_VERSION}`, `"version":${FORMAT_VERSION + 1}`);
      try {
        await store.put(key, Buffer.from(`${line}{"blake3":"${hashChunk(Buffer.from(line))}"}`));
        await assert.rejects(readAll(store, name), (e: any) => e.code === 'UNSUPPORTED' && e.context.key === key);
        await store.put(key, Buffer.from(`${line}{"blake3":"${hashChunk(pristine)}"}`));
        await expectCorrupt(readAll(store, name), key, 'a newer version with a wrong checksum');
        await store.put(key, Buffer.from(line.trimEnd()));
        await expectCorrupt(readAll(store, name), key, 'a newer version without a checksum');
      } finally {
        await store.put(key, pristine);
      }
    });

    it('a record missing from the middle of the log is CORRUPT naming it, not skipped', async () => {
      const vol = await Volume.fromName(name, { store });
      const s = await vol.session();
      for (const n of [2, 3]) {
        await s.create(`n${n}`, 0o644);
        await s.commit();
      }
      await s.close();
      await vol.close();
      const key = keys.log(id, 2);
      const body = await store.get(key);
      await store.delete(key);
      try {
        await expectCorrupt(readAll(store, name), key, 'missing record');
      } finally {
        await store.put(key, body);
      }
      assert.equal(Object.keys(await readAll(store, name)).length, 6);
    });
  }),
);

forEachBackend((b) =>
  describe(`format 1 objects still read, and their damage is caught by validation (${b.name})`, () => {
    let store: ObjectStore;
    const name = FIXTURE.volume;
    const { id } = FIXTURE;
    const v1 = (key: string) => Buffer.from(FIXTURE.objects[key]!, 'base64');

    before(async () => {
      await b.start();
      store = await b.open();
      for (const key of Object.keys(FIXTURE.objects)) await store.put(key, v1(key));
    });

    after(async () => {
      await store?.close();
      await b.stop();
    });

    const expected = {
      'big.bin': BIG.toString('hex'),
      docs: 'dir',
      'docs/hello.txt': Buffer.from('hello, format 1\n').toString('hex'),
      link: '-> docs/hello.txt',
    };

    it('reads a format 1 volume: from its checkpoint, and from its records alone; history too', async () => {
      assert.deepEqual(await readAll(store, name), expected);
      const cp = keys.checkpoint(id, 2);
      await store.delete(cp);
      try {
        assert.deepEqual(await readAll(store, name), expected);
        const vol = await Volume.fromName(name, { store });
        const history = (await vol.history()).map((h) => [h.seq, h.author, h.paths.length]);
        assert.deepEqual(history, [
          [1, 'fixture@host', 5],
          [2, 'fixture@host', 1],
        ]);
        await vol.close();
      } finally {
        await store.put(cp, v1(cp));
      }
    });

    it('a format 1 record damaged where validation can tell (sizes, keys, version, paths…) is CORRUPT', async () => {
      const key = keys.log(id, 1);
      const cp = keys.checkpoint(id, 2);
      const text = v1(key).toString();
      const damage: [string, string][] = [
        ['"s":16,', '"s":17,'], // inline size
        ['"s":6000', '"s":8000'], // chunked size: 8000 bytes said, 6000 in the chunks
        ['"path":"docs"', '"patH":"docs"'], // a key name (a TypeError before)
        ['"version":1', '"version":3'], // no checksum: not a newer format but damage
        ['"path":"link"', '"path":"/link"'], // not a normalised path
        ['"path":"big.bin"', '"path":"big/../x"'],
        ['"c":[["b390', '"c":[["B390'], // a hash that is not lowercase hex
        ['",0,6000]]', '",-1,6000]]'], // a negative offset
        ['"t":"symlink"', '"t":"symlinc"'],
        ['"m":384', '"m":38400000'],
        ['"seq":1,', '"seq":2,'], // not the seq of its key
        ['"i":"aGVsbG8sIGZvcm1hdCAxCg=="', '"i":"aGVsbG8sIGZvcm1hdCAxCg=!"'],
      ];
      const cpBody = v1(cp);
      await store.delete(cp); // the records are read only above the checkpoint
      try {
        for (const [from, to] of damage) {
          assert.ok(text.includes(from), from);
          await store.put(key, Buffer.from(text.replace(from, to)));
          await expectCorrupt(readAll(store, name), key, `${from} -> ${to}`);
        }
      } finally {
        await store.put(key, v1(key));
        await store.put(cp, cpBody);
      }
    });

    it('a format 1 checkpoint or name object damaged where validation can tell is CORRUPT', async () => {
      const cp = keys.checkpoint(id, 2);
      const text = gunzipSync(v1(cp)).toString();
      for (const [from, to] of [
        ['{"version":1,"seq":2}', '{"version":1,"seq":3}'],
        ['{"version":1,"seq":2}', '{"version":4,"seq":2}'],
        ['"s":6000', '"s":6001'],
        ['["docs",{"t":"directory"', '["dogs",{"t":"directory"'], // docs/hello.txt loses its parent
        ['"l":"docs/hello.txt"', '"k":"docs/hello.txt"'],
      ]) {
        await store.put(cp, gzipSync(Buffer.from(text.replace(from!, to!))));
        await expectCorrupt(readAll(store, name), cp, `${from} -> ${to}`);
      }
      await store.put(cp, v1(cp));
      const nameKey = keys.name(name);
      for (const [from, to] of [
        ['"id":"vo-', '"id":"vo/'],
        ['"name":"v1vol"', '"name":"v2vol"'],
        ['"version":1', '"version":2'],
        ['"createdAt":', '"createdAd":'],
      ]) {
        await store.put(nameKey, Buffer.from(v1(nameKey).toString().replace(from!, to!)));
        await expectCorrupt(readAll(store, name), nameKey, `${from} -> ${to}`);
      }
      await store.put(nameKey, v1(nameKey));
      assert.deepEqual(await readAll(store, name), expected);
    });
  }),
);

describe('format: encoding', () => {
  const record = (entry: object): CommitRecord =>
    ({
      version: FORMAT_VERSION,
      seq: 1,
      base: 0,
      time: 1,
      author: 'a',
      commitId: 'c',
      ops: [{ op: 'put', path: 'f', entry }],
    }) as CommitRecord;

  it('round-trips a record, and refuses to write an entry that would not read back (INVALID_ARGUMENT)', () => {
    const r = record({ type: 'file', mode: 0o644, mtimeMs: 1.5, size: 3, inline: Buffer.from('abc') });
    const back = decodeRecord(encodeRecord(r), keys.log('vo-x', 1), 'vo-x');
    assert.deepEqual(back, r);
    for (const bad of [
      { type: 'file', mode: 0o644, mtimeMs: 1, size: 4, inline: Buffer.from('abc') },
      { type: 'file', mode: 0o644, mtimeMs: 1, size: 2 ** 53, chunks: [] },
      { type: 'file', mode: 0o644, mtimeMs: NaN, size: 0 },
      { type: 'file', mode: -1, mtimeMs: 1, size: 0 },
      { type: 'symlink', mode: 0o777, mtimeMs: 1, size: 1, target: 'ab' },
      { type: 'file', mode: 0o644, mtimeMs: 1, size: 1, chunks: [{ hash: 'x', pack: 'p', offset: 0, length: 1 }] },
    ]) {
      assert.throws(
        () => encodeRecord(record(bad)),
        (e: any) => e.code === 'INVALID_ARGUMENT',
        JSON.stringify(bad),
      );
    }
  });
});
