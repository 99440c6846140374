/**
 * The commit scheduler of a mount: commits (background, on request, at shutdown) and reloads of
 * its session, one at a time, and the figures `status` reports about them.
 *
 * Invariants:
 * - commits and reloads never overlap (one SerialQueue);
 * - a failing background commit is logged and retried at the next tick, never fatal;
 * - a reload is refused while files are open in the mount (the open-file table's VOLUME_BUSY,
 *   naming the processes that hold them);
 * - after `stop()` no background commit starts.
 */
import { asCairnError, describeError, isCairnError } from '../errors.js';
import type { CommitResult, FsSession, ReloadResult } from '../format/types.js';
import { SerialQueue } from '../util/serial.js';
import type { Logger } from './log.js';
import type { HandleTable } from './handles.js';
import { isControlFileName } from './control-fuse.js';
import { processesOfHandles, processesUsing } from './processes.js';

export interface SchedulerOptions {
  volumeName: string;
  mountpoint: string;
  handles: HandleTable;
  log: Logger;
  /**
   * After a reload: tells the kernel side what changed (`changed`: volume paths whose entries
   * changed; `paths`: what the reload reports), and returns figures for the log.
   */
  afterReload: (changed: string[] | undefined, paths: string[]) => Promise<object | undefined>;
  /** Told of every commit and reload: how long it took and whether it succeeded. */
  onSync?: (kind: 'commit' | 'reload', seconds: number, ok: boolean) => void;
  /** Runs before every commit and reload: the kernel's cached writes go to the session (./writeback.ts). */
  beforeSync?: () => Promise<void>;
}

/** The last commit as `status` shows it. */
export type LastCommit = Record<string, unknown>;

export class CommitScheduler {
  private readonly queue = new SerialQueue();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Commits that published a snapshot. */
  commits = 0;
  lastCommit: LastCommit | undefined;

  constructor(
    private readonly session: FsSession,
    private readonly o: SchedulerOptions,
  ) {}

  /**
   * Commits the session's pending changes (after any commit or reload in progress).
   * @example const r = await scheduler.commit('request');
   */
  commit(why: string): Promise<CommitResult> {
    const { session, o } = this;
    return this.queue.run(async () => {
      const t0 = Date.now();
      try {
        await o.beforeSync?.();
        const r = await session.commit();
        o.onSync?.('commit', (Date.now() - t0) / 1000, true);
        if (r.committed) {
          this.commits++;
          o.log('info', `committed ${r.paths.length} path(s) as seq ${r.seq}`, {
            why,
            seq: r.seq,
            paths: r.paths.length,
            overwrote: r.overwrote,
            bytesUploaded: r.bytesUploaded,
            ms: Date.now() - t0,
          });
        }
        const at = new Date().toISOString();
        this.lastCommit = { at, why, seq: r.seq, committed: r.committed, paths: r.paths.length, overwrote: r.overwrote };
        return r;
      } catch (err) {
        o.onSync?.('commit', (Date.now() - t0) / 1000, false);
        const e = asCairnError(err, 'IO', 'commit failed', { volume: o.volumeName });
        this.lastCommit = { at: new Date().toISOString(), why, error: { code: e.code, message: describeError(e) } };
        throw e;
      }
    });
  }

  /**
   * Commits, then moves the session to the newest snapshot. VOLUME_BUSY while files are open.
   * @example const r = await scheduler.reload(); // { from, seq, ... }
   */
  reload(): Promise<ReloadResult> {
    const { session, o } = this;
    return this.queue.run(async () => {
      await o.handles.settle();
      if (o.handles.size) {
        const err = o.handles.busy('reload', { volume: o.volumeName, mountpoint: o.mountpoint }, 'close these files, then reload again');
        // Name the processes too: from the openers' pids (native binding), else by scanning /proc.
        const list = o.handles.list();
        const users = list.every((h) => h.pid)
          ? await processesOfHandles(o.mountpoint, list)
          : await processesUsing(o.mountpoint).catch(() => []);
        err.context.processes = users.filter((u) => !isControlFileName(u.path));
        err.context.mountpoint = o.mountpoint;
        throw err;
      }
      const t0 = Date.now();
      let reloaded: ReloadResult;
      try {
        await o.beforeSync?.();
        reloaded = await session.reload();
        o.onSync?.('reload', (Date.now() - t0) / 1000, true);
      } catch (err) {
        o.onSync?.('reload', (Date.now() - t0) / 1000, false);
        throw err;
      }
      const { changed, ...r } = reloaded;
      const dropped = await o.afterReload(changed, r.paths ?? []);
      const rb = r.rebootstrapped;
      if (rb) {
        const why = `the view at seq ${r.from} was below the volume's pruned floor ${rb.floor}`;
        o.log('warn', `${why}: re-bootstrapped from checkpoint ${rb.checkpoint}, pending changes kept`, { from: r.from, ...rb });
      }
      o.log('info', `reloaded from seq ${r.from} to ${r.seq}`, { from: r.from, seq: r.seq, changed: changed?.length, ...dropped });
      return r;
    });
  }

  /** Commits every `intervalSec` seconds while there are pending changes (0: never). */
  start(intervalSec: number): void {
    const ms = intervalSec * 1000;
    if (!(ms > 0)) return;
    const tick = (): void => {
      const run = this.session.pendingCount() > 0 ? this.commit('background') : Promise.resolve();
      run
        .catch((err: unknown) =>
          this.o.log('error', `background commit failed: ${describeError(err)}`, { code: isCairnError(err) ? err.code : undefined }),
        )
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, ms);
        });
    };
    this.timer = setTimeout(tick, ms);
  }

  /** No more background commits (one in progress finishes). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
