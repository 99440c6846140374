/**
 * Process entry of a mount daemon: `node dist/src/fuse/main.js '<json config>'` (or the config in
 * `$CAIRN_MOUNT_CONFIG`). Opens the session with the volume layer's `openSession`, mounts it with
 * `runDaemon`, then reports on stdout with one line (the protocol of util/child.ts):
 *
 *   {"event":"ready","pid":..,"volume":..,"mountpoint":..,"device":"0:55"}
 *   {"event":"error","error":{"code":..,"message":..,"context":{..}}}
 *
 * and nothing more on stdout afterwards (the parent may close the pipe); logs go to stderr.
 * The process exits when the mount is gone: 0 after a clean shutdown, 1 if the final commit failed.
 */
import { pathToFileURL } from 'node:url';
import { CairnError, describeError, isCairnError } from '../errors.js';
import { isEntry, reportError, reportReady } from '../util/child.js';
import type { FsSession } from '../format/types.js';
import { runDaemon, stderrLogger, type Logger, type MountHandle } from './daemon.js';

/** What a daemon is started with (JSON). */
export interface DaemonConfig {
  volume: string;
  mountpoint: string;
  /** Store URL (default: the volume layer's default, `$CAIRN_STORE` or the embedded file store). */
  store?: string;
  readOnly?: boolean;
  commitIntervalSec?: number;
  allowOther?: boolean;
  attrTimeoutSec?: number;
  entryTimeoutSec?: number;
  fuseTimeoutMs?: number;
  /** Mount over a non-empty directory. */
  nonEmpty?: boolean;
  /** fsync a written file's session data on close (default true). */
  fsyncOnClose?: boolean;
  /** The mount moves to a container's mount namespace (see DaemonOptions.movedAway). */
  movedAway?: boolean;
  /**
   * Module (path or URL) exporting `openSession`; default the volume layer (`../volume/index.js`).
   * Tests point it at an in-memory session factory.
   */
  sessionModule?: string;
  /** Passed through to `openSession` as extra options. */
  sessionOptions?: Record<string, unknown>;
}

/** A session as the daemon needs it from `openSession`. */
export type DaemonSession = FsSession & { volumeName?: string; status?(): object };

/** The signature the daemon expects of the volume layer. */
export type OpenSession = (opts: {
  volume: string;
  store?: string;
  readOnly: boolean;
  mountpoint: string;
  [extra: string]: unknown;
}) => Promise<DaemonSession>;

/** Parses and checks a daemon config (INVALID_ARGUMENT when unusable). */
export function parseConfig(raw: string | undefined): DaemonConfig {
  const bad = (why: string): never => {
    throw new CairnError('INVALID_ARGUMENT', `bad daemon config: ${why}`, { hint: 'start mounts with `cairn mount VOLUME DIR`' });
  };
  if (!raw) bad('pass a JSON config as the first argument or in $CAIRN_MOUNT_CONFIG');
  let cfg: DaemonConfig;
  try {
    cfg = JSON.parse(raw!) as DaemonConfig;
  } catch {
    return bad('not JSON');
  }
  if (!cfg || typeof cfg.volume !== 'string' || !cfg.volume) bad('"volume" is required');
  if (typeof cfg.mountpoint !== 'string' || !cfg.mountpoint) bad('"mountpoint" is required');
  return cfg;
}

async function loadOpenSession(spec?: string): Promise<OpenSession> {
  const target = spec
    ? spec.startsWith('file:') ? spec : pathToFileURL(spec).href
    : new URL('../volume/index.js', import.meta.url).href;
  const mod = (await import(target)) as { openSession?: OpenSession };
  if (typeof mod.openSession !== 'function') {
    throw new CairnError('UNSUPPORTED', `${target} does not export openSession`, { hint: 'build the volume layer (npm run build)' });
  }
  return mod.openSession;
}

/**
 * Opens the session and mounts it, in this process.
 *
 * @example
 *   const h = await startDaemon({ volume: 'vol', mountpoint: '/mnt/vol', commitIntervalSec: 5 });
 *   await h.closed;
 */
export async function startDaemon(cfg: DaemonConfig, o: { onLog?: Logger; handleSignals?: boolean } = {}): Promise<MountHandle> {
  const openSession = await loadOpenSession(cfg.sessionModule);
  const readOnly = !!cfg.readOnly;
  const session = await openSession({
    ...(cfg.sessionOptions ?? {}),
    volume: cfg.volume,
    ...(cfg.store ? { store: cfg.store } : {}),
    readOnly,
    mountpoint: cfg.mountpoint,
  });
  try {
    return await runDaemon({
      session,
      mountpoint: cfg.mountpoint,
      volumeName: session.volumeName ?? cfg.volume,
      readOnly: readOnly || session.readOnly,
      commitIntervalSec: cfg.commitIntervalSec,
      ...(session.status ? { status: () => session.status!() } : {}),
      onLog: o.onLog ?? stderrLogger,
      handleSignals: o.handleSignals ?? true,
      allowOther: cfg.allowOther,
      attrTimeoutSec: cfg.attrTimeoutSec,
      entryTimeoutSec: cfg.entryTimeoutSec,
      fuseTimeoutMs: cfg.fuseTimeoutMs,
      nonEmpty: cfg.nonEmpty,
      fsyncOnClose: cfg.fsyncOnClose,
      movedAway: cfg.movedAway,
    });
  } catch (err) {
    await session.close().catch(() => undefined);
    throw err;
  }
}

/** Runs a daemon process until its mount is gone. */
export async function main(argv = process.argv): Promise<number> {
  let handle: MountHandle;
  try {
    const cfg = parseConfig(argv[2] ?? process.env.CAIRN_MOUNT_CONFIG);
    handle = await startDaemon(cfg);
  } catch (err) {
    stderrLogger('error', `mount failed: ${describeError(err)}`, { code: isCairnError(err) ? err.code : 'IO' });
    reportError(err, 'the mount failed');
    return 1;
  }
  reportReady({ pid: process.pid, volume: handle.volumeName, mountpoint: handle.mountpoint, device: handle.device });
  const result = await handle.closed;
  return result.error ? 1 : 0;
}

if (isEntry(import.meta.url)) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      stderrLogger('error', `daemon crashed: ${err instanceof Error ? err.stack : String(err)}`);
      process.exit(2);
    },
  );
}
