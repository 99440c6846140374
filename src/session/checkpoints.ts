/**
 * When a session writes a checkpoint of its view, and by whom: in this process, or by a child
 * process (./offload.ts) for a long-lived daemon.
 *
 * Invariants: a checkpoint is written only of a view that is exactly a snapshot (no pending ops)
 * at the log head as this session knows it, every CHECKPOINT_EVERY seqs; at most one child job
 * runs at a time, and its result is recorded only while the session is open (`stop` kills it
 * before the journal closes). Losing a checkpoint loses nothing: a later change writes another.
 */
import { type VolumeLog, encodeCheckpointSync } from '../format/index.js';
import type { Journal } from './journal.js';

/** A session whose view is the log head writes a checkpoint every this many seqs. */
export const CHECKPOINT_EVERY = 100;

/** A checkpoint written by someone else (a child process: ./offload.ts). */
export interface CheckpointJob {
  /** `written <seq>` (the snapshot written), or `stale` when the view had pending ops. */
  readonly done: Promise<string>;
  kill(): void;
}

export class Checkpointer {
  private running: CheckpointJob | undefined;
  private stopped = false;

  /**
   * @param startJob when set, checkpoints are written by the job this starts (not awaited by the
   * change that triggers it; one at a time) instead of in this process.
   * @example const cps = new Checkpointer(journal, log); await cps.afterChange();
   */
  constructor(
    private readonly journal: Journal,
    private readonly log: VolumeLog,
    private readonly startJob?: (seq: number) => CheckpointJob,
  ) {}

  /** Writes (or starts writing) a checkpoint when the policy says the view deserves one. */
  async afterChange(): Promise<void> {
    const seq = this.journal.seq;
    if (seq !== this.journal.logHead || seq - this.journal.checkpoint < CHECKPOINT_EVERY || this.journal.hasPending()) return;
    if (this.startJob) return this.startChild(seq);
    // Encoded one entry at a time, in the journal's read transaction: memory stays bounded.
    const snap = this.journal.cleanSnapshot(0, encodeCheckpointSync);
    if (!snap) return;
    await this.log.putCheckpoint(snap.seq, snap.body);
    this.journal.checkpoint = snap.seq;
  }

  /** Starts a checkpoint job for `seq` unless one runs; records it once written. */
  private startChild(seq: number): void {
    if (this.running || this.stopped) return;
    const job = this.startJob!(seq);
    this.running = job;
    void job.done
      .then(
        (result) => {
          const written = /^written (\d+)$/.exec(result);
          if (written && !this.stopped && Number(written[1]) > this.journal.checkpoint) this.journal.checkpoint = Number(written[1]);
        },
        () => undefined, // a later commit starts another
      )
      .finally(() => {
        if (this.running === job) this.running = undefined;
      });
  }

  /** Stops a checkpoint job in progress (before the journal closes) and waits for it to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    const job = this.running;
    if (!job) return;
    job.kill();
    await job.done.catch(() => undefined);
  }
}
