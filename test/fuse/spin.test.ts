/**
 * The event loop's spin after bursts of requests (src/fuse/spin.ts): when one starts, how long it
 * lasts, and that a mount's sequential client (a shell creating files one after another) is
 * caught by it: its requests arrive while the loop polls (`status` → `nativeDispatch`).
 */
import '../helpers/env.js';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { controlRequest } from '../../src/fuse/control.js';
import { loadNative } from '../../src/fuse/lowlevel.js';
import { RequestSpin, SPIN_US, spinWindowUs } from '../../src/fuse/spin.js';
import { cleanupAll, q, shOk, startFileDaemon, tmpDir } from '../helpers/mount.js';

describe('RequestSpin', () => {
  it('starts on the second of two close requests, not on a lone one, and ends a window after the last answer', async () => {
    // A window of 400 ms: wide enough that a busy host's timers (the steps below sleep 150 ms) stay inside it.
    const spin = new RequestSpin(400_000);
    spin.arrived();
    assert.equal(spin.active, false, 'a lone request after a long gap');
    spin.arrived();
    assert.equal(spin.active, true);
    assert.equal(spin.spins, 1);
    spin.arrived(); // during the spin: a hit
    assert.equal(spin.hits, 1);
    await sleep(150);
    spin.answered();
    await sleep(150);
    assert.equal(spin.active, true, 'the answer moved the end on');
    const t0 = performance.now();
    while (spin.active && performance.now() - t0 < 10_000) await sleep(20);
    assert.equal(spin.active, false, 'over a window after the last answer');
    assert.ok(performance.now() - t0 >= 50, 'not before its window');
    spin.answered();
    assert.equal(spin.active, false, 'an answer alone starts nothing');
  });

  it('starts none while other requests are in hand, nor with a window of 0', async () => {
    const busy = new RequestSpin(400_000);
    busy.arrived();
    busy.arrived(true);
    assert.equal(busy.active, false);
    const off = new RequestSpin(0);
    for (let i = 0; i < 3; i++) off.arrived();
    assert.equal(off.active, false);
    assert.equal(off.spins, 0);
  });

  it('takes its window from CAIRN_FUSE_SPIN_US (0 or junk: off), the default otherwise; off on one CPU', () => {
    if (os.availableParallelism() < 2) {
      assert.equal(spinWindowUs({}), 0);
      return;
    }
    assert.equal(spinWindowUs({}), SPIN_US);
    assert.equal(spinWindowUs({ CAIRN_FUSE_SPIN_US: '' }), SPIN_US);
    assert.equal(spinWindowUs({ CAIRN_FUSE_SPIN_US: '500' }), 500);
    assert.equal(spinWindowUs({ CAIRN_FUSE_SPIN_US: '0' }), 0);
    assert.equal(spinWindowUs({ CAIRN_FUSE_SPIN_US: 'soon' }), 0);
    assert.equal(spinWindowUs({ CAIRN_FUSE_SPIN_US: '1e9' }), 10_000);
  });
});

describe('the spin in a native mount', { skip: loadNative() ? false : 'native addon not built' }, () => {
  after(cleanupAll);

  it("catches a sequential client's requests, and none with CAIRN_FUSE_SPIN_US=0", async () => {
    const base = await tmpDir();
    const figures = async (env: Record<string, string>, volume: string): Promise<Record<string, number>> => {
      const d = await startFileDaemon(() => ({}), { CAIRN_FUSE_BINDING: 'native', ...env })({
        mountpoint: path.join(base, volume),
        volume,
        storeDir: path.join(base, 'store'),
      });
      try {
        await shOk(`cd ${q(d.mountpoint)} && mkdir c && cd c && for i in $(seq 1 300); do echo $i > f$i; chmod 600 f$i; done`);
        return ((await controlRequest(d.mountpoint, 'status')) as { nativeDispatch: Record<string, number> }).nativeDispatch;
      } finally {
        await d.stop();
      }
    };
    if (os.availableParallelism() >= 2) {
      const on = await figures({}, 'spin-on');
      // ~1,500 requests reach JavaScript (a LOOKUP, CREATE, WRITE, SETATTR, RELEASE per file), most while it polls
      // on a quiet host (a busy one stretches the gaps): some must.
      assert.ok(on.spins! >= 1 && on.spinHits! >= 1, JSON.stringify(on));
    }
    const off = await figures({ CAIRN_FUSE_SPIN_US: '0' }, 'spin-off');
    assert.equal(off.spins, 0);
    assert.equal(off.spinHits, 0);
  });
});
