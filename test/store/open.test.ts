/**
 * openStore: URL dispatch, the default URL from the environment, and malformed URLs refused with
 * INVALID_ARGUMENT (and a hint) before anything is created.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { openStore, FileStore, MemoryStore, S3Store, checkKey } from '../../src/store/index.js';
import { isCairnError } from '../../src/errors.js';

describe('openStore', () => {
  let tmp: string;
  let cwd: string;
  before(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-open-'));
    cwd = process.cwd();
    process.chdir(tmp);
  });
  after(async () => {
    process.chdir(cwd);
    await fs.rm(tmp, { recursive: true, force: true });
  });

  it('opens file:// stores, creating the root', async () => {
    const root = path.join(tmp, 'a', 'store');
    const store = await openStore(pathToFileURL(root).href);
    assert.ok(store instanceof FileStore);
    await store.put('k', Buffer.from('v'));
    assert.equal((await fs.stat(root)).isDirectory(), true);
  });

  it('opens memory:// for tests', async () => {
    assert.ok((await openStore('memory://')) instanceof MemoryStore);
  });

  it('defaults to $CAIRN_STORE, else $CAIRN_HOME/store', async () => {
    const saved = { store: process.env.CAIRN_STORE, home: process.env.CAIRN_HOME };
    try {
      process.env.CAIRN_STORE = pathToFileURL(path.join(tmp, 'env-store')).href;
      assert.equal((await openStore()).url, pathToFileURL(path.join(tmp, 'env-store')).href);
      delete process.env.CAIRN_STORE;
      process.env.CAIRN_HOME = path.join(tmp, 'home');
      const store = await openStore();
      assert.equal(store.url, pathToFileURL(path.join(tmp, 'home', 'store')).href);
    } finally {
      for (const [k, v] of [
        ['CAIRN_STORE', saved.store],
        ['CAIRN_HOME', saved.home],
      ] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it('refuses malformed URLs with INVALID_ARGUMENT and a hint, creating nothing', async () => {
    const before = await fs.readdir(tmp);
    const bad = [
      '',
      'nonsense',
      'ftp://host/x',
      'file://relative/path',
      'file:relative',
      'file:///x?y=1',
      'file:///x#f',
      'memory://x',
      's3://',
      's3://ab',
      's3://bucket?nope=1',
      's3://bucket?path_style=maybe',
      's3://bucket?endpoint=::',
      'S4://bucket',
    ];
    for (const url of bad) {
      await assert.rejects(openStore(url), (e: unknown) => {
        assert.ok(isCairnError(e), `${url}: ${String(e)}`);
        assert.equal(e.code, 'INVALID_ARGUMENT', url);
        assert.ok(e.context.hint, url);
        return true;
      });
    }
    assert.deepEqual(await fs.readdir(tmp), before);
  });

  it('re-exports the store surface', () => {
    assert.equal(typeof S3Store.open, 'function');
    assert.equal(checkKey('a/b'), 'a/b');
  });
});
