/**
 * The composition root of a mount: the one place where a session is opened and mounted. The
 * daemon process (main.ts), a foreground `mount()`, and `cairn run`'s inner half all start their
 * mounts here.
 *
 * Invariants: the session is opened from the MountConfig by the volume layer's `openSession`
 * (imported statically; only a programmatic caller may pass its own `open`); a session whose
 * mount fails is closed before the error reaches the caller.
 */
import type { FsSession } from '../format/types.js';
import { openSession as openVolumeSession } from '../volume/open.js';
import type { MountConfig } from './config.js';
import { runDaemon, stderrLogger, type Logger, type MountHandle } from './daemon.js';

/** A session as the daemon needs it from `openSession`. */
export type DaemonSession = FsSession & { volumeName?: string; status?(): object };

export interface StartOptions {
  onLog?: Logger;
  /** Shut down on SIGTERM/SIGINT (default true; false where the caller handles signals). */
  handleSignals?: boolean;
  /** Opens the session instead of `openSession(config)` (`cairn run` picks its own directory). */
  open?: () => Promise<DaemonSession>;
}

/** Opens the session a MountConfig names. */
async function openFor(cfg: MountConfig): Promise<DaemonSession> {
  return openVolumeSession({
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
