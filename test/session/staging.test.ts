/**
 * Staging files: the descriptor cache stays within its bound while many files are written, read,
 * truncated and synced at once, and a session writing more files than the process may open
 * descriptors for (a container's `ulimit -n`) still works end to end; the spare files made ahead
 * are started only once the caller's synchronous work is over (after its request is answered).
 */
import '../helpers/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import { readdirSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Staging } from '../../src/session/staging.js';

const DIST_SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');

describe('Staging', () => {
  let tmp: string;
  before(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-staging-'));
  });
  after(async () => {
    await fs.rm(tmp, { recursive: true, force: true });
  });

  it('keeps at most maxOpen descriptors, never closing one in use', async () => {
    const staging = new Staging(tmp, { maxOpen: 4 });
    await staging.init();
    const data = new Map<string, Buffer>();
    const names: string[] = [];
    for (let i = 0; i < 40; i++) names.push(await staging.create(() => {}));
    assert.ok(staging.openHandles <= 4, `${staging.openHandles} open after creating`);
    // Ten at a time: more in use at once than the bound, which must not break any of them.
    for (let i = 0; i < names.length; i += 10) {
      await Promise.all(
        names.slice(i, i + 10).map(async (n, k) => {
          const bytes = crypto.randomBytes(1000 + (i + k) * 37);
          data.set(n, bytes);
          await staging.write(n, 0, bytes.subarray(0, 500));
          await staging.write(n, 500, bytes.subarray(500));
          await staging.truncate(n, bytes.length + 10);
          await staging.truncate(n, bytes.length);
          await staging.fsync(n);
        }),
      );
      assert.ok(staging.openHandles <= 4, `${staging.openHandles} open after a round`);
    }
    const back = await Promise.all(names.map((n) => staging.read(n, 0, 1 << 20)));
    names.forEach((n, i) => assert.ok(back[i]!.equals(data.get(n)!), n));
    assert.ok(staging.openHandles <= 4);
    await staging.closeAll();
    assert.equal(staging.openHandles, 0);
  });

  it('makes its spare files after the create that used one has returned, not during it', async () => {
    const dir = path.join(tmp, 'spares');
    const staging = new Staging(dir);
    await staging.init();
    const first = staging.createNow();
    // The caller goes on working (a FUSE answer, the next request) without yielding: nothing is
    // created behind its back, so no thread-pool wake-up competes with it for a CPU.
    const until = Date.now() + 300;
    while (Date.now() < until) {
      // busy
    }
    assert.deepEqual(readdirSync(path.join(dir, 'staging')), [first]);
    for (let i = 0; i < 100 && (await fs.readdir(path.join(dir, 'staging'))).length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok((await fs.readdir(path.join(dir, 'staging'))).length > 1, 'spares are made once the event loop turns');
    await staging.closeAll();
  });

  it('a session writes and commits more files than `ulimit -n` allows descriptors', { timeout: 120_000 }, async () => {
    // 1,500 files under a limit of 400 descriptors, in a child process (the limit is per process).
    const script = `
      const { Volume } = await import(${JSON.stringify(pathToFileURL(path.join(DIST_SRC, 'index.js')).href)});
      const vol = await Volume.fromName('many', { store: ${JSON.stringify(pathToFileURL(path.join(tmp, 'store')).href)}, createIfMissing: true });
      const s = await vol.session();
      await s.mkdir('/d');
      for (let i = 0; i < 1500; i++) { await s.create('/d/f' + i, 0o644); await s.write('/d/f' + i, 0, Buffer.from('file ' + i)); }
      const r = await s.commit();
      const other = await vol.session();
      let ok = 0;
      for (let i = 0; i < 1500; i += 7) if ((await other.read('/d/f' + i, 0, 100)).toString() === 'file ' + i) ok++;
      await s.close(); await other.close(); await vol.close();
      console.log(JSON.stringify({ paths: r.paths.length, ok }));
    `;
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        'bash',
        ['-c', `ulimit -n 400 && exec "${process.execPath}" --input-type=module -e "$0"`, script],
        { env: { ...process.env, CAIRN_HOME: path.join(tmp, 'home') } },
        (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
      ),
    );
    assert.deepEqual(JSON.parse(out.trim().split('\n').pop()!), { paths: 1501, ok: Math.ceil(1500 / 7) });
  });
});
