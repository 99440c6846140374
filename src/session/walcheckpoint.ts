/**
 * WAL checkpoints of a session journal off the event loop. A checkpoint copies the WAL's pages
 * into the database and fsyncs twice: ~15 ms every ~700 creates when the journal's own
 * connection did it, inside whichever request's transaction crossed the threshold (~30 µs a
 * create on average, a third of its transaction). Here a worker thread with its own SQLite
 * connection runs `PRAGMA wal_checkpoint(PASSIVE)` after every CHECKPOINT_EVERY transactions.
 *
 * Invariants: a PASSIVE checkpoint never blocks the journal's writer nor waits for it (SQLite's
 * checkpointer lock); the journal's own automatic checkpoint stays on as a backstop at
 * BACKSTOP_PAGES (a worker that lags or failed costs time, never data). A writer that never
 * pauses keeps the WAL from restarting (each checkpoint ends behind the newest frames), so a busy
 * session's WAL grows to the backstop, whose checkpoint then finds most pages copied already. The
 * worker starts at the first checkpoint asked for (a short-lived journal never starts one), never
 * keeps the process alive, and closes its connection when the journal closes.
 */
import Database from 'better-sqlite3';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { workerExecArgv } from '../util/worker.js';

/** Transactions between two checkpoints (~6 WAL pages each for a create: ~12 MiB of WAL). */
export const CHECKPOINT_EVERY = 500;
/** The journal connection's own automatic checkpoint, in WAL pages (64 MiB), if the worker lags. */
export const BACKSTOP_PAGES = 16_000;

const ROLE = 'cairn-wal-checkpoint';

/**
 * Asks a worker thread to checkpoint the WAL of the journal at `file` every CHECKPOINT_EVERY
 * transactions.
 *
 * @example const c = new WalCheckpointer('/s/journal.db'); c.tick(); ...; c.close();
 */
export class WalCheckpointer {
  private worker: Worker | undefined;
  private running = false;
  private transactions = 0;
  /** Checkpoints the worker has run (for tests). */
  done = 0;

  constructor(private readonly file: string) {}

  /** Counts one transaction of the journal; every CHECKPOINT_EVERY, starts a checkpoint unless one runs. */
  tick(): void {
    if (++this.transactions < CHECKPOINT_EVERY || this.running) return;
    this.transactions = 0;
    this.running = true;
    if (!this.worker) {
      try {
        this.worker = new Worker(new URL(import.meta.url), { workerData: { role: ROLE, file: this.file }, execArgv: workerExecArgv() });
      } catch {
        return; // no worker here (flags it refuses, no thread): the backstop checkpoints; `running` stays set
      }
      this.worker.on('message', () => {
        this.running = false;
        this.done++;
      });
      // A worker that cannot run (no thread, no connection): the backstop checkpoints; no more asking.
      this.worker.on('error', () => undefined);
      this.worker.on('exit', () => (this.running = true));
      this.worker.unref(); // (after the listeners: a 'message' listener refs it again)
    }
    this.worker.postMessage('checkpoint');
  }

  /** The worker closes its connection and ends (not waited for: the journal's close needs nothing of it). */
  close(): void {
    this.worker?.postMessage('close');
    this.worker = undefined;
  }
}

// When this module is the worker: one connection, a PASSIVE checkpoint per message.
if (!isMainThread && (workerData as { role?: string } | null)?.role === ROLE) {
  const db = new Database((workerData as { file: string }).file);
  parentPort!.on('message', (m: string) => {
    if (m === 'close') {
      db.close();
      parentPort!.close();
      return;
    }
    try {
      db.pragma('wal_checkpoint(PASSIVE)');
    } catch {
      // (busy or failing: the next one, or the journal's backstop, copies these pages)
    }
    parentPort!.postMessage('done');
  });
}
