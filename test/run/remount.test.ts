/**
 * A second `cairn run` of a volume at the same path reuses the first one's session directory; it
 * must still start at the newest commit (Modal's containers always do), through the built CLI on
 * the embedded file store.
 */
import '../helpers/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CLI, cliWithStore } from '../cli/harness.js';

let store = '';

const { ok } = cliWithStore(() => store);

describe('cairn run again at the same path', () => {
  let base = '';
  before(async () => {
    base = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-run-remount-'));
    store = `file://${path.join(base, 'store')}`;
  });
  after(() => fs.rm(base, { recursive: true, force: true }));

  it('starts at the newest commit, with what others committed since the last run', async () => {
    await ok('volume', 'create', 'v1');
    await ok('run', '-v', 'v1:/data', '--', 'sh', '-c', 'printf first > /data/first');
    for (let i = 0; i < 3; i++) {
      const local = path.join(base, `put${i}.txt`);
      await fs.writeFile(local, `put ${i}`);
      await ok('volume', 'put', 'v1', local, `/put${i}.txt`);
    }
    const history = JSON.parse(await ok('volume', 'history', 'v1', '--json')) as { seq: number }[];
    const newest = history.at(-1)!.seq;
    assert.equal(newest, 4);
    // The command reports the mount's seq (through the control file) and reads the newest file.
    const cli = `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)}`;
    const cmd = `${cli} status /data --json && cat /data/first /data/put2.txt`;
    const out = await ok('run', '-v', 'v1:/data', '--', 'sh', '-c', cmd);
    const end = out.lastIndexOf('}') + 1;
    assert.equal(JSON.parse(out.slice(0, end)).seq, newest);
    assert.equal(out.slice(end).trim(), 'firstput 2');
  });
});
