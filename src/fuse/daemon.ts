/**
 * The mount daemon: mounts a session with FUSE, serves the control socket, commits in the
 * background, and shuts down cleanly (unmount, final commit, session close) on SIGTERM/SIGINT,
 * an `unmount` request, or when someone unmounts the directory from outside.
 *
 * Invariants:
 * - commits and reloads never overlap (one queue);
 * - a failing background commit is logged and retried at the next tick, never fatal;
 * - shutdown runs once; the kernel stops sending operations (unmount) before the final commit,
 *   so nothing written through the mount is left out of it;
 * - nothing here blocks the event loop, which also serves the kernel.
 */
import { SerialQueue } from '../util/serial.js';
import { promises as fsp } from 'node:fs';
import { CairnError, asCairnError, describeError, isCairnError } from '../errors.js';
import type { CommitResult, FsSession, ReloadResult } from '../format/types.js';
import { createOps } from './adapter.js';
import { chooseBinding, mountBinding, type BindingName } from './binding.js';
import { Freshness } from './freshness.js';
import { startControlServer, type ControlRequest, type ControlServer } from './control.js';
import { ControlFile } from './control-file.js';
import { isControlFileName, withControlFile } from './control-fuse.js';
import { HandleTable, processesOfHandles, processesUsing } from './handles.js';
import { canonicalPath, fsnameFor, ownMount, readMounts, socketNameFor } from './mountinfo.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type Logger = (level: LogLevel, msg: string, extra?: Record<string, unknown>) => void;

export interface DaemonOptions {
  session: FsSession;
  mountpoint: string;
  volumeName: string;
  readOnly: boolean;
  /** Background commit period; 0 or undefined disables it (commits still happen on shutdown). */
  commitIntervalSec?: number;
  /** Extra status of the session (merged into the `status` answer under `session`). */
  status?: () => object;
  onLog?: Logger;
  /** Install SIGTERM/SIGINT handlers that shut the mount down (default true). */
  handleSignals?: boolean;
  /** Per-operation FUSE timeout in ms (fuse-native's `timeout`, default 30 s). */
  fuseTimeoutMs?: number;
  /**
   * Kernel attribute and entry cache, seconds. Default: long with the native binding (a reload
   * invalidates exactly what changed), 0 with fuse-native (which cannot invalidate).
   */
  attrTimeoutSec?: number;
  entryTimeoutSec?: number;
  /** Let other users reach the mount (`allow_other`). */
  allowOther?: boolean;
  /** How often to look for an unmount done from outside, ms (default 1000). */
  watchIntervalMs?: number;
  /** Mount over a directory that has entries (hiding them); refused by default. */
  nonEmpty?: boolean;
  /** See AdapterOptions.fsyncOnClose (default false). */
  fsyncOnClose?: boolean;
  /**
   * The mount is moved into another mount namespace (a container's, by the OCI hook) and then
   * leaves this one: its absence here is not an external unmount. Shut it down with SIGTERM.
   */
  movedAway?: boolean;
  /** FUSE binding (default: `$CAIRN_FUSE_BINDING`, else see binding.ts). */
  binding?: BindingName;
}

export interface CloseResult {
  reason: string;
  /** The final commit, when there was something to commit. */
  commit?: CommitResult;
  /** What went wrong during shutdown (the mount is gone regardless). */
  error?: { code: string; message: string };
}

export interface MountHandle {
  readonly volumeName: string;
  readonly mountpoint: string;
  /** `major:minor` of the mount. */
  readonly device: string;
  /** Abstract control socket name (leading NUL). */
  readonly socket: string;
  readonly handles: HandleTable;
  /** Resolves once the mount is gone, the final commit is done and the session is closed. */
  readonly closed: Promise<CloseResult>;
  commit(): Promise<CommitResult>;
  reload(): Promise<ReloadResult>;
  status(): Promise<Record<string, unknown>>;
  /** Shuts down (idempotent). With open files and no `force`, VOLUME_BUSY. */
  close(reason?: string, opts?: { force?: boolean }): Promise<CloseResult>;
}

/** Default logger: one JSON line per event on stderr. */
export const stderrLogger: Logger = (level, msg, extra) => {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...extra })}\n`);
};

/**
 * Mounts `session` at `mountpoint` and serves it until shutdown.
 *
 * @example
 *   const h = await runDaemon({ session, mountpoint: '/mnt/vol', volumeName: 'vol', readOnly: false, commitIntervalSec: 5 });
 *   await h.closed; // after SIGTERM, `cairn unmount`, or fusermount -u
 */
export async function runDaemon(opts: DaemonOptions): Promise<MountHandle> {
  const log: Logger = opts.onLog ?? stderrLogger;
  const { session, volumeName, readOnly } = opts;
  const mountpoint = await canonicalPath(opts.mountpoint);
  const handles = new HandleTable();
  const startedAt = new Date().toISOString();
  let commits = 0;
  let lastCommit: Record<string, unknown> | undefined;

  // --- the commit/reload queue ----------------------------------------------------------
  const queue = new SerialQueue();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => queue.run(fn);
  const commit = (why: string): Promise<CommitResult> =>
    serial(async () => {
      const t0 = Date.now();
      try {
        const r = await session.commit();
        if (r.committed) {
          commits++;
          log('info', `committed ${r.paths.length} path(s) as seq ${r.seq}`, { why, seq: r.seq, paths: r.paths.length, overwrote: r.overwrote, bytesUploaded: r.bytesUploaded, ms: Date.now() - t0 });
        }
        lastCommit = { at: new Date().toISOString(), why, seq: r.seq, committed: r.committed, paths: r.paths.length, overwrote: r.overwrote };
        return r;
      } catch (err) {
        const e = asCairnError(err, 'IO', 'commit failed', { volume: volumeName });
        lastCommit = { at: new Date().toISOString(), why, error: { code: e.code, message: describeError(e) } };
        throw e;
      }
    });
  const freshness = new Freshness();
  const reload = (): Promise<ReloadResult> =>
    serial(async () => {
      try {
        const { changed, ...r } = await session.reload();
        // fuse-native keeps pages while size and mtime stay (auto_cache): a file others changed
        // is reported newer. The native binding drops exactly what changed from the kernel.
        if (!binding.native) freshness.changed(r.paths ?? []);
        const dropped = await binding.native?.refresh(changed?.map((p) => (p.startsWith('/') ? p : `/${p}`)));
        log('info', `reloaded from seq ${r.from} to ${r.seq}`, { from: r.from, seq: r.seq, changed: changed?.length, ...dropped });
        return r;
      } catch (err) {
        if (isCairnError(err, 'VOLUME_BUSY')) {
          // Name the processes too: from the openers' pids (native binding), else by scanning /proc.
          const list = handles.list();
          const users = list.length && list.every((h) => h.pid)
            ? await processesOfHandles(mountpoint, list)
            : await processesUsing(mountpoint).catch(() => []);
          err.context.processes = users.filter((u) => !isControlFileName(u.path));
          err.context.mountpoint = mountpoint;
        }
        throw err;
      }
    });

  // --- mount ----------------------------------------------------------------------------
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  // The control file (.cairn-control) answers through the same handler as the socket.
  const controlFile = new ControlFile((op) => handle({ op }));
  const ops = withControlFile(createOps(session, {
    readOnly,
    uid,
    gid,
    handles,
    freshness,
    fsyncOnClose: opts.fsyncOnClose ?? false,
    onError: (op, p, err) => log('error', `${op} ${p} failed`, { error: err instanceof Error ? err.stack : String(err) }),
  }), controlFile, { uid, gid });
  if (!opts.nonEmpty) {
    // libfuse refuses with a bare "fuse failed"; say why, and what to do.
    const names = await fsp.readdir(mountpoint).catch(() => [] as string[]);
    if (names.length) {
      throw new CairnError('INVALID_ARGUMENT', `${mountpoint} is not empty (${names.length} entries)`, {
        volume: volumeName,
        path: mountpoint,
        hint: 'mount on an empty directory, or pass nonEmpty to hide what is there while mounted',
      });
    }
  }
  const binding = await mountBinding(chooseBinding(opts.binding), ops, {
    mountpoint,
    volumeName,
    readOnly,
    nonEmpty: !!opts.nonEmpty,
    allowOther: !!opts.allowOther,
    fuseTimeoutMs: opts.fuseTimeoutMs ?? 30_000,
    ...(opts.attrTimeoutSec !== undefined ? { attrTimeoutSec: opts.attrTimeoutSec } : {}),
    ...(opts.entryTimeoutSec !== undefined ? { entryTimeoutSec: opts.entryTimeoutSec } : {}),
    handles,
    // The kernel ended the mount (unmounted from outside); the watcher would notice it too.
    onExit: () => setImmediate(() => {
      if (!core) void shutdown('unmounted externally', true);
    }),
    onError: (op, p, err) => log('error', `${op} ${p} failed`, { error: err instanceof Error ? err.stack : String(err) }),
  });
  if (binding.note) log('warn', binding.note);

  let own = await ownMount(mountpoint, volumeName);
  for (let i = 0; !own && i < 50; i++) {
    await new Promise((r) => setTimeout(r, 20));
    own = await ownMount(mountpoint, volumeName);
  }
  if (!own) {
    await binding.unmount().catch(() => undefined);
    throw new CairnError('IO', `mounted ${mountpoint} but cannot find it in /proc/self/mountinfo`, { volume: volumeName, path: mountpoint });
  }
  const device = own.device;
  await binding.tune(device);
  const socket = socketNameFor(device);

  // --- shutdown ------------------------------------------------------------------------
  let core: Promise<CloseResult> | undefined;
  let resolveClosed!: (r: CloseResult) => void;
  const closed = new Promise<CloseResult>((r) => (resolveClosed = r));
  let control: ControlServer | undefined;
  let commitTimer: NodeJS.Timeout | undefined;
  let watchTimer: NodeJS.Timeout | undefined;
  // Held until shutdown is over: a second signal during the final commit must not kill the process.
  const onSignal = (sig: NodeJS.Signals): void => {
    const what = core ? 'already shutting down, finishing the final commit' : `unmounting ${mountpoint}`;
    log('info', `${sig}: ${what}`);
    void shutdown(sig, true);
  };

  function shutdown(reason: string, force: boolean): Promise<CloseResult> {
    if (!core) {
      if (!force && handles.size) {
        return Promise.reject(new CairnError('VOLUME_BUSY', `cannot unmount ${mountpoint}: ${handles.size} file(s) open: ${handles.paths().join(', ')}`, {
          volume: volumeName,
          path: mountpoint,
          openFiles: handles.list().map((h) => ({ path: h.path })),
          hint: 'close the files, or unmount with force',
        }));
      }
      core = closeCore(reason);
      void core.then(async (r) => {
        await control?.close().catch(() => undefined);
        if (opts.handleSignals !== false) {
          process.off('SIGTERM', onSignal);
          process.off('SIGINT', onSignal);
        }
        resolveClosed(r);
      });
    }
    return core;
  }

  async function closeCore(reason: string): Promise<CloseResult> {
    const result: CloseResult = { reason };
    clearTimeout(commitTimer);
    clearInterval(watchTimer);
    // Stop the kernel first so the final commit holds every write made through the mount.
    await binding.unmount().catch((err: Error) => {
      if (reason !== 'unmounted externally') log('warn', `unmount of ${mountpoint} reported: ${err.message}`);
    });
    // The device number (and so the socket name) may go to a new mount now: free the name.
    control?.stopListening();
    try {
      if (!readOnly && session.pendingCount() > 0) result.commit = await commit(`shutdown (${reason})`);
    } catch (err) {
      const e = asCairnError(err, 'IO', 'final commit failed');
      result.error = { code: e.code, message: describeError(e) };
      log('error', `final commit failed: ${describeError(e)}`, { code: e.code });
    }
    await session.close().catch((err: unknown) => log('warn', `session close failed: ${String(err)}`));
    log('info', `unmounted ${mountpoint}`, { reason });
    return result;
  }

  // --- status and control -----------------------------------------------------------------
  async function status(): Promise<Record<string, unknown>> {
    return {
      volume: volumeName,
      mountpoint,
      device,
      pid: process.pid,
      binding: binding.name,
      ...(binding.note ? { bindingNote: binding.note } : {}),
      readOnly,
      seq: session.seq,
      pending: session.pendingCount(),
      openFiles: handles.list().map((h) => ({ path: h.path, flags: h.flags })),
      commitIntervalSec: opts.commitIntervalSec ?? 0,
      commits,
      lastCommit: lastCommit ?? null,
      startedAt,
      session: opts.status ? opts.status() : null,
    };
  }

  const stillMounted = async (): Promise<boolean> =>
    !!opts.movedAway || (await readMounts().catch(() => [])).some((e) => e.device === device && e.mountpoint === mountpoint);

  async function handle(req: ControlRequest): Promise<unknown> {
    // The socket name follows the device number, which the kernel reuses once a mount is gone:
    // never answer for a mount that is no longer ours.
    if (core && req.op === 'unmount') return core;
    if (core || !(await stillMounted())) {
      if (!core) void shutdown('unmounted externally', true);
      throw new CairnError('UNAVAILABLE', `the daemon of ${mountpoint} is shutting down`, { volume: volumeName, path: mountpoint, hint: 'retry in a moment' });
    }
    switch (req.op) {
      case 'status':
        return status();
      case 'commit':
        if (readOnly) throw new CairnError('READ_ONLY', `${mountpoint} is mounted read-only; there is nothing to commit`, { volume: volumeName, path: mountpoint });
        return commit('request');
      case 'reload':
        return reload();
      case 'unmount':
        return shutdown('unmount request', req.args?.force === true);
    }
  }

  try {
    control = await startControlServer(socket, handle);
  } catch (err) {
    await binding.unmount().catch(() => undefined);
    throw new CairnError('UNAVAILABLE', `cannot listen on the control socket of ${mountpoint}: ${String(err)}`, { volume: volumeName, path: mountpoint }, { cause: err });
  }

  // --- background work ---------------------------------------------------------------
  const interval = (opts.commitIntervalSec ?? 0) * 1000;
  if (interval > 0 && !readOnly) {
    const tick = (): void => {
      const run = session.pendingCount() > 0 ? commit('background') : Promise.resolve();
      run
        .catch((err: unknown) => log('error', `background commit failed: ${describeError(err)}`, { code: isCairnError(err) ? err.code : undefined }))
        .finally(() => {
          if (!core) commitTimer = setTimeout(tick, interval);
        });
    };
    commitTimer = setTimeout(tick, interval);
  }
  if (!opts.movedAway) watchTimer = setInterval(() => {
    readMounts()
      .then((all) => {
        if (!core && !all.some((e) => e.device === device && e.mountpoint === mountpoint)) {
          log('warn', `${mountpoint} was unmounted from outside; committing and exiting`);
          void shutdown('unmounted externally', true);
        }
      })
      .catch(() => undefined);
  }, opts.watchIntervalMs ?? 1000);
  if (opts.handleSignals !== false) {
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }
  log('info', `mounted ${volumeName} at ${mountpoint}`, { device, binding: binding.name, readOnly, commitIntervalSec: opts.commitIntervalSec ?? 0 });

  return {
    volumeName,
    mountpoint,
    device,
    socket,
    handles,
    closed,
    commit: () => commit('api'),
    reload,
    status,
    close: (reason = 'close', o = {}) => shutdown(reason, o.force ?? true),
  };
}
