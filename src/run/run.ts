/**
 * `cairn run`: a command in its own container — a private mount namespace — with volumes
 * mounted, Modal-function style: it starts on the latest committed state, commits in the
 * background, and commits once more when the command exits.
 *
 * The outer half (`runInContainer`, in the caller's process) checks every spec and volume
 * before anything starts, then starts `unshare --mount --propagation private` running the inner
 * half (inner.ts), forwarding signals to it and returning its exit code. The inner half mounts,
 * runs the command, makes the final commits and unmounts. Its input is the JSON argument of
 * util/child.ts; it sends no report line (its stdio is the command's). Signals: util/signals.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir, cairnHome, defaultStoreUrl } from '../config.js';
import { CairnError } from '../errors.js';
import { openStore, parseFileUrl } from '../store/open.js';
import { Catalog } from '../format/catalog.js';
import { nodeArgs } from '../util/child.js';
import { exitStatus, holdSignals, STOP_SIGNALS } from '../util/signals.js';
import { type VolumeSpec, parseVolumeSpecs, pathsOverlap } from './spec.js';

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

const INNER_JS = fileURLToPath(new URL('./inner.js', import.meta.url));

/** Checks specs and volumes; throws a typed error before anything starts. */
export async function prepareRun(o: RunOptions): Promise<InnerConfig> {
  if (!Array.isArray(o.command) || o.command.length === 0 || !o.command[0]) {
    throw new CairnError('INVALID_ARGUMENT', 'no command to run', { hint: 'cairn run -v VOL:/data -- COMMAND [ARGS...]' });
  }
  const mounts = parseVolumeSpecs(o.volumes ?? []);
  const interval = o.commitIntervalSec ?? 5;
  if (!Number.isFinite(interval) || interval < 0) {
    throw new CairnError('INVALID_ARGUMENT', `bad commit interval ${o.commitIntervalSec}`, {
      hint: 'seconds >= 0 (0 disables background commits)',
    });
  }
  // The run's process serves its mounts and writes Cairn's state (journal, cache, a file store)
  // synchronously in places: none of that may lie on, or hide, one of its mounts.
  const storeUrl = o.store ?? defaultStoreUrl();
  const stateDirs = [cairnHome(), cacheDir(), ...(storeUrl.startsWith('file:') ? [parseFileUrl(storeUrl)] : [])];
  for (const m of mounts) {
    const state = stateDirs.find((dir) => pathsOverlap(path.resolve(dir), m.path));
    if (state) {
      throw new CairnError('INVALID_ARGUMENT', `${m.volume} at ${m.path} would hide Cairn's own state in ${state}`, {
        path: m.path,
        hint: 'mount the volume elsewhere, or move the state (CAIRN_HOME, CAIRN_CACHE_DIR, --store)',
      });
    }
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
  return {
    mounts,
    command: o.command,
    commitIntervalSec: interval,
    ...(o.workdir ? { workdir: o.workdir } : {}),
    ...(o.store ? { store: o.store } : {}),
  };
}

/**
 * Runs a command in a private mount namespace with volumes mounted; resolves with its exit code
 * (128 + signal number when it was killed by a signal).
 * @example const code = await runInContainer({ volumes: ['data:/data'], command: ['sh', '-c', 'ls /data'] });
 */
export async function runInContainer(o: RunOptions): Promise<number> {
  // One handler from start to end (never a moment without one, or a signal would kill this process
  // while the inner half still works): before the container exists a stop signal cancels the run;
  // then every signal is forwarded to the inner half, which forwards it to the command and ignores
  // it once the command has ended (its final commit is not interrupted).
  let child: ChildProcess | undefined;
  let early: NodeJS.Signals | undefined;
  const hold = holdSignals((sig) => {
    if (child) child.kill(sig);
    else if (STOP_SIGNALS.includes(sig)) early ??= sig;
  });
  try {
    const cfg = await prepareRun(o);
    if (early) return exitStatus(null, early);
    const userns = typeof process.getuid === 'function' && process.getuid() !== 0 ? ['--user', '--map-root-user'] : [];
    const inner = [process.execPath, ...nodeArgs(INNER_JS, cfg)];
    const args = [...userns, '--mount', '--propagation', 'private', '--', ...inner];
    const started = spawn('unshare', args, { stdio: 'inherit', env: process.env });
    child = started;
    return await new Promise<number>((resolve, reject) => {
      started.once('error', (err) =>
        reject(
          new CairnError(
            'UNAVAILABLE',
            `cannot start a mount namespace: ${err.message}`,
            { hint: 'cairn run needs unshare (util-linux) and CAP_SYS_ADMIN or user namespaces' },
            { cause: err },
          ),
        ),
      );
      started.once('exit', (code, signal) => resolve(exitStatus(code, signal)));
    });
  } finally {
    hold.release();
  }
}
