/**
 * Starting and stopping mount daemons: what `cairn mount` / `cairn unmount` call.
 *
 * `mount` spawns `node dist/src/fuse/main.js CONFIG` detached (its own session, stderr to a log
 * file), waits for its ready/error report (util/child.ts), and returns; the daemon keeps running after
 * the caller exits. `unmount` asks the daemon over the control socket (it unmounts, makes the
 * final commit and exits) and falls back to `fusermount -u` when no daemon answers.
 *
 * Invariants: mount() either returns with the directory mounted or throws the daemon's own typed
 * error; unmount() returns only once the mount is gone from this mount namespace.
 */
import { execFile, type SpawnOptions } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cairnHome } from '../config.js';
import { CairnError, isCairnError } from '../errors.js';
import { spawnNode, waitReport } from '../util/child.js';
import { checkVolumeName } from '../format/paths.js';
import { controlRequest } from './control.js';
import type { CloseResult, MountHandle } from './daemon.js';
import type { MountConfig } from './config.js';
import { startMount } from './start.js';
import { cairnMountAt, canonicalPath, readMounts } from './mountinfo.js';

/** How a mount is started; the rest is its MountConfig, passed to the daemon unchanged. */
export interface LaunchOptions {
  /** Run the daemon in this process instead of a detached one (`closed` tells when it ends). */
  foreground?: boolean;
  /** Where a detached daemon logs (default `$CAIRN_HOME/logs/mount-<volume>-<time>.log`). */
  logFile?: string;
  /** How long to wait for the daemon to report (default 60 s). */
  readyTimeoutMs?: number;
  /** Extra environment for the daemon process. */
  env?: NodeJS.ProcessEnv;
}

/** What `mount()` takes: the mount's config and how to start it. */
export type MountOptions = MountConfig & LaunchOptions;

export interface MountResult {
  volume: string;
  mountpoint: string;
  pid: number;
  device: string;
  logFile?: string;
  /** Foreground mounts only: resolves when the mount has shut down. */
  closed?: Promise<CloseResult>;
  /** Foreground mounts only: the in-process daemon. */
  handle?: MountHandle;
}

const MAIN_JS = fileURLToPath(new URL('./main.js', import.meta.url));
/**
 * Node flags of a spawned mount daemon. `--initial-heap-size=64` (MB): a daemon streaming chunks
 * keeps a small heap (~14 MB), so V8 ran a full mark-compact every ~15 MiB read (62–65 per cold
 * GiB from Ceph RGW); starting the old generation at 64 MB cuts them to 34–36 and the daemon's
 * CPU per cold GiB by ~10–15 % (7.0–7.25 vs 8.0–8.7 s, alternating runs) for ~12 MB more peak RSS.
 * `--max-semi-space-size=4` (MB; Node 20's default grows them to 16): the young generation stays
 * small, and so does the daemon's peak RSS: with 1,000,000 kernel inodes after `ls -R`, 271–272
 * vs 295–296 MiB (2 alternating pairs), with no cost measured on `cp -r` of 10,000 files (daemon
 * CPU 7.0–8.5 vs 7.6–7.7 s over 5 and 3 runs, leaving out one 12 s host stall on each side) or
 * a cold 1 GiB read from the file store (3.14–3.18 vs 3.07–3.12 CPU s, 3 pairs).
 * A foreground mount runs in its caller's process, with the caller's flags.
 */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--initial-heap-size=64', '--max-semi-space-size=4'];

async function checkMountpoint(dir: string): Promise<void> {
  const st = await fsp.stat(dir).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    if (err.code === 'ENOTCONN') {
      // A mount whose daemon died: detach it and use the directory.
      await fusermount(dir, true).catch(() => undefined);
      return fsp.stat(dir);
    }
    throw new CairnError('UNAVAILABLE', `cannot use ${dir} as a mount point: ${err.message}`, {
      path: dir,
      hint: 'if a dead mount is there, run `fusermount -uz DIR`',
    });
  });
  if (st === null) {
    await fsp.mkdir(dir, { recursive: true });
    return;
  }
  if (!st.isDirectory())
    throw new CairnError('NOT_A_DIRECTORY', `${dir} is not a directory`, { path: dir, hint: 'mount on an (empty) directory' });
  const mounts = await readMounts();
  const there = mounts.filter((m) => m.mountpoint === dir).pop();
  if (there) {
    throw new CairnError('ALREADY_EXISTS', `${dir} is already a mount point (${there.source}, ${there.fstype})`, {
      path: dir,
      hint: 'unmount it first (`cairn unmount DIR`) or choose another directory',
    });
  }
}

/**
 * Mounts a volume at a directory.
 *
 * @example
 *   const m = await mount({ volume: 'weights', mountpoint: '/mnt/weights', readOnly: true });
 *   // ... plain file I/O under /mnt/weights from other processes ...
 *   await unmount('/mnt/weights');
 */
export async function mount(o: MountOptions): Promise<MountResult> {
  checkVolumeName(o.volume);
  const mountpoint = await canonicalPath(o.mountpoint);
  await checkMountpoint(mountpoint);
  const { foreground, logFile: givenLog, readyTimeoutMs, env, ...config } = o;
  const cfg: MountConfig = { ...config, mountpoint, commitIntervalSec: config.commitIntervalSec ?? 5 };

  if (foreground) {
    const handle = await startMount(cfg);
    return { volume: handle.volumeName, mountpoint, pid: process.pid, device: handle.device, closed: handle.closed, handle };
  }

  const logFile = givenLog ?? path.join(cairnHome(), 'logs', `mount-${o.volume}-${new Date().toISOString().replace(/[:.]/g, '-')}.log`);
  await fsp.mkdir(path.dirname(logFile), { recursive: true });
  const log = await fsp.open(logFile, 'a');
  try {
    const opts: SpawnOptions = { detached: true, stdio: ['ignore', 'pipe', log.fd], env: { ...process.env, ...env } };
    const child = spawnNode(MAIN_JS, cfg, opts, DAEMON_NODE_FLAGS);
    try {
      // The daemon's own error gets `logFile` too: libfuse's own complaint, if any, is there.
      const ready = await waitReport(child, {
        name: 'the mount daemon',
        code: 'UNAVAILABLE',
        context: { logFile },
        childContext: { logFile },
        hint: `see ${logFile}`,
        timeoutMs: readyTimeoutMs ?? 60_000,
        tail: async () => (await fsp.readFile(logFile, 'utf8').catch(() => '')).trim().split('\n').slice(-5).join('\n'),
      });
      return { volume: String(ready.volume), mountpoint, pid: Number(ready.pid), device: String(ready.device), logFile };
    } finally {
      child.stdout?.destroy();
      child.unref();
    }
  } finally {
    await log.close();
  }
}

export interface UnmountOptions {
  /** Unmount even with open files (they fail afterwards). Default false: VOLUME_BUSY. */
  force?: boolean;
  /** How long to wait for the daemon (default 30 min: the final commit may upload a lot). */
  timeoutMs?: number;
}

/**
 * Unmounts a Cairn mount: the daemon unmounts, commits what is pending and exits. When no
 * daemon answers (it died), the mount is detached with `fusermount -u`.
 *
 * @example
 *   const r = await unmount('/mnt/vol'); // { mountpoint, commit?: CommitResult, viaDaemon: true }
 */
export async function unmount(
  dir: string,
  o: UnmountOptions = {},
): Promise<{ mountpoint: string; viaDaemon: boolean; result?: CloseResult }> {
  const m = await cairnMountAt(dir);
  try {
    const result = (await controlRequest(m.mountpoint, 'unmount', { timeoutMs: o.timeoutMs, args: { force: !!o.force } })) as CloseResult;
    await waitGone(m.mountpoint, m.device, 10_000);
    return { mountpoint: m.mountpoint, viaDaemon: true, result };
  } catch (err) {
    if (!isCairnError(err, 'UNAVAILABLE')) throw err;
  }
  const stillThere = (await readMounts()).some((e) => e.mountpoint === m.mountpoint && e.device === m.device);
  if (stillThere) await fusermount(m.mountpoint, !!o.force);
  await waitGone(m.mountpoint, m.device, 10_000);
  return { mountpoint: m.mountpoint, viaDaemon: false };
}

/** `fusermount -u DIR` (`-uz`, lazy, when forced). */
export function fusermount(dir: string, lazy = false): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('fusermount', [lazy ? '-uz' : '-u', dir], (err, _out, stderr) => {
      if (!err) return resolve();
      const busy = /busy/i.test(stderr);
      reject(
        new CairnError(busy ? 'VOLUME_BUSY' : 'IO', `fusermount -u ${dir} failed: ${stderr.trim() || err.message}`, {
          path: dir,
          hint: busy
            ? 'files are open or a process has its cwd there; close them or use force (lazy unmount)'
            : 'run it as the user who mounted, or as root',
        }),
      );
    });
  });
}

async function waitGone(mountpoint: string, device: string, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const all = await readMounts();
    if (!all.some((e) => e.mountpoint === mountpoint && e.device === device)) return;
    if (Date.now() > end) {
      throw new CairnError('IO', `${mountpoint} is still mounted ${timeoutMs} ms after unmount`, {
        path: mountpoint,
        hint: 'run `fusermount -uz DIR`',
      });
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
