/**
 * FileStore specifics: the root is created, the on-disk escaping keeps every key distinct, temp
 * files never show, a key's content is never partial (concurrent readers, and a writer killed
 * mid-write), and file-system limits surface as CairnError codes.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { FileStore } from '../../src/store/file.js';
import { isCairnError } from '../../src/errors.js';
import { waitFor } from '../helpers/wait.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const RACE_SCRIPT = path.join(here, '..', 'fixtures', 'store-race.js');

async function allFiles(dir: string): Promise<string[]> {
  return (await fs.readdir(dir, { recursive: true, withFileTypes: true })).filter((d) => d.isFile()).map((d) => d.name);
}

describe('FileStore', () => {
  let tmp: string;
  before(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-filestore-'));
  });
  after(async () => {
    await fs.rm(tmp, { recursive: true, force: true });
  });

  it('creates a nested root and reports a file:// URL', async () => {
    const root = path.join(tmp, 'deep', 'er', 'root');
    const store = await FileStore.open(root);
    assert.equal((await fs.stat(root)).isDirectory(), true);
    assert.equal(store.url, pathToFileURL(root).href);
    assert.equal(store.conditionalWrites, true);
  });

  it('refuses a relative root with INVALID_ARGUMENT', async () => {
    await assert.rejects(FileStore.open('relative/root'), (e: unknown) => isCairnError(e, 'INVALID_ARGUMENT'));
  });

  it('keeps keys that look like temp files, escapes, or file/dir clashes distinct', async () => {
    const store = await FileStore.open(path.join(tmp, 'escape'));
    const keys = ['.tmp-1', 'a', 'a/b', 'a%', 'a%/b', '%2E', '.', 'x/.y', 'x/%25'].filter((k) => k !== '.');
    for (const k of keys) await store.put(k, Buffer.from(`v:${k}`));
    for (const k of keys) assert.equal((await store.get(k)).toString(), `v:${k}`);
    const listed = (await store.list('')).map((o) => o.key);
    assert.deepEqual(
      listed,
      [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))),
    );
  });

  it('never lists temp files left by a crash, and leaves none behind itself', async () => {
    const root = path.join(tmp, 'crashy');
    const store = await FileStore.open(root);
    await store.put('d/k', Buffer.from('ok'));
    await fs.writeFile(path.join(root, 'd%', '.tmp-999-deadbeef'), 'half a write');
    await fs.writeFile(path.join(root, '.tmp-1-cafe'), 'half a write');
    assert.deepEqual(
      (await store.list('')).map((o) => o.key),
      ['d/k'],
    );
    for (let i = 0; i < 20; i++) await store.put(`d/n${i}`, Buffer.from(`${i}`), { ifAbsent: i % 2 === 0 });
    const files = await allFiles(root);
    assert.equal(files.filter((f) => f.startsWith('.tmp-')).length, 2, files.join(' '));
  });

  it('readers never see a partial object while writers overwrite it', async () => {
    const store = await FileStore.open(path.join(tmp, 'partial'));
    const sizes = [1 << 20, 3 << 20, 5 << 19, 7 << 18];
    await store.put('obj', Buffer.alloc(sizes[0], 0));
    let stop = false;
    const writer = (async () => {
      for (let i = 1; i <= 40; i++) await store.put('obj', Buffer.alloc(sizes[i % sizes.length], i));
      stop = true;
    })();
    let reads = 0;
    while (!stop) {
      const got = await store.get('obj');
      const fill = got[0];
      assert.equal(got.length, sizes[fill % sizes.length], 'length matches the version read');
      assert.ok(
        got.every((b) => b === fill),
        'every byte from one version',
      );
      reads++;
    }
    await writer;
    assert.ok(reads > 0);
  });

  it('a writer killed mid-write leaves the key absent or complete, and no visible temp file', { timeout: 60_000 }, async () => {
    const root = path.join(tmp, 'killed');
    const store = await FileStore.open(root);
    const size = 256 * 1024 * 1024;
    const child = spawn(process.execPath, [RACE_SCRIPT, store.url, 'big/key', 'victim', String(size)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve()));
    child.stdin.write('go\n');
    // kill it once its temp file holds some bytes, well before all 256 MiB
    const written = async () => {
      let n = 0;
      for (const f of await fs.readdir(root, { recursive: true })) {
        n += (await fs.stat(path.join(root, f)).catch(() => undefined))?.size ?? 0;
      }
      return n;
    };
    await waitFor(async () => (await written()) > 4 << 20, { everyMs: 5, what: 'the writer to start writing' });
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
    const info = await store.head('big/key');
    assert.ok(info === undefined || info.size === size, `size ${info?.size}`);
    const listed = await store.list('');
    assert.ok(listed.every((o) => o.key === 'big/key' && o.size === size));
  });

  it('maps a too-long key segment to INVALID_ARGUMENT', async () => {
    const store = await FileStore.open(path.join(tmp, 'long'));
    await assert.rejects(store.put(`k/${'x'.repeat(300)}`, Buffer.from('1')), (e: unknown) => isCairnError(e, 'INVALID_ARGUMENT'));
    assert.deepEqual(await store.list(''), []);
  });

  it('prunes directories emptied by delete', async () => {
    const root = path.join(tmp, 'prune');
    const store = await FileStore.open(root);
    await store.put('p/q/r/s', Buffer.from('1'));
    await store.delete('p/q/r/s');
    assert.deepEqual(await fs.readdir(root), []);
  });
});
