/**
 * A mount daemon (src/fuse/main.js, as `cairn mount` starts it) keeps its signal handlers until
 * its final commit is done: a second SIGTERM or SIGINT (an impatient operator, a supervisor that
 * signals the whole group) while it commits must not kill it and lose the commit.
 */
import '../helpers/env.js';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { cleanupAll, q, shOk, startFileDaemon, tmpDir, type RunningDaemon } from '../helpers/mount.js';

const start = startFileDaemon();

/** Resolves once the daemon has written `text` on stderr. */
function logged(d: RunningDaemon, text: string): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (!d.logs().includes(text)) return;
      d.child.stderr!.off('data', check);
      resolve();
    };
    d.child.stderr!.on('data', check);
    check();
  });
}

describe('mount daemon signals', () => {
  let base = '';
  after(async () => {
    await cleanupAll();
    if (base) await fs.rm(base, { recursive: true, force: true });
  });

  it('a second SIGTERM or SIGINT during the final commit does not interrupt it', async () => {
    base = await tmpDir();
    const storeDir = path.join(base, 'store');
    const data = path.join(base, 'data.bin');
    await shOk(`head -c 32M /dev/urandom > ${q(data)}`);
    for (const second of ['SIGTERM', 'SIGINT'] as const) {
      const a = await start({ mountpoint: path.join(base, `a-${second}`), volume: 'sigvol', storeDir });
      await shOk(`cp ${q(data)} ${q(`${a.mountpoint}/${second}.bin`)}`);
      a.child.kill('SIGTERM');
      await logged(a, 'SIGTERM: unmounting');
      a.child.kill(second);
      assert.equal(await a.exited, 0, `the daemon must finish its final commit: ${a.logs()}`);
      await a.stop();
    }
    const b = await start({ mountpoint: path.join(base, 'b'), volume: 'sigvol', storeDir, readOnly: true });
    try {
      for (const second of ['SIGTERM', 'SIGINT']) await shOk(`cmp ${q(data)} ${q(`${b.mountpoint}/${second}.bin`)}`);
    } finally {
      await b.stop();
    }
  });
});
