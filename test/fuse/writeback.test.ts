/**
 * The writeback cache (`writebackCache`, src/fuse/writeback.ts) through a real native mount (real
 * session, file store): a commit holds bytes written and not yet closed (the kernel's cached pages
 * are written back first), a write that was closed survives a SIGKILL of the daemon, and the
 * kernel really caches (small writes reach the daemon as a few big WRITEs).
 */
import '../helpers/env.js';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { controlRequest } from '../../src/fuse/control.js';
import { cairn } from '../cli/harness.js';
import { cleanupAll, forceUnmount, q, readVolumeFile, shOk, startFileDaemon, tmpDir, type DaemonSpec } from '../helpers/mount.js';

const start = startFileDaemon(() => ({ writebackCache: true }), { CAIRN_FUSE_BINDING: 'native', CAIRN_FUSE_OPSTATS: '1' });

describe('the writeback cache (native binding, real session)', () => {
  after(() => cleanupAll());

  it('commits bytes written and not yet closed, and keeps closed ones across a SIGKILL', async () => {
    const base = await tmpDir();
    const spec: DaemonSpec = { mountpoint: path.join(base, 'mnt'), volume: 'wb', storeDir: path.join(base, 'store') };
    const m = spec.mountpoint;
    const payload = crypto.randomBytes(1 << 20);
    await fs.writeFile(path.join(base, 'payload'), payload);
    let d = await start(spec);
    const st = (await controlRequest(m, 'status')) as { writebackCache?: boolean };
    assert.equal(st.writebackCache, true);
    const shown = await cairn(['status', m]);
    assert.match(shown.out, /fuse\s+native, writeback cache on/, shown.out + shown.err);

    // 16 writes of 4 KiB by a process that keeps the file open (few enough to stay in the
    // kernel's cache: FUSE's share of dirty pages is small, and more are written back at once)
    const small = payload.subarray(0, 64 * 1024);
    await fs.writeFile(path.join(base, 'small'), small);
    // (python, not a shell: a shell's dd closing its copy of the descriptor would write the pages back)
    const py = `import sys\nf = open(sys.argv[1], 'wb', buffering=0)\ndata = open(sys.argv[2], 'rb').read()\nfor i in range(0, len(data), 4096): f.write(data[i:i + 4096])\nprint('written', flush=True)\nsys.stdin.readline()`;
    const script = `exec python3 -c ${q(py)} ${q(`${m}/open.bin`)} ${q(path.join(base, 'small'))}`;
    const writer = spawn('bash', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve) => writer.stdout!.once('data', () => resolve()));
      await controlRequest(m, 'commit');
      assert.ok((await readVolumeFile(spec.storeDir!, 'wb', '/open.bin')).equals(small), 'the commit holds the unclosed bytes');
    } finally {
      writer.stdin!.end('\n');
      await new Promise((resolve) => writer.on('exit', resolve));
    }
    // closed without fsync, then the daemon dies: the close wrote the pages back
    await shOk(`cp ${q(path.join(base, 'payload'))} ${q(`${m}/closed.bin`)}`);
    d.child.kill('SIGKILL');
    await d.exited;
    await forceUnmount(m);
    d = await start(spec); // recovers and commits the closed file
    assert.equal(
      (await shOk(`sha256sum < ${q(`${m}/closed.bin`)} | cut -d' ' -f1`)).trim(),
      crypto.createHash('sha256').update(payload).digest('hex'),
    );
    // the kernel caches 256 small writes: far fewer WRITEs reach the daemon (per-op counts at unmount)
    await shOk(`dd if=${q(path.join(base, 'payload'))} of=${q(`${m}/again.bin`)} bs=4k status=none`);
    await d.stop();
    const log = d.logs();
    const writes = /"WRITE":\{"n":(\d+)/.exec(log);
    assert.ok(writes, log.slice(-2000));
    assert.ok(Number(writes[1]) < 64, `WRITE requests: ${writes[1]}`);
  });
});
