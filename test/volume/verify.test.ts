/**
 * `vol.verify()` and `cairn volume verify`: a clean volume is ok (exit 0); each kind of damaged
 * object (name, meta, record, checkpoint, pack bytes, missing pack, a hole in the log) is named in
 * the report (kind, key, code) and makes the CLI exit 1; orphans are listed but are not problems.
 */
import '../helpers/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { Volume } from '../../src/index.js';
import type { VerifyReport } from '../../src/index.js';
import type { ObjectStore } from '../../src/store/types.js';
import { keys } from '../../src/format/index.js';
import { readPackTrailer } from '../../src/chunks/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { flip, writeCheckpoint } from '../helpers/damage.js';

// Outboards are opt-in (config.ts packBlockBytes): the damaged-outboard case needs packs that carry them.
process.env.CAIRN_PACK_OUTBOARDS = 'on';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');

function cairn(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { maxBuffer: 1 << 26, env: process.env }, (error, stdout, stderr) => {
      const status = (error as { code?: unknown } | null)?.code;
      const code = error ? (typeof status === 'number' ? status : 1) : 0;
      resolve({ code, out: stdout, err: stderr });
    });
  });
}

/** The problems of a report as `kind code key`, sorted. */
function named(r: VerifyReport): string[] {
  return r.problems.map((p) => `${p.kind} ${p.code} ${p.key}`).sort();
}

forEachBackend((b) =>
  describe(`verify (${b.name})`, () => {
    let store: ObjectStore;
    let url: string;
    let vol: Volume;
    let packKey: string;
    const name = 'ver';
    const big = crypto.randomBytes(300_000);

    before(async () => {
      await b.start();
      url = b.url();
      const { openStore } = await import('../../src/store/open.js');
      store = await openStore(url);
      vol = await Volume.fromName(name, { store, createIfMissing: true });
      const s = await vol.session();
      await s.mkdir('d', 0o755);
      for (let i = 0; i < 3; i++) {
        await s.create(`d/small${i}`, 0o644);
        await s.write(`d/small${i}`, 0, Buffer.from(`small ${i}`));
        await s.commit(); // seqs 1-3
      }
      await s.create('big.bin', 0o644);
      await s.write('big.bin', 0, big);
      await s.commit(); // seq 4
      await writeCheckpoint(store, vol.id, 4, s);
      await s.unlink('d/small0');
      await s.commit(); // seq 5
      await s.close();
      const packs = await store.list(keys.packPrefix(vol.id));
      assert.equal(packs.length, 1);
      packKey = packs[0]!.key;
    });

    after(async () => {
      await vol?.close();
      await store?.close();
      await b.stop();
    });

    it('a clean volume is ok, with and without data, and so says the CLI (exit 0)', async () => {
      const r = await vol.verify();
      assert.deepEqual(named(r), []);
      assert.equal(r.ok, true);
      assert.equal(r.id, vol.id);
      assert.deepEqual(r.orphans, []);
      const checked = { names: 1, metas: 1, records: 5, checkpoints: 1, entries: 11, packs: 1 };
      assert.deepEqual(r.checked, { ...checked, chunks: 0, chunkBytes: 0 });
      assert.deepEqual(r.formats, { 4: 8 });
      const d = await vol.verify({ data: true });
      assert.equal(d.ok, true);
      assert.ok(d.checked.chunks >= 1);
      assert.equal(d.checked.chunkBytes, big.length);
      const cli = await cairn(['--store', url, 'volume', 'verify', name, '--data']);
      assert.equal(cli.code, 0, cli.err);
      assert.match(cli.out, /5 records, 1 checkpoint, 1 pack, \d+ chunks? \(293 KiB\)/);
      assert.match(cli.out, /^ok$/m);
    });

    it('names every damaged object, by kind and key; the CLI exits 1 listing each', async () => {
      type Damage = { kind: string; key: string; code: string; data?: boolean; harm(): Promise<Buffer | undefined> };
      const cp = keys.checkpoint(vol.id, 4);
      const damage: Damage[] = [
        { kind: 'name', key: keys.name(name), code: 'CORRUPT', harm: () => flipOn(keys.name(name), 60) },
        { kind: 'meta', key: keys.meta(vol.id), code: 'CORRUPT', harm: () => flipOn(keys.meta(vol.id), 30) },
        { kind: 'record', key: keys.log(vol.id, 2), code: 'CORRUPT', harm: () => flipOn(keys.log(vol.id, 2), 50) },
        { kind: 'checkpoint', key: cp, code: 'CORRUPT', harm: () => flipOn(cp, 40) },
        { kind: 'chunk', key: packKey, code: 'CORRUPT', data: true, harm: () => flipOn(packKey, 1000) },
        { kind: 'pack', key: packKey, code: 'NOT_FOUND', harm: () => remove(packKey) },
        { kind: 'pack', key: packKey, code: 'CORRUPT', data: true, harm: async () => flipOn(packKey, await outboardByte(packKey)) },
        { kind: 'record', key: keys.log(vol.id, 3), code: 'CORRUPT', harm: () => remove(keys.log(vol.id, 3)) },
      ];
      for (const d of damage) {
        const pristine = await d.harm();
        const key = d.key;
        try {
          const r = await vol.verify({ data: !!d.data });
          assert.equal(r.ok, false, `${d.kind}: not noticed`);
          assert.deepEqual(named(r), [`${d.kind} ${d.code} ${key}`], `${d.kind}: ${JSON.stringify(r.problems)}`);
          assert.ok(r.problems[0]!.problem.length > 10);
          // The CLI, by name: exit 1, the key on stdout, a one-line CORRUPT on stderr (for a damaged
          // name object too: it finds the volume through its meta object and goes on).
          const cli = await cairn(['--store', url, 'volume', 'verify', name, ...(d.data ? ['--data'] : [])]);
          assert.equal(cli.code, 1, `${d.kind}: ${cli.out} ${cli.err}`);
          assert.ok(cli.out.includes(key), `${d.kind}: ${cli.out}`);
          assert.match(cli.err, /^cairn: CORRUPT: volume ver has 1 problem/);
          const json = await cairn(['--store', url, 'volume', 'verify', name, '--json', ...(d.data ? ['--data'] : [])]);
          assert.equal(json.code, 1);
          const report = JSON.parse(json.out) as VerifyReport;
          assert.equal(report.id, vol.id);
          assert.deepEqual(named(report), [`${d.kind} ${d.code} ${key}`]);
        } finally {
          if (pristine) await store.put(key, pristine);
        }
      }
      assert.equal((await vol.verify({ data: true })).ok, true);
    });

    it('a name object whose id is damaged is reported, and verify stops there (the id is unknown)', async () => {
      const key = keys.name(name);
      const pristine = await store.get(key);
      const at = pristine.indexOf('"id":"vo-') + 7; // the "o" of "vo-": the id read from it has no meta
      await store.put(key, flip(pristine, at));
      try {
        const r = await Volume.objects.verify(name, { store });
        assert.equal(r.id, '');
        assert.deepEqual(named(r), [`name CORRUPT ${key}`]);
        const cli = await cairn(['--store', url, 'volume', 'verify', name]);
        assert.equal(cli.code, 1);
        assert.match(cli.out, /id unknown/);
        // A handle knows its id, so vol.verify() goes on and checks everything else.
        const h = await vol.verify();
        assert.deepEqual(named(h), [`name CORRUPT ${key}`]);
        assert.equal(h.checked.records, 5);
      } finally {
        await store.put(key, pristine);
      }
    });

    it('lists orphans (an unreferenced pack, an unknown key) without failing', async () => {
      const orphanPack = keys.packPrefix(vol.id) + crypto.randomBytes(16).toString('hex');
      const junk = `${keys.volume(vol.id)}junk/x`;
      await store.put(orphanPack, Buffer.from('not a pack'));
      await store.put(junk, Buffer.from('?'));
      try {
        const r = await vol.verify();
        assert.equal(r.ok, true);
        const orphans = r.orphans.map((o) => `${o.kind} ${o.key} ${o.size}`).sort();
        assert.deepEqual(orphans, [`pack ${orphanPack} 10`, `unknown ${junk} 1`].sort());
        const cli = await cairn(['--store', url, 'volume', 'verify', name]);
        assert.equal(cli.code, 0);
        assert.ok(cli.out.includes(orphanPack) && cli.out.includes(junk), cli.out);
      } finally {
        await store.delete(orphanPack);
        await store.delete(junk);
      }
    });

    it('a format 1 volume verifies ok (formats say so); a missing volume is NOT_FOUND (exit 1)', async () => {
      const file = new URL('../../../test/fixtures/format-v1.json', import.meta.url);
      const fixture = JSON.parse(readFileSync(file, 'utf8')) as { volume: string; objects: Record<string, string> };
      for (const [key, body] of Object.entries(fixture.objects)) await store.put(key, Buffer.from(body, 'base64'));
      const r = await Volume.objects.verify(fixture.volume, { store, data: true });
      assert.deepEqual(named(r), []);
      assert.deepEqual(r.formats, { 1: 5 });
      assert.equal(r.checked.chunkBytes, 6000);
      await assert.rejects(Volume.objects.verify('nope', { store }), (e: any) => e.code === 'NOT_FOUND');
      const cli = await cairn(['--store', url, 'volume', 'verify', 'nope']);
      assert.equal(cli.code, 1);
      assert.match(cli.err, /NOT_FOUND/);
    });

    async function flipOn(key: string, i: number): Promise<Buffer> {
      const pristine = await store.get(key);
      await store.put(key, flip(pristine, i));
      return pristine;
    }

    /** The offset in a pack of a byte of the first non-empty chunk outboard in its trailer. */
    async function outboardByte(key: string): Promise<number> {
      const t = await readPackTrailer(store, key);
      const size = (await store.head(key))!.size;
      let at = size - 16 - t.outboards.reduce((n, o) => n + o.length, 0);
      const i = t.outboards.findIndex((o) => o.length > 0);
      assert.ok(i >= 0, 'the pack has a chunk of more than one block');
      for (const o of t.outboards.slice(0, i)) at += o.length;
      return at + 3;
    }

    async function remove(key: string): Promise<Buffer> {
      const pristine = await store.get(key);
      await store.delete(key);
      return pristine;
    }
  }),
);
