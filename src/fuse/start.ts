/**
 * The composition root of a mount: the one place where a session is opened and mounted. The
 * daemon process (main.ts), a foreground `mount()`, and `cairn run`'s inner half all start their
 * mounts here.
 *
 * Invariants: the session is opened from the MountConfig (the volume layer's `openSession`,
 * imported statically; a test may name another module in `sessionModule`); a session whose mount
 * fails is closed before the error reaches the caller.
 */
import { pathToFileURL } from 'node:url';
import { CairnError } from '../errors.js';
import type { FsSession } from '../format/types.js';
import { openSession as openVolumeSession } from '../volume/open.js';
import type { MountConfig } from './config.js';
import { runDaemon, stderrLogger, type Logger, type MountHandle } from './daemon.js';

/** A session as the daemon needs it from `openSession`. */
export type DaemonSession = FsSession & { volumeName?: string; status?(): object };

/** How a mount's session is opened (the volume layer's `openSession`, or a test's). */
export type OpenSession = (opts: {
  volume: string;
  store?: string;
  readOnly: boolean;
  mountpoint: string;
  [extra: string]: unknown;
}) => Promise<DaemonSession>;

export interface StartOptions {
  onLog?: Logger;
  /** Shut down on SIGTERM/SIGINT (default true; false where the caller handles signals). */
  handleSignals?: boolean;
  /** Opens the session instead of `openSession(config)` (`cairn run` picks its own directory). */
  open?: () => Promise<DaemonSession>;
}

async function loadOpenSession(spec: string): Promise<OpenSession> {
  const target = spec.startsWith('file:') ? spec : pathToFileURL(spec).href;
  const mod = (await import(target)) as { openSession?: OpenSession };
  if (typeof mod.openSession !== 'function') {
    throw new CairnError('UNSUPPORTED', `${target} does not export openSession`, {
      hint: 'point sessionModule at a module that exports openSession',
    });
  }
  return mod.openSession;
}

/** Opens the session a MountConfig names. */
async function openFor(cfg: MountConfig): Promise<DaemonSession> {
  const open: OpenSession = cfg.sessionModule ? await loadOpenSession(cfg.sessionModule) : openVolumeSession;
  return open({
    ...(cfg.sessionOptions ?? {}),
    volume: cfg.volume,
    ...(cfg.store ? { store: cfg.store } : {}),
    readOnly: !!cfg.readOnly || cfg.seq !== undefined,
    mountpoint: cfg.mountpoint,
    ...(cfg.seq !== undefined ? { seq: cfg.seq } : {}),
    ...(cfg.sessionDir ? { sessionDir: cfg.sessionDir } : {}),
  });
}

/**
 * Opens the session of `cfg` and mounts it, in this process.
 *
 * @example
 *   const h = await startMount({ volume: 'vol', mountpoint: '/mnt/vol', commitIntervalSec: 5 });
 *   await h.closed;
 */
export async function startMount(cfg: MountConfig, o: StartOptions = {}): Promise<MountHandle> {
  const session = o.open ? await o.open() : await openFor(cfg);
  try {
    return await runDaemon(session, cfg, { onLog: o.onLog ?? stderrLogger, handleSignals: o.handleSignals ?? true });
  } catch (err) {
    await session.close().catch(() => undefined);
    throw err;
  }
}
