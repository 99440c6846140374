/**
 * WAL checkpoints on a worker thread (src/session/walcheckpoint.ts), real SQLite: the worker
 * checkpoints while the journal's connection keeps writing, nothing written is lost across
 * checkpoints and a reopen, and a process that never closes its journal still exits (the worker
 * never keeps it alive).
 */
import '../helpers/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { Journal } from '../../src/session/journal.js';
import { CHECKPOINT_EVERY } from '../../src/session/walcheckpoint.js';

const JOURNAL_JS = pathToFileURL(
  path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'session', 'journal.js'),
).href;
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
const file = (t: number) => ({ type: 'file' as const, mode: 0o644, mtimeMs: t, size: 0, inline: Buffer.alloc(0) });

describe('WAL checkpoints on a worker thread', () => {
  let tmp: string;
  before(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-wal-'));
  });
  after(async () => {
    await fs.rm(tmp, { recursive: true, force: true });
  });

  it('checkpoints while the journal writes, and loses nothing across them and a reopen', async () => {
    const db = path.join(tmp, 'a.db');
    const j = new Journal(db);
    const n = 6 * CHECKPOINT_EVERY;
    j.put('d', { type: 'directory', mode: 0o755, mtimeMs: 1, size: 0 });
    for (let i = 0; i < n; i++) {
      j.put(`d/f${i}`, file(i), { dirs: ['d'], now: i });
      await turn(); // as a mount's requests: the worker's answers get through between them
    }
    const done = (j as unknown as { wal: { done: number } }).wal.done;
    assert.ok(done >= 2, `${done} checkpoints by the worker`);
    j.close();
    const again = new Journal(db);
    try {
      assert.equal(again.entryCount(), n + 1);
      assert.equal(again.get(`d/f${n - 1}`)?.mtimeMs, n - 1);
      assert.equal(again.pendingCount(), n + 1);
    } finally {
      again.close();
    }
  });

  const childScript = (db: string): string => `
      const { Journal } = await import(${JSON.stringify(JOURNAL_JS)});
      const j = new Journal(${JSON.stringify(db)});
      for (let i = 0; i < ${3 * CHECKPOINT_EVERY}; i++) {
        j.put('f' + i, { type: 'file', mode: 0o644, mtimeMs: i, size: 0, inline: Buffer.alloc(0) });
        await new Promise((r) => setImmediate(r));
      }
      // (the worker's first checkpoint, once it has started: then the process must end by itself)
      for (let k = 0; k < 200 && j.wal.done === 0; k++) await new Promise((r) => setTimeout(r, 50));
      console.log(j.wal.done);`;

  it('never keeps a process alive that did not close its journal', async () => {
    const t = performance.now();
    const script = childScript(path.join(tmp, 'b.db'));
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { timeout: 60_000 });
    assert.ok(Number(stdout.trim()) >= 1, `the child's worker ran ${stdout.trim()} checkpoints`);
    assert.ok(performance.now() - t < 30_000);
  });

  it('checkpoints in a process started with V8 flags, which a worker refuses in its execArgv (a mount daemon has some)', async () => {
    // The worker once got the process's flags as they were: --initial-heap-size made `new Worker`
    // throw inside a journal transaction, and every create in a mount failed with EIO.
    const flags = ['--initial-heap-size=64', '--max-old-space-size=1024', '--max-semi-space-size=16', '--expose-gc'];
    const script = childScript(path.join(tmp, 'c.db'));
    const { stdout } = await promisify(execFile)(process.execPath, [...flags, '--input-type=module', '-e', script], { timeout: 60_000 });
    assert.ok(Number(stdout.trim()) >= 1, `the child's worker ran ${stdout.trim()} checkpoints`);
  });
});
