/**
 * mount()/unmount() end to end: detached daemons started through src/fuse/main.ts (the real
 * session, on a file store in the test's temp directory), typed errors from the daemon, the
 * fusermount fallback, and a mount inside its own mount namespace (`unshare --mount`, the
 * container model).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { promises as fsp } from 'node:fs';
import { mount, unmount } from '../../src/fuse/mount.js';
import { controlRequest, findMounts, statusAll } from '../../src/fuse/control.js';
import { readMounts } from '../../src/fuse/mountinfo.js';
import type { CairnError } from '../../src/errors.js';
import { DIST, createVolumes, forceUnmount, nodeScript, q, sh, shOk, tmpDir } from '../helpers/mount.js';

const cleanup: string[] = [];
after(async () => {
  for (const dir of cleanup) await forceUnmount(dir);
});

async function pidAlive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A file store in `base` holding these (empty) volumes. */
async function fileStore(base: string, ...volumes: string[]): Promise<string> {
  const store = `file://${path.join(base, 'store')}`;
  await createVolumes(store, ...volumes);
  return store;
}

async function waitDead(pid: number): Promise<void> {
  for (let i = 0; i < 100 && (await pidAlive(pid)); i++) await new Promise((r) => setTimeout(r, 50));
}

describe('mount() / unmount()', () => {
  it('mounts detached, serves files, and unmount commits and stops the daemon', async () => {
    const base = await tmpDir();
    const mnt = path.join(base, 'mnt');
    cleanup.push(mnt);
    const store = await fileStore(base, 'mvol');
    const m = await mount({
      volume: 'mvol',
      mountpoint: mnt,
      store,
      logFile: path.join(base, 'log'),
      commitIntervalSec: 0,
    });
    assert.equal(m.volume, 'mvol');
    assert.equal(m.mountpoint, mnt);
    assert.ok(await pidAlive(m.pid));
    // The daemon runs with its Node flags (DAEMON_NODE_FLAGS: a larger initial heap, fewer full GCs;
    // a young generation capped at 4 MB semi-spaces, for its peak RSS).
    const argv = (await fsp.readFile(`/proc/${m.pid}/cmdline`, 'utf8')).split('\0');
    assert.ok(argv.includes('--initial-heap-size=64') && argv.includes('--max-semi-space-size=4'), argv.join(' '));
    await shOk(`printf hi > ${q(`${mnt}/x`)}`);
    const found = await findMounts('mvol');
    assert.ok(found.some((f) => f.mountpoint === mnt && f.device === m.device));
    const all = await statusAll('mvol');
    assert.equal(all.find((x) => x.mount.mountpoint === mnt)?.status?.volume, 'mvol');

    const r = await unmount(mnt);
    assert.equal(r.viaDaemon, true);
    assert.equal(r.result?.commit?.committed, true);
    assert.ok(!(await readMounts()).some((e) => e.mountpoint === mnt));
    await waitDead(m.pid);
    assert.equal(await pidAlive(m.pid), false);

    // The committed data is there for the next mount.
    const m2 = await mount({
      volume: 'mvol',
      mountpoint: mnt,
      store,
      logFile: path.join(base, 'log2'),
    });
    assert.equal(await shOk(`cat ${q(`${mnt}/x`)}`), 'hi');
    await unmount(mnt);
    await waitDead(m2.pid);
  });

  it('reports the daemon error as a typed CairnError', async () => {
    const base = await tmpDir();
    const store = await fileStore(base, 'nevol');
    await assert.rejects(
      mount({ volume: 'does-not-exist', mountpoint: path.join(base, 'mnt'), store, logFile: path.join(base, 'log') }),
      (e: CairnError) => e.code === 'NOT_FOUND' && e.context.volume === 'does-not-exist',
    );
    assert.ok(!(await readMounts()).some((e) => e.mountpoint === path.join(base, 'mnt')));
    await assert.rejects(mount({ volume: 'bad/name', mountpoint: base }), (e: CairnError) => e.code === 'INVALID_ARGUMENT');
    // A non-empty directory: refused with a reason, unless nonEmpty.
    const full = path.join(base, 'full');
    await fsp.mkdir(full);
    await fsp.writeFile(path.join(full, 'x'), 'x');
    await assert.rejects(
      mount({ volume: 'nevol', mountpoint: full, store, logFile: path.join(base, 'log3') }),
      (e: CairnError) => e.code === 'INVALID_ARGUMENT' && /not empty/.test(e.message),
    );
    cleanup.push(full);
    const m = await mount({
      volume: 'nevol',
      mountpoint: full,
      nonEmpty: true,
      store,
      logFile: path.join(base, 'log4'),
    });
    assert.equal((await shOk(`ls -A ${q(full)}`)).trim(), '');
    await unmount(full);
    await waitDead(m.pid);
    assert.equal(await fsp.readFile(path.join(full, 'x'), 'utf8'), 'x');
  });

  it('refuses to mount over a mount point, and unmount with open files', async () => {
    const base = await tmpDir();
    const mnt = path.join(base, 'mnt');
    cleanup.push(mnt);
    const store = await fileStore(base, 'ovol');
    const m = await mount({ volume: 'ovol', mountpoint: mnt, store, logFile: path.join(base, 'log') });
    await assert.rejects(mount({ volume: 'ovol', mountpoint: mnt, store }), (e: CairnError) => e.code === 'ALREADY_EXISTS');
    await shOk(`printf x > ${q(`${mnt}/f`)}`);
    const { spawn } = await import('node:child_process');
    const holder = spawn('bash', ['-c', `exec 3<${q(`${mnt}/f`)}; echo open; exec sleep 60`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()));
    try {
      await assert.rejects(unmount(mnt), (e: CairnError) => e.code === 'VOLUME_BUSY' && /\/f/.test(e.message));
    } finally {
      holder.kill('SIGKILL');
    }
    if (holder.exitCode === null && holder.signalCode === null) await new Promise((r) => holder.once('exit', r));
    const r = await unmount(mnt, { force: true });
    assert.equal(r.viaDaemon, true);
    await waitDead(m.pid);
  });

  it('mounts through a symlinked path and is found by either name', async () => {
    const base = await tmpDir();
    const real = path.join(base, 'real');
    await fsp.mkdir(real);
    await fsp.symlink(real, path.join(base, 'link'));
    cleanup.push(real);
    const store = await fileStore(base, 'lnvol');
    const m = await mount({
      volume: 'lnvol',
      mountpoint: path.join(base, 'link'),
      store,
      logFile: path.join(base, 'log'),
    });
    assert.equal(m.mountpoint, real);
    await shOk(`printf l > ${q(`${base}/link/f`)}`);
    const st = (await controlRequest(path.join(base, 'link'), 'status')) as Record<string, unknown>;
    assert.equal(st.mountpoint, real);
    await unmount(path.join(base, 'link'));
    await waitDead(m.pid);
  });

  it('falls back to fusermount when the daemon is gone', async () => {
    const base = await tmpDir();
    const mnt = path.join(base, 'mnt');
    cleanup.push(mnt);
    const store = await fileStore(base, 'deadvol');
    const m = await mount({ volume: 'deadvol', mountpoint: mnt, store, logFile: path.join(base, 'log') });
    process.kill(m.pid, 'SIGKILL');
    await waitDead(m.pid);
    await assert.rejects(controlRequest(mnt, 'status'), (e: CairnError) => e.code === 'UNAVAILABLE');
    const all = await statusAll('deadvol');
    assert.equal(all.length, 1);
    assert.equal(all[0].error?.code, 'UNAVAILABLE');
    const r = await unmount(mnt);
    assert.equal(r.viaDaemon, false);
    assert.ok(!(await readMounts()).some((e) => e.mountpoint === mnt));
  });

  it('mounts again over a dead mount (daemon killed)', async () => {
    const base = await tmpDir();
    const mnt = path.join(base, 'mnt');
    cleanup.push(mnt);
    const store = await fileStore(base, 'revol');
    const m = await mount({ volume: 'revol', mountpoint: mnt, store, logFile: path.join(base, 'log') });
    process.kill(m.pid, 'SIGKILL');
    await waitDead(m.pid);
    assert.equal((await sh(`ls ${q(mnt)}`)).code, 2); // Transport endpoint is not connected
    const m2 = await mount({ volume: 'revol', mountpoint: mnt, store, logFile: path.join(base, 'log2') });
    await shOk(`printf ok > ${q(`${mnt}/f`)}`);
    await unmount(mnt);
    await waitDead(m2.pid);
  });

  it('runs the daemon in the calling process with foreground: true', async () => {
    const base = await tmpDir();
    const mnt = path.join(base, 'mnt');
    cleanup.push(mnt);
    const store = await fileStore(base, 'fgvol');
    // The daemon serves the kernel on this child's event loop; the shell command runs elsewhere.
    const out = await nodeScript(`
      import { mount } from ${JSON.stringify(path.join(DIST, 'src', 'fuse', 'mount.js'))};
      import { execFile } from 'node:child_process';
      const m = await mount({ volume: 'fgvol', mountpoint: ${JSON.stringify(mnt)}, foreground: true, store: ${JSON.stringify(store)} });
      const text = await new Promise((res) => execFile('bash', ['-c', 'printf fg > ${mnt}/f; cat ${mnt}/f'], (e, o) => res(o)));
      const closing = m.handle.close('test');
      const r = await m.closed;
      console.log(JSON.stringify({ text, pid: m.pid === process.pid, committed: r.commit?.committed ?? false }));
      process.exit(0);`);
    assert.deepEqual(JSON.parse(out.trim().split('\n').pop()!), { text: 'fg', pid: true, committed: true });
  });

  it('works inside a private mount namespace (unshare --mount), invisible outside', async () => {
    const base = await tmpDir();
    const mnt = path.join(base, 'mnt');
    await fsp.mkdir(mnt);
    const store = await fileStore(base, 'nsvol');
    const mountJs = path.join(DIST, 'src', 'fuse', 'mount.js');
    const controlJs = path.join(DIST, 'src', 'fuse', 'control.js');
    const script = `
      import { mount, unmount } from ${JSON.stringify(mountJs)};
      import { controlRequest } from ${JSON.stringify(controlJs)};
      import { execFile } from 'node:child_process';
      import fs from 'node:fs/promises';
      const run = (c) => new Promise((res) => execFile('bash', ['-c', c], (e, o) => res(o)));
      await mount({ volume: 'nsvol', mountpoint: ${JSON.stringify(mnt)}, store: ${JSON.stringify(store)}, logFile: ${JSON.stringify(path.join(base, 'log'))} });
      await run('printf inside > ${mnt}/f');
      await fs.writeFile(${JSON.stringify(path.join(base, 'ready'))}, 'x');
      // Wait for the outer test to look, then check status and unmount.
      for (let i = 0; i < 200; i++) { try { await fs.access(${JSON.stringify(path.join(base, 'looked'))}); break; } catch { await new Promise((r) => setTimeout(r, 50)); } }
      const st = await controlRequest(${JSON.stringify(mnt)}, 'status');
      const content = await run('cat ${mnt}/f');
      const r = await unmount(${JSON.stringify(mnt)});
      console.log(JSON.stringify({ volume: st.volume, content, committed: r.result.commit?.committed ?? false }));
    `;
    await fsp.writeFile(path.join(base, 'ns.mjs'), script);
    const child = sh(`unshare --mount --propagation private ${q(process.execPath)} ${q(path.join(base, 'ns.mjs'))}`, { timeoutMs: 60_000 });
    for (let i = 0; i < 200; i++) {
      if (
        await fsp.access(path.join(base, 'ready')).then(
          () => true,
          () => false,
        )
      )
        break;
      await new Promise((r) => setTimeout(r, 50));
    }
    // Outside the namespace the directory is not a mount.
    assert.ok(!(await readMounts()).some((e) => e.mountpoint === mnt));
    assert.deepEqual(await fsp.readdir(mnt), []);
    await fsp.writeFile(path.join(base, 'looked'), 'x');
    const r = await child;
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout.trim()), { volume: 'nsvol', content: 'inside', committed: true });
  });
});

describe('main.js daemon entry', () => {
  it('rejects a bad config with INVALID_ARGUMENT on its report line', async () => {
    const r = await nodeScript(`
      import { execFile } from 'node:child_process';
      execFile(process.execPath, [${JSON.stringify(path.join(DIST, 'src', 'fuse', 'main.js'))}, '{"volume":1}'], (e, out) => console.log(out));`);
    const report = JSON.parse(r.trim().split('\n')[0]);
    assert.equal(report.event, 'error');
    assert.equal(report.error.code, 'INVALID_ARGUMENT');
  });
});
