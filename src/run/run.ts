/**
 * `cairn run`: a command in its own container — a private mount namespace — with volumes
 * mounted, Modal-function style: it starts on the latest committed state, commits in the
 * background, and commits once more when the command exits.
 *
 * The outer half (`runInContainer`, in the caller's process) checks every spec and volume
 * before anything starts, then starts `unshare --mount --propagation private` running the inner
 * half (inner.ts), forwarding signals to it and returning its exit code. The inner half mounts,
 * runs the command, makes the final commits and unmounts.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { CairnError } from '../errors.js';
import { openStore } from '../store/open.js';
import { Catalog } from '../volume/catalog.js';
import { type VolumeSpec, parseVolumeSpecs } from './spec.js';

export interface RunOptions {
  /** `-v` values: `VOLUME:/path[:ro]`. */
  volumes: string[];
  command: string[];
  commitIntervalSec?: number;
  workdir?: string;
  store?: string;
  /** Create missing volumes instead of failing. */
  createIfMissing?: boolean;
}

/** What the inner half is started with (JSON in argv). */
export interface InnerConfig {
  mounts: VolumeSpec[];
  command: string[];
  commitIntervalSec: number;
  workdir?: string;
  store?: string;
}

const osSignals = constants.signals as Record<string, number>;
const INNER_JS = fileURLToPath(new URL('./inner.js', import.meta.url));
const FORWARDED: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

/** Checks specs and volumes; throws a typed error before anything starts. */
export async function prepareRun(o: RunOptions): Promise<InnerConfig> {
  if (!Array.isArray(o.command) || o.command.length === 0 || !o.command[0]) {
    throw new CairnError('INVALID_ARGUMENT', 'no command to run', { hint: 'cairn run -v VOL:/data -- COMMAND [ARGS...]' });
  }
  const mounts = parseVolumeSpecs(o.volumes ?? []);
  const interval = o.commitIntervalSec ?? 5;
  if (!Number.isFinite(interval) || interval < 0) {
    throw new CairnError('INVALID_ARGUMENT', `bad commit interval ${o.commitIntervalSec}`, { hint: 'seconds >= 0 (0 disables background commits)' });
  }
  if (o.workdir !== undefined && !o.workdir.startsWith('/')) {
    throw new CairnError('INVALID_ARGUMENT', `the workdir must be absolute: ${o.workdir}`, { path: o.workdir });
  }
  if (mounts.length > 0) {
    const store = await openStore(o.store);
    try {
      const catalog = new Catalog(store);
      for (const m of mounts) {
        if (o.createIfMissing) await catalog.create(m.volume, { allowExisting: true });
        else await catalog.lookup(m.volume);
      }
    } finally {
      await store.close();
    }
  }
  return { mounts, command: o.command, commitIntervalSec: interval, ...(o.workdir ? { workdir: o.workdir } : {}), ...(o.store ? { store: o.store } : {}) };
}

/**
 * Runs a command in a private mount namespace with volumes mounted; resolves with its exit code
 * (128 + signal number when it was killed by a signal).
 * @example const code = await runInContainer({ volumes: ['data:/data'], command: ['sh', '-c', 'ls /data'] });
 */
export async function runInContainer(o: RunOptions): Promise<number> {
  // Signals that arrive before the container exists stop the run before it starts.
  let early: NodeJS.Signals | undefined;
  const before = (sig: NodeJS.Signals) => (early ??= sig);
  for (const s of FORWARDED) process.on(s, before);
  let cfg: InnerConfig;
  try {
    cfg = await prepareRun(o);
  } finally {
    for (const s of FORWARDED) process.off(s, before);
  }
  if (early) return 128 + (osSignals[early] ?? 1);
  const userns = typeof process.getuid === 'function' && process.getuid() !== 0 ? ['--user', '--map-root-user'] : [];
  const child = spawn('unshare', [...userns, '--mount', '--propagation', 'private', '--', process.execPath, INNER_JS, JSON.stringify(cfg)], {
    stdio: 'inherit',
    env: process.env,
  });
  const forward = (sig: NodeJS.Signals) => child.kill(sig);
  for (const s of FORWARDED) process.on(s, forward);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once('error', (err) =>
        reject(new CairnError('UNAVAILABLE', `cannot start a mount namespace: ${err.message}`, { hint: 'cairn run needs unshare (util-linux) and CAP_SYS_ADMIN or user namespaces' }, { cause: err })),
      );
      child.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? (osSignals[signal] ?? 1) : 1)));
    });
  } finally {
    for (const s of FORWARDED) process.off(s, forward);
  }
}
