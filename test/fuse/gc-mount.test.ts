/**
 * A long-lived mount survives a gc with a short retention: `cairn reload` of a mount whose view
 * fell below the volume's pruned floor commits its pending changes, re-bootstraps from the newest
 * checkpoint (through the built CLI, a real FUSE mount, the embedded file store), says so in its
 * result and in the daemon's log.
 */
import '../helpers/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { forceUnmount, q, shOk, tmpDir } from '../helpers/mount.js';
import { cliWithStore } from '../cli/harness.js';

let store = '';
const { run: cairn, ok } = cliWithStore(() => store);

describe('a mount whose view gc pruned', () => {
  let base = '';
  let mnt = '';
  before(async () => {
    base = await tmpDir('gc2-gc-mount-');
    store = `file://${path.join(base, 'store')}`;
    mnt = path.join(base, 'mnt');
  });
  after(async () => {
    await cairn('unmount', mnt, '--force');
    await forceUnmount(mnt);
    await fs.rm(base, { recursive: true, force: true });
  });

  it('re-bootstraps from the newest checkpoint at reload, keeping and committing its changes', async () => {
    await ok('volume', 'create', 'gv');
    const mounted = await cairn('mount', 'gv', mnt, '--commit-interval', '0');
    assert.equal(mounted.code, 0, mounted.stderr);
    const logFile = /, log (\S+)\)/.exec(mounted.stderr)?.[1];
    assert.ok(logFile, mounted.stderr);
    await shOk(`printf mine > ${q(`${mnt}/mine`)}`);
    await ok('commit', mnt); // seq 1: the mount's view
    for (let i = 0; i < 3; i++) {
      const local = path.join(base, `put${i}`);
      await fs.writeFile(local, `put ${i}`);
      await ok('volume', 'put', 'gv', local, `/put${i}`); // seqs 2..4
    }
    await shOk(`printf local > ${q(`${mnt}/local`)}`); // pending in the mount
    const gc = JSON.parse(await ok('volume', 'gc', 'gv', '--keep-last', '1', '--grace', '2', '--json')) as { retainedFrom: number };
    assert.equal(gc.retainedFrom, 4);
    const r = JSON.parse(await ok('reload', mnt, '--json')) as {
      from: number;
      seq: number;
      commit?: { seq: number };
      rebootstrapped?: { floor: number; checkpoint: number };
    };
    assert.deepEqual(r.rebootstrapped, { floor: 4, checkpoint: 4 });
    assert.equal(r.commit?.seq, 5);
    assert.equal(r.seq, 5);
    assert.equal(await shOk(`cat ${q(`${mnt}/mine`)} ${q(`${mnt}/put2`)} ${q(`${mnt}/local`)}`), 'mineput 2local');
    assert.equal((await shOk(`ls ${q(mnt)}`)).split('\n').filter(Boolean).sort().join(' '), 'local mine put0 put1 put2');
    const log = await fs.readFile(logFile, 'utf8');
    assert.match(log, /below the volume's pruned floor 4: re-bootstrapped from checkpoint 4/);
    // The mount goes on: a change commits on top.
    await shOk(`printf after > ${q(`${mnt}/after`)}`);
    assert.equal(JSON.parse(await ok('commit', mnt, '--json')).seq, 6);
    await ok('unmount', mnt);
  });
});
