/**
 * The lifecycle of a mount: mounts a session with FUSE, serves the control socket, runs the
 * commit scheduler (scheduler.ts) and answers control requests (control-handler.ts), and shuts
 * down cleanly (unmount, final commit, session close) on SIGTERM/SIGINT, an `unmount` request,
 * or when someone unmounts the directory from outside.
 *
 * Invariants:
 * - shutdown runs once; the kernel stops sending operations (unmount) before the final commit,
 *   so nothing written through the mount is left out of it;
 * - a signal during shutdown never kills the process (the handler is held until it is over);
 * - nothing here blocks the event loop, which also serves the kernel.
 */
import { promises as fsp } from 'node:fs';
import { CairnError, asCairnError, describeError, isNoSpace } from '../errors.js';
import type { CommitResult, FsSession, ReloadResult } from '../format/types.js';
import { tuneMalloc } from '../util/addon.js';
import { holdSignals, SHUTDOWN_SIGNALS } from '../util/signals.js';
import { MountMetrics, serveMetrics, type ChunkFigures, type MetricsServer, type NativeReadFigures } from '../util/metrics.js';
import { createOps } from './adapter.js';
import { chooseBinding, mountBinding } from './binding.js';
import type { MountConfig } from './config.js';
import { startControlServer, type ControlRequest, type ControlServer } from './control.js';
import { ControlFile } from './control-file.js';
import { controlHandler, mountStatus, type ControlContext } from './control-handler.js';
import { withControlFile } from './control-fuse.js';
import { Freshness } from './freshness.js';
import { HandleTable, wantsWrite } from './handles.js';
import { canonicalPath, ownMount, readMounts, socketNameFor } from './mountinfo.js';
import { syncMount, wantsWriteback } from './writeback.js';
import { CommitScheduler } from './scheduler.js';
import { withMetrics } from './metered.js';
import type { CloseResult } from './control-handler.js';
import { stderrLogger, type Logger } from './log.js';
import { chunkSourceOf } from './lowlevel-nread.js';

export type { CloseResult } from './control-handler.js';
export { stderrLogger, type Logger, type LogLevel } from './log.js';

/** What the process running a daemon gives it besides the session and the config. */
export interface DaemonRuntime {
  onLog?: Logger;
  /** Shut down on SIGTERM/SIGINT (default true). */
  handleSignals?: boolean;
}

export interface MountHandle {
  readonly volumeName: string;
  readonly mountpoint: string;
  /** `major:minor` of the mount. */
  readonly device: string;
  /** Abstract control socket name (leading NUL). */
  readonly socket: string;
  /** The mount's open-file table. */
  readonly handles: HandleTable;
  /** Resolves once the mount is gone, the final commit is done and the session is closed. */
  readonly closed: Promise<CloseResult>;
  commit(): Promise<CommitResult>;
  reload(): Promise<ReloadResult>;
  status(): Promise<Record<string, unknown>>;
  /** Shuts down (idempotent). With open files and no `force`, VOLUME_BUSY. */
  close(reason?: string, opts?: { force?: boolean }): Promise<CloseResult>;
}

/** The chunk layer's counts, from a session's status (zeros when it reports none). */
function chunkFigures(status: object | undefined): ChunkFigures {
  const c = (status as { chunks?: { storeGets?: number; cache?: { hits?: number; misses?: number } | null } } | undefined)?.chunks;
  return { storeGets: c?.storeGets ?? 0, cacheHits: c?.cache?.hits ?? 0, cacheMisses: c?.cache?.misses ?? 0 };
}

/** Refuses a non-empty mount point unless `nonEmpty` (libfuse says only "fuse failed"). */
async function checkEmpty(mountpoint: string, volumeName: string): Promise<void> {
  const names = await fsp.readdir(mountpoint).catch(() => [] as string[]);
  if (names.length) {
    throw new CairnError('INVALID_ARGUMENT', `${mountpoint} is not empty (${names.length} entries)`, {
      volume: volumeName,
      path: mountpoint,
      hint: 'mount on an empty directory, or pass nonEmpty to hide what is there while mounted',
    });
  }
}

/**
 * Mounts `session` as `config` says and serves it until shutdown. The session's `volumeName`
 * (when it has one) names the mount; a read-only session makes a read-only mount.
 *
 * @example
 *   const h = await runDaemon(session, { volume: 'vol', mountpoint: '/mnt/vol', commitIntervalSec: 5 });
 *   await h.closed; // after SIGTERM, `cairn unmount`, or fusermount -u
 */
/** Attributes the addon answers ENODATA for while no entry has any (lowlevel.ts: capsAbsent). */
const CAPS = ['security.capability', 'security.selinux'];

export async function runDaemon(
  session: FsSession & { volumeName?: string; status?(): object },
  config: MountConfig,
  runtime: DaemonRuntime = {},
): Promise<MountHandle> {
  const log: Logger = runtime.onLog ?? stderrLogger;
  const volumeName = session.volumeName ?? config.volume;
  const readOnly = !!config.readOnly || session.readOnly;
  const mountpoint = await canonicalPath(config.mountpoint);
  const handles = new HandleTable();
  const startedAt = new Date().toISOString();
  const freshness = new Freshness();
  const metrics = new MountMetrics({
    volume: volumeName,
    chunks: () => chunkFigures(session.status?.()),
    native: () => nativeReads(),
  });
  // The binding's native reads, once it is mounted (metrics may be read before).
  let nativeReads: () => NativeReadFigures | undefined = () => undefined;
  let attrsChanged = (): void => undefined;
  // The kernel's writeback cache (native binding only): its cached writes go to the session first.
  let writeback = false;
  const writtenBack = async (): Promise<void> => {
    // Files open for writing, by their names now (one removed while open has none to sync by).
    const lookup = session.lookup?.bind(session);
    const named = (p: string): boolean => !lookup || lookup(p) !== undefined;
    const writers = (): string[] => handles.own().flatMap((h) => (wantsWrite(h.flags) && named(h.path) ? [h.path] : []));
    const err = writeback ? await syncMount(mountpoint, writers()) : undefined;
    if (err) log('warn', err);
  };
  const scheduler = new CommitScheduler(session, {
    beforeSync: writtenBack,
    // A reload changed the view outside any request: the addon's attributes go (native/nattr.h). A
    // commit publishes the view as it is (every attribute stays: test/session/commit-paths.test.ts).
    onSync: (kind, seconds, ok) => (kind === 'reload' && attrsChanged(), metrics.sync(kind, seconds, ok)),
    volumeName,
    mountpoint,
    handles,
    log,
    afterReload: async (changed, paths) => {
      // fuse-native keeps pages while size and mtime stay (auto_cache): a file others changed
      // is reported newer. The native binding drops exactly what changed from the kernel.
      if (!binding.native) freshness.changed(paths);
      // Entries that gained file capabilities: the addon stops answering their getxattr itself.
      const has = session.hasXattr?.bind(session);
      if (has) binding.native?.capsAbsent((was) => (changed ? was && !CAPS.some((n) => has(n, changed)) : !CAPS.some((n) => has(n))));
      return binding.native?.refresh(changed?.map((p) => (p.startsWith('/') ? p : `/${p}`)));
    },
  });
  const logError = (op: string, p: string, err: unknown): void =>
    isNoSpace(err)
      ? log('warn', `${op} ${p}: no space left on the local disk (ENOSPC)`, { error: String(err) })
      : log('error', `${op} ${p} failed`, { error: err instanceof Error ? err.stack : String(err) });

  // --- mount ----------------------------------------------------------------------------
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  // The control file (.cairn-control) answers through the same handler as the socket (from the
  // moment the mount is known: until then, UNAVAILABLE).
  // eslint-disable-next-line prefer-const -- set once the mount is known; the control file reads it before
  let handle: ((req: ControlRequest) => Promise<unknown>) | undefined;
  const controlFile = new ControlFile((op) =>
    handle
      ? handle({ op })
      : Promise.reject(
          new CairnError('UNAVAILABLE', `the daemon of ${mountpoint} is starting`, { path: mountpoint, hint: 'retry in a moment' }),
        ),
  );
  const ops = withControlFile(
    withMetrics(createOps(session, config, { uid, gid, handles, freshness, onError: logError, writeback: () => writeback }), metrics),
    controlFile,
    { uid, gid },
  );
  if (!config.nonEmpty) await checkEmpty(mountpoint, volumeName);
  tuneMalloc(); // a mount daemon brings chunks in: keep freed buffers (util/addon.ts)
  const binding = await mountBinding(chooseBinding(config.binding), ops, {
    mountpoint,
    volumeName,
    readOnly,
    nonEmpty: !!config.nonEmpty,
    allowOther: !!config.allowOther,
    fuseTimeoutMs: config.fuseTimeoutMs ?? 30_000,
    ...(config.attrTimeoutSec !== undefined ? { attrTimeoutSec: config.attrTimeoutSec } : {}),
    ...(config.entryTimeoutSec !== undefined ? { entryTimeoutSec: config.entryTimeoutSec } : {}),
    handles,
    chunkSource: chunkSourceOf(session),
    writeback: wantsWriteback(config) && !readOnly,
    // The kernel ended the mount (unmounted from outside); the watcher would notice it too.
    onExit: () =>
      setImmediate(() => {
        if (!core) void shutdown('unmounted externally', true);
      }),
    onError: logError,
  });
  writeback = wantsWriteback(config) && !readOnly && binding.name === 'native';
  if (wantsWriteback(config) && !writeback && !readOnly) log('warn', 'the writeback cache needs the native binding: it is off');
  nativeReads = () => binding.native?.nreadStats();
  attrsChanged = () => binding.native?.attrsChanged();
  // Reported mtimes that move after a reload are fuse-native's answer to stale pages only.
  if (binding.native) freshness.stop();
  // The kernel asks for security.capability before every write, ls -l for security.selinux of every
  // entry: while no entry has either (a scan of the view each, here; then the changed paths of each
  // reload), the addon answers them (lowlevel.ts).
  if (session.hasXattr) binding.native?.capsAbsent(() => !CAPS.some((n) => session.hasXattr!(n)));
  if (binding.note) log('warn', binding.note);

  let own = await ownMount(mountpoint, volumeName);
  for (let i = 0; !own && i < 50; i++) {
    await new Promise((r) => setTimeout(r, 20));
    own = await ownMount(mountpoint, volumeName);
  }
  if (!own) {
    await binding.unmount().catch(() => undefined);
    throw new CairnError('IO', `mounted ${mountpoint} but cannot find it in /proc/self/mountinfo`, {
      volume: volumeName,
      path: mountpoint,
    });
  }
  const device = own.device;
  await binding.tune(device);
  const socket = socketNameFor(device);

  // --- shutdown ------------------------------------------------------------------------
  let core: Promise<CloseResult> | undefined;
  let resolveClosed!: (r: CloseResult) => void;
  const closed = new Promise<CloseResult>((r) => (resolveClosed = r));
  let control: ControlServer | undefined;
  let metricsServer: MetricsServer | undefined;
  let watchTimer: NodeJS.Timeout | undefined;
  // Held until shutdown is over: a second signal during the final commit must not kill the process.
  const signals =
    runtime.handleSignals === false
      ? undefined
      : holdSignals((sig) => {
          const what = core ? 'already shutting down, finishing the final commit' : `unmounting ${mountpoint}`;
          log('info', `${sig}: ${what}`);
          void shutdown(sig, true);
        }, SHUTDOWN_SIGNALS);

  function shutdown(reason: string, force: boolean): Promise<CloseResult> {
    if (!core) {
      if (!force && handles.size) {
        // Releases of files closed just before still on their way: wait for them, then decide.
        return handles
          .settle()
          .then(() =>
            handles.size
              ? Promise.reject(handles.busy('unmount', { volume: volumeName, mountpoint }, 'close the files, or unmount with force'))
              : shutdown(reason, force),
          );
      }
      core = closeCore(reason);
      void core.then(async (r) => {
        await control?.close().catch(() => undefined);
        await metricsServer?.close().catch(() => undefined);
        signals?.release();
        resolveClosed(r);
      });
    }
    return core;
  }

  async function closeCore(reason: string): Promise<CloseResult> {
    const result: CloseResult = { reason };
    scheduler.stop();
    clearInterval(watchTimer);
    // Stop the kernel first so the final commit holds every write made through the mount (with
    // the writeback cache: the kernel's cached writes first, while the mount still answers them).
    if (reason !== 'unmounted externally') await writtenBack();
    writeback = false; // the final commit below runs after the unmount: nothing left to sync (sync -f would sync the disk under it)
    await binding.unmount().catch((err: Error) => {
      if (reason !== 'unmounted externally') log('warn', `unmount of ${mountpoint} reported: ${err.message}`);
    });
    // The device number (and so the socket name) may go to a new mount now: free the name.
    control?.stopListening();
    try {
      if (!readOnly && session.pendingCount() > 0) result.commit = await scheduler.commit(`shutdown (${reason})`);
    } catch (err) {
      const e = asCairnError(err, 'IO', 'final commit failed');
      result.error = { code: e.code, message: describeError(e) };
      log('error', `final commit failed: ${describeError(e)}`, { code: e.code });
    }
    await session.close().catch((err: unknown) => log('warn', `session close failed: ${String(err)}`));
    log('info', `unmounted ${mountpoint}`, { reason });
    return result;
  }

  // --- control ------------------------------------------------------------------------
  const isMounted = async (): Promise<boolean> =>
    (await readMounts().catch(() => [])).some((e) => e.device === device && e.mountpoint === mountpoint);
  const ctx: ControlContext = {
    session,
    config,
    volumeName,
    mountpoint,
    readOnly,
    device,
    binding,
    writebackCache: writeback,
    handles,
    scheduler,
    startedAt,
    metrics,
    metricsUrl: () => metricsServer?.url,
    closing: () => core,
    shutdown,
    stillMounted: async () => !!config.movedAway || (await isMounted()),
  };
  handle = controlHandler(ctx);
  try {
    control = await startControlServer(socket, handle);
  } catch (err) {
    await binding.unmount().catch(() => undefined);
    signals?.release();
    const why = `cannot listen on the control socket of ${mountpoint}: ${String(err)}`;
    throw new CairnError('UNAVAILABLE', why, { volume: volumeName, path: mountpoint }, { cause: err });
  }

  if (config.metrics !== undefined) {
    try {
      metricsServer = await serveMetrics(metrics, config.metrics);
    } catch (err) {
      control.close().catch(() => undefined);
      await binding.unmount().catch(() => undefined);
      signals?.release();
      throw err;
    }
    log('info', `metrics at ${metricsServer.url}`);
  }

  // --- background work ---------------------------------------------------------------
  if (!readOnly) scheduler.start(config.commitIntervalSec ?? 0);
  if (!config.movedAway) {
    watchTimer = setInterval(() => {
      readMounts()
        .then((all) => {
          if (!core && !all.some((e) => e.device === device && e.mountpoint === mountpoint)) {
            log('warn', `${mountpoint} was unmounted from outside; committing and exiting`);
            void shutdown('unmounted externally', true);
          }
        })
        .catch(() => undefined);
    }, config.watchIntervalMs ?? 1000);
  }
  const commitIntervalSec = config.commitIntervalSec ?? 0;
  log('info', `mounted ${volumeName} at ${mountpoint}`, { device, binding: binding.name, readOnly, commitIntervalSec, writeback });

  return {
    volumeName,
    mountpoint,
    device,
    socket,
    handles,
    closed,
    commit: () => scheduler.commit('api'),
    reload: () => scheduler.reload(),
    status: () => mountStatus(ctx),
    close: (reason = 'close', o = {}) => shutdown(reason, o.force ?? true),
  };
}
