/**
 * Hints speak the CLI's language in the CLI (flags: --force, -r, --allow-existing, --create,
 * --allow-missing, --non-empty) and the library's in the library (options), through one table
 * (src/cli/hints.ts) whose keys must stay the library's exact hints (issue 19).
 */
import '../helpers/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { CLI_HINTS } from '../../src/cli/hints.js';
import { Volume } from '../../src/volume/index.js';
import { isCairnError } from '../../src/errors.js';
import { CLI, cairn, unmountQuietly } from './harness.js';

/** Library wording that must never reach a CLI user. */
const LIBRARY_WORDS = new RegExp(
  ['force: true', 'recursive: true', 'allowExisting', 'createIfMissing', 'nonEmpty', 'remove recursively', 'with force']
    .concat(['use force', 'vol\\.history'])
    .join('|'),
);

async function jsFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await jsFiles(p)));
    else if (e.name.endsWith('.js')) out.push(p);
  }
  return out;
}

describe('hints (issue 19)', () => {
  let local = '';
  before(async () => {
    local = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-hints-'));
    await fs.mkdir(path.join(local, 'dir'));
    await fs.writeFile(path.join(local, 'dir/a.txt'), 'a\n');
    await fs.writeFile(path.join(local, 'f.txt'), 'f\n');
  });
  after(async () => {
    await fs.rm(local, { recursive: true, force: true });
  });

  it('every library hint the CLI rewrites is still raised verbatim by the library', async () => {
    const src = path.resolve(path.dirname(CLI), '..');
    const files = (await jsFiles(src)).filter((f) => !f.startsWith(path.dirname(CLI) + path.sep));
    const text = (await Promise.all(files.map((f) => fs.readFile(f, 'utf8')))).join('\n');
    for (const key of Object.keys(CLI_HINTS)) {
      assert.ok(text.includes(key), `no library error has the hint ${JSON.stringify(key)}`);
    }
  });

  it('the CLI names its flags', async () => {
    const expect = async (args: string[], code: string, flag: RegExp) => {
      const r = await cairn(args);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.err}`);
      assert.match(r.err, new RegExp(`^cairn: ${code}: `), args.join(' '));
      assert.match(r.err, flag, args.join(' '));
      assert.doesNotMatch(r.err, LIBRARY_WORDS, args.join(' '));
      assert.equal(r.err.trim().split('\n').length, 1, 'one line');
    };
    assert.equal((await cairn(['volume', 'create', 'hv'])).code, 0);
    await expect(['volume', 'create', 'hv'], 'ALREADY_EXISTS', /--allow-existing/);
    const again = await cairn(['volume', 'create', 'hv', '--allow-existing']);
    assert.deepEqual({ code: again.code, err: again.err }, { code: 0, err: 'volume hv exists already\n' });
    assert.equal((await cairn(['volume', 'put', 'hv', path.join(local, 'dir'), '/dir'])).code, 0);
    assert.equal((await cairn(['volume', 'put', 'hv', path.join(local, 'f.txt'), '/f.txt'])).code, 0);
    await expect(['volume', 'put', 'hv', path.join(local, 'f.txt'), '/f.txt'], 'ALREADY_EXISTS', /--force/);
    await expect(['volume', 'rm', 'hv', '/dir'], 'IS_A_DIRECTORY', /pass -r /);
    await expect(['volume', 'cp', 'hv', '/dir', '/dir2'], 'IS_A_DIRECTORY', /pass -r /);
    await expect(['volume', 'ls', 'nope'], 'NOT_FOUND', /cairn volume create nope/);
    await expect(['volume', 'delete', 'nope', '--yes'], 'NOT_FOUND', /--allow-missing/);
    await expect(['volume', 'rename', 'nope', 'other'], 'NOT_FOUND', /cairn volume list/);
    await expect(['run', '-v', 'nope:/x', '--', 'true'], 'NOT_FOUND', /--create/);
    const busy = path.join(local, 'dir');
    await expect(['mount', 'hv', busy], 'INVALID_ARGUMENT', /--non-empty/);
  });

  it('`cairn status`, which the not-a-mount hint names, lists the mounts; status DIR is a summary', async () => {
    const r = await cairn(['commit', os.tmpdir()]);
    assert.match(r.err, /cairn status/);
    const mnt = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-hints-mnt-')));
    const m = await cairn(['mount', 'hv', mnt, '--commit-interval', '0']);
    assert.equal(m.code, 0, m.err);
    try {
      const s = await cairn(['status']);
      assert.equal(s.code, 0, s.err);
      assert.ok(s.out.split('\n').includes(mnt), 'the mount point, bare when piped');
      // one mount: a short human layout, no dotted keys, no field twice
      await fs.writeFile(path.join(mnt, 'new.txt'), 'x');
      const one = await cairn(['status', mnt]);
      assert.equal(one.code, 0, one.err);
      assert.match(one.out, new RegExp(`^hv at ${mnt} \\(read-write\\)`));
      assert.match(one.out, /^ *snapshot +seq 2, 1 pending change\b/m);
      assert.match(one.out, /^ *open files +none$/m);
      assert.doesNotMatch(one.out, /session\.|chunks\.|: \[\]/);
      assert.ok(one.out.trim().split('\n').length <= 10, one.out);
      const full = JSON.parse((await cairn(['status', mnt, '--json'])).out);
      assert.equal(full.pending, 1);
      assert.equal(full.session.chunks.storeGets, 0, 'the figures stay in --json');
      const j = await cairn(['status', '--json']);
      assert.equal(j.code, 0);
      const mine = (JSON.parse(j.out) as { mountpoint: string }[]).find((x) => x.mountpoint === mnt);
      const { binding, ...rest } = mine as { binding?: unknown };
      assert.deepEqual(rest, { volume: 'hv', mountpoint: mnt, readOnly: false, seq: 2, pending: 1, openFiles: 0 });
      assert.match(String(binding), /^(native|fuse-native)$/);
    } finally {
      await unmountQuietly(mnt);
      await fs.rm(mnt, { recursive: true, force: true });
    }
  });

  it('the library keeps naming its options', async () => {
    const store = pathToFileURL(path.join(local, 'store')).href;
    const vol = await Volume.fromName('lib', { store, createIfMissing: true });
    try {
      await vol.batchUpload({}, (b) => b.putDirectory(path.join(local, 'dir'), '/dir'));
      const err = await vol.removeFile('/dir').then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(isCairnError(err, 'IS_A_DIRECTORY'));
      assert.match(String(err.context.hint), /recursive: true/);
      const missing = await Volume.fromName('nope', { store }).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(isCairnError(missing, 'NOT_FOUND'));
      assert.match(String(missing.context.hint), /createIfMissing/);
      assert.doesNotMatch(String(missing.context.hint), /cairn volume/);
    } finally {
      await vol.close();
    }
  });
});
