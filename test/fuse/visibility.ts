/**
 * Suites about what a mount shows and refuses, parameterised by how a daemon is started (like
 * conformance.ts): read-only mounts, the control socket (status, commit, reload, VOLUME_BUSY
 * transport), and commit/reload visibility between two mounts of one volume.
 *
 * The daemons of one suite share `storeDir`, their file store.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { controlRequest, findMounts } from '../../src/fuse/control.js';
import { isCairnError, type CairnError } from '../../src/errors.js';
import { cleanupAll, q, sh, shOk, tmpDir, type StartDaemon } from '../helpers/mount.js';
import { errnoOf } from './conformance.js';

/** Retries `fn` until it stops throwing VOLUME_BUSY (a release reaches the daemon asynchronously). */
async function untilNotBusy<T>(fn: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (!isCairnError(err, 'VOLUME_BUSY') || i > 100) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Registers the read-only, control and visibility suites. */
export function visibilitySuite(name: string, start: StartDaemon): void {
  after(() => cleanupAll());

  describe(`read-only mount (${name})`, () => {
    it('serves committed data and refuses every write with EROFS, changing nothing', async () => {
      const base = await tmpDir();
      const storeDir = path.join(base, 'store');
      const rw = await start({ mountpoint: path.join(base, 'rw'), volume: 'rovol', storeDir });
      await shOk(`cd ${q(rw.mountpoint)} && mkdir d && printf keep > d/f && ln -s f d/l`);
      await controlRequest(rw.mountpoint, 'commit');
      await rw.stop();

      const ro = await start({ mountpoint: path.join(base, 'ro'), volume: 'rovol', storeDir, readOnly: true });
      try {
        const d = path.join(ro.mountpoint, 'd');
        const J = (p: string): string => JSON.stringify(path.join(d, p));
        assert.equal(await shOk(`cat ${q(`${d}/f`)}`), 'keep');
        assert.equal(await errnoOf(`fs.writeFile(${J('f')}, 'x')`), 'EROFS');
        assert.equal(await errnoOf(`fs.writeFile(${J('new')}, 'x')`), 'EROFS');
        assert.equal(await errnoOf(`fs.appendFile(${J('f')}, 'x')`), 'EROFS');
        assert.equal(await errnoOf(`fs.truncate(${J('f')}, 0)`), 'EROFS');
        assert.equal(await errnoOf(`fs.mkdir(${J('sub')})`), 'EROFS');
        assert.equal(await errnoOf(`fs.unlink(${J('f')})`), 'EROFS');
        assert.equal(await errnoOf(`fs.rename(${J('f')}, ${J('g')})`), 'EROFS');
        assert.equal(await errnoOf(`fs.rmdir(${J('.')})`), 'EROFS');
        assert.equal(await errnoOf(`fs.symlink('f', ${J('l2')})`), 'EROFS');
        assert.equal(await errnoOf(`fs.chmod(${J('f')}, 0o600)`), 'EROFS');
        assert.equal(await errnoOf(`fs.utimes(${J('f')}, 1, 1)`), 'EROFS');
        assert.equal((await sh(`echo x > ${q(`${d}/f`)}`)).stderr.includes('Read-only file system'), true);
        assert.equal(await shOk(`cd ${q(d)} && cat f && ls && stat -c %a f`), 'keepf\nl\n644\n');
        const st = (await controlRequest(ro.mountpoint, 'status')) as Record<string, unknown>;
        assert.equal(st.readOnly, true);
        assert.equal(st.pending, 0);
        await assert.rejects(controlRequest(ro.mountpoint, 'commit'), (e: CairnError) => e.code === 'READ_ONLY');
        const mounts = await findMounts('rovol');
        assert.equal(mounts.find((x) => x.mountpoint === ro.mountpoint)?.readOnly, true);
      } finally {
        await ro.stop();
      }
    });
  });

  describe(`control socket (${name})`, () => {
    it('answers status, commit and reload, and finds mounts', async () => {
      const base = await tmpDir();
      const d = await start({ mountpoint: path.join(base, 'mnt'), volume: 'ctlvol', storeDir: path.join(base, 'store') });
      try {
        await shOk(`printf a > ${q(`${d.mountpoint}/a`)}`);
        const st = (await controlRequest(d.mountpoint, 'status')) as Record<string, any>;
        assert.equal(st.volume, 'ctlvol');
        assert.equal(st.mountpoint, d.mountpoint);
        assert.equal(st.device, d.device);
        assert.ok(st.pending > 0);
        const c = (await controlRequest(`${d.mountpoint}/`, 'commit')) as Record<string, any>;
        assert.equal(c.committed, true);
        assert.ok(c.paths.includes('/a') || c.paths.includes('a'));
        const st2 = (await controlRequest(d.mountpoint, 'status')) as Record<string, any>;
        assert.equal(st2.pending, 0);
        assert.equal(st2.seq, c.seq);
        const again = (await controlRequest(d.mountpoint, 'commit')) as Record<string, any>;
        assert.equal(again.committed, false);
        const r = (await untilNotBusy(() => controlRequest(d.mountpoint, 'reload'))) as Record<string, any>;
        assert.equal(r.seq, c.seq);
        const mounts = await findMounts('ctlvol');
        assert.ok(mounts.some((x) => x.mountpoint === d.mountpoint && x.device === d.device));
        // A path inside the mount reaches the same daemon.
        await shOk(`mkdir ${q(`${d.mountpoint}/sub`)}`);
        const st3 = (await controlRequest(`${d.mountpoint}/sub`, 'status')) as Record<string, any>;
        assert.equal(st3.device, d.device);
      } finally {
        await d.stop();
      }
    });

    it('says NOT_FOUND for a directory that is not a cairn mount', async () => {
      const dir = await tmpDir();
      await assert.rejects(
        controlRequest(dir, 'status'),
        (e: CairnError) => e.code === 'NOT_FOUND' && /not a cairn mount/.test(e.message) && !!e.context.hint,
      );
    });

    it('transports VOLUME_BUSY naming the open paths and the processes', async () => {
      const base = await tmpDir();
      const d = await start({ mountpoint: path.join(base, 'mnt'), volume: 'busyvol', storeDir: path.join(base, 'store') });
      let h2: ReturnType<typeof spawn> | undefined;
      try {
        await shOk(`printf data > ${q(`${d.mountpoint}/held.txt`)}`);
        h2 = spawn('bash', ['-c', `exec 3<${q(`${d.mountpoint}/held.txt`)}; echo open; exec sleep 60`], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        await new Promise<void>((resolve) => h2!.stdout!.once('data', () => resolve()));
        try {
          const err = (await controlRequest(d.mountpoint, 'reload').then(
            () => assert.fail('reload succeeded with an open file'),
            (e: unknown) => e,
          )) as CairnError;
          assert.equal(err.code, 'VOLUME_BUSY');
          assert.match(err.message, /held\.txt/);
          const openFiles = err.context.openFiles as { path: string }[];
          assert.ok(openFiles.some((o) => o.path.endsWith('held.txt')));
          const procs = err.context.processes as { pid: number; path: string }[];
          assert.ok(
            procs.some((p) => p.pid === h2!.pid && p.path.endsWith('held.txt')),
            JSON.stringify(procs),
          );
          const st = (await controlRequest(d.mountpoint, 'status')) as Record<string, any>;
          assert.ok(st.openFiles.some((o: { path: string }) => o.path.endsWith('held.txt')));
        } finally {
          h2!.kill('SIGKILL');
        }
        await untilNotBusy(() => controlRequest(d.mountpoint, 'reload'));
      } finally {
        h2?.kill('SIGKILL');
        await d.stop();
      }
    });
  });

  describe(`commit/reload visibility between two mounts (${name})`, () => {
    it('shows a change elsewhere only after commit there and reload here', async () => {
      const base = await tmpDir();
      const storeDir = path.join(base, 'store');
      const a = await start({ mountpoint: path.join(base, 'a'), volume: 'visvol', storeDir });
      const b = await start({ mountpoint: path.join(base, 'b'), volume: 'visvol', storeDir });
      try {
        await shOk(`printf one > ${q(`${a.mountpoint}/shared.txt`)}`);
        assert.equal((await sh(`cat ${q(`${b.mountpoint}/shared.txt`)}`)).code, 1);
        await controlRequest(a.mountpoint, 'commit');
        assert.equal((await sh(`cat ${q(`${b.mountpoint}/shared.txt`)}`)).code, 1, 'visible before reload');
        await untilNotBusy(() => controlRequest(b.mountpoint, 'reload'));
        assert.equal(await shOk(`cat ${q(`${b.mountpoint}/shared.txt`)}`), 'one');
        // Last writer wins, and b's unrelated file survives a's later commit.
        await shOk(`printf two > ${q(`${b.mountpoint}/shared.txt`)}; printf mine > ${q(`${b.mountpoint}/b-only`)}`);
        await controlRequest(b.mountpoint, 'commit');
        await shOk(`printf three > ${q(`${a.mountpoint}/a-only`)}`);
        await controlRequest(a.mountpoint, 'commit');
        await untilNotBusy(() => controlRequest(a.mountpoint, 'reload'));
        assert.equal(await shOk(`cd ${q(a.mountpoint)} && cat shared.txt b-only a-only`), 'twominethree');
      } finally {
        await a.stop();
        await b.stop();
      }
    });

    it('commits pending writes when the daemon is stopped (SIGTERM)', async () => {
      const base = await tmpDir();
      const storeDir = path.join(base, 'store');
      const a = await start({ mountpoint: path.join(base, 'a'), volume: 'termvol', storeDir });
      await shOk(`printf late > ${q(`${a.mountpoint}/late.txt`)}`);
      assert.equal(await a.stop(), 0);
      const b = await start({ mountpoint: path.join(base, 'b'), volume: 'termvol', storeDir });
      try {
        assert.equal(await shOk(`cat ${q(`${b.mountpoint}/late.txt`)}`), 'late');
      } finally {
        await b.stop();
      }
    });

    it('commits and exits when the directory is unmounted from outside', async () => {
      const base = await tmpDir();
      const storeDir = path.join(base, 'store');
      const a = await start({ mountpoint: path.join(base, 'a'), volume: 'extvol', storeDir });
      await shOk(`printf ext > ${q(`${a.mountpoint}/ext.txt`)}`);
      await shOk(`fusermount -u ${q(a.mountpoint)}`);
      assert.equal(await a.exited, 0);
      const b = await start({ mountpoint: path.join(base, 'b'), volume: 'extvol', storeDir });
      try {
        assert.equal(await shOk(`cat ${q(`${b.mountpoint}/ext.txt`)}`), 'ext');
      } finally {
        await a.stop();
        await b.stop();
      }
    });

    it('commits in the background every commitIntervalSec', async () => {
      const base = await tmpDir();
      const a = await start({
        mountpoint: path.join(base, 'a'),
        volume: 'bgvol',
        storeDir: path.join(base, 'store'),
        commitIntervalSec: 1,
      });
      try {
        await shOk(`printf bg > ${q(`${a.mountpoint}/bg.txt`)}`);
        let st: Record<string, any> = {};
        for (let i = 0; i < 60; i++) {
          st = (await controlRequest(a.mountpoint, 'status')) as Record<string, any>;
          if (st.pending === 0 && st.commits > 0) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        assert.equal(st.pending, 0);
        assert.ok(st.commits >= 1);
        assert.equal(st.lastCommit.why, 'background');
      } finally {
        await a.stop();
      }
    });
  });
}
