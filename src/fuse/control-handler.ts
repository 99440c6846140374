/**
 * The control handler of a mount: answers `commit`, `reload`, `status` and `unmount` requests
 * (from the control socket and the control file alike) and builds the `status` answer.
 *
 * Invariants: a daemon never answers for a mount that is no longer its own (the socket name
 * follows the device number, which the kernel reuses once a mount is gone): once shutting down,
 * or once its mount is gone from this namespace, every request but `unmount` is UNAVAILABLE;
 * open files are reported once, from the mount's open-file table.
 */
import type { MountMetrics } from '../util/metrics.js';
import { nativeFetchStats } from '../chunks/index.js';
import { CairnError } from '../errors.js';
import type { CommitResult, FsSession } from '../format/types.js';
import type { MountConfig } from './config.js';
import type { ControlRequest } from './control.js';
import type { HandleTable } from './handles.js';
import type { CommitScheduler } from './scheduler.js';

/** How a mount ended. */
export interface CloseResult {
  reason: string;
  /** The final commit, when there was something to commit. */
  commit?: CommitResult;
  /** What went wrong during shutdown (the mount is gone regardless). */
  error?: { code: string; message: string };
}

export interface ControlContext {
  session: FsSession & { status?(): object };
  config: MountConfig;
  volumeName: string;
  mountpoint: string;
  readOnly: boolean;
  device: string;
  binding: { name: string; note?: string; native?: { nreadStats(): object | undefined; dispatchStats(): object } };
  /** Whether the kernel's writeback cache is on (./writeback.ts). */
  writebackCache: boolean;
  handles: HandleTable;
  scheduler: CommitScheduler;
  startedAt: string;
  /** The mount's figures (reported in `status`, served on `--metrics`). */
  metrics: MountMetrics;
  /** Where the figures are served, when they are. */
  metricsUrl(): string | undefined;
  /** The shutdown in progress, if any. */
  closing(): Promise<CloseResult> | undefined;
  /** Starts (or joins) the shutdown; with open files and no `force`, VOLUME_BUSY. */
  shutdown(reason: string, force: boolean): Promise<CloseResult>;
  /** True while the mount is still in this mount namespace (or was moved away on purpose). */
  stillMounted(): Promise<boolean>;
}

/**
 * The `status` answer of a mount.
 *
 * @example const s = await mountStatus(ctx); // { volume, mountpoint, seq, pending, openFiles, ... }
 */
export async function mountStatus(c: ControlContext): Promise<Record<string, unknown>> {
  return {
    volume: c.volumeName,
    mountpoint: c.mountpoint,
    device: c.device,
    pid: process.pid,
    binding: c.binding.name,
    ...(c.binding.note ? { bindingNote: c.binding.note } : {}),
    // Reads answered by the native addon's threads from verified chunks (src/fuse/lowlevel-nread.ts).
    nativeReads: c.binding.native?.nreadStats() ?? null,
    // Worker wake-ups and GETATTRs the addon answered itself (native/nattr.h).
    nativeDispatch: c.binding.native?.dispatchStats() ?? null,
    // Runs of chunks the addon's fetch threads received (src/chunks/nativefetch.ts), this process.
    nativeFetches: { ...nativeFetchStats },
    readOnly: c.readOnly,
    writebackCache: c.writebackCache,
    seq: c.session.seq,
    pending: c.session.pendingCount(),
    openFiles: c.handles.list().map((h) => ({ path: h.path, flags: h.flags })),
    commitIntervalSec: c.config.commitIntervalSec ?? 0,
    commits: c.scheduler.commits,
    lastCommit: c.scheduler.lastCommit ?? null,
    startedAt: c.startedAt,
    session: c.session.status ? c.session.status() : null,
    metricsUrl: c.metricsUrl() ?? null,
    metrics: await c.metrics.snapshot(),
  };
}

/**
 * The handler of control requests for a mount.
 *
 * @example const srv = await startControlServer(socket, controlHandler(ctx));
 */
export function controlHandler(c: ControlContext): (req: ControlRequest) => Promise<unknown> {
  return async (req) => {
    const closing = c.closing();
    if (closing && req.op === 'unmount') return closing;
    if (closing || !(await c.stillMounted())) {
      if (!c.closing()) void c.shutdown('unmounted externally', true);
      throw new CairnError('UNAVAILABLE', `the daemon of ${c.mountpoint} is shutting down`, {
        volume: c.volumeName,
        path: c.mountpoint,
        hint: 'retry in a moment',
      });
    }
    switch (req.op) {
      case 'status':
        return mountStatus(c);
      case 'commit':
        if (c.readOnly) {
          const where = { volume: c.volumeName, path: c.mountpoint };
          throw new CairnError('READ_ONLY', `${c.mountpoint} is mounted read-only; there is nothing to commit`, where);
        }
        return c.scheduler.commit('request');
      case 'reload':
        return c.scheduler.reload();
      case 'unmount':
        return c.shutdown('unmount request', req.args?.force === true);
    }
  };
}
