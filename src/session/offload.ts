/**
 * Journal work offloaded to short-lived child processes: bootstrapping a fresh session journal,
 * and writing a checkpoint of a session's view.
 *
 * Both decode or encode a whole snapshot at once, so they cost memory and CPU in proportion to
 * the volume: about 1 GB of heap and 5–10 s at 1,000,000 files, and a V8 heap that grew once does
 * not give the memory back. A mount daemon lives for hours in a container with a memory limit and
 * answers FUSE requests on one event loop: it has a child do this work on the journal (SQLite, on
 * disk, WAL: the child reads a consistent snapshot with its own connection while the daemon goes
 * on) and stays small (~70–100 MiB at 1,000,000 files) and responsive.
 *
 * Invariants:
 * - The parent holds the session directory's lock throughout; a child never takes it.
 * - Bootstrap: the journal is complete when the child exits 0 (it sets the `volumeId` meta last,
 *   as an in-process bootstrap does), so a failed or killed child leaves a journal without
 *   `volumeId`, which the next open bootstraps again; the child's error reaches the caller as the
 *   same CairnError (code, message, context).
 * - Checkpoint: the child reads the view in one read transaction and writes it only if it has no
 *   pending ops (then it is exactly snapshot `journal.seq`, at least the requested seq; else it
 *   reports `stale`, which is not an error): `written <seq>` names the snapshot written;
 *   the checkpoint object is written `ifAbsent` in one put, so killing the child loses nothing
 *   but the checkpoint.
 *
 * Usage (by the functions below only): node dist/src/session/offload.js '<json Job>'; the child
 * reports `{"event":"ready","result":..}` or its error (the protocol of util/child.ts).
 */
import { fileURLToPath } from 'node:url';
import { CairnError } from '../errors.js';
import { childInput, exited, isEntry, reportError, reportReady, spawnNode, waitReport } from '../util/child.js';
import { Journal } from './journal.js';
import { openStore } from '../store/index.js';
import { VolumeLog } from '../format/index.js';
import { bootstrap } from './snapshot.js';

interface JobBase {
  /** Session directory holding `journal.db` (its lock is the caller's). */
  dir: string;
  /** URL of the store (the child opens its own client; credentials come from the environment). */
  storeUrl: string;
  volumeId: string;
}

export type BootstrapJob = JobBase & { kind: 'bootstrap'; /** Snapshot to stop at (default: the newest). */ upTo?: number };
export type CheckpointJob = JobBase & { kind: 'checkpoint'; /** The snapshot the view must be at. */ seq: number };
type Job = BootstrapJob | CheckpointJob;

const SELF = fileURLToPath(import.meta.url);

/** A running child job: its result (the child's result word) and a way to stop it. */
export interface ChildJob {
  readonly done: Promise<string>;
  kill(): void;
}

function runChild(job: Job): ChildJob {
  const child = spawnNode(SELF, job, { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (b: Buffer) => (err = (err + b.toString()).slice(-4000)));
  const name = `the ${job.kind} process of ${job.dir}`;
  const done = (async () => {
    const [ready, exit] = await Promise.all([
      waitReport(child, {
        name,
        code: 'IO',
        context: { path: job.dir },
        hint:
          job.kind === 'bootstrap' ? 'see the message; mounting again retries from scratch' : 'a later commit writes the checkpoint again',
        tail: () => err.trim().split('\n').slice(-3).join(' | '),
      }),
      exited(child),
    ]);
    if (exit.code !== 0)
      throw new CairnError('IO', `${name} failed (${exit.signal ?? `exit ${exit.code}`}) after it reported`, { path: job.dir });
    return String(ready.result);
  })();
  done.catch(() => {});
  return { done, kill: () => child.kill('SIGTERM') };
}

/**
 * Fills the empty journal of `job.dir` with the volume's snapshot, in a child process.
 *
 * @example await bootstrapInChild({ dir, storeUrl: store.url, volumeId: meta.id });
 */
export async function bootstrapInChild(job: Omit<BootstrapJob, 'kind'>): Promise<void> {
  await runChild({ ...job, kind: 'bootstrap' }).done;
}

/**
 * Writes a checkpoint of the view of `job.dir` (at `job.seq` or later), in a child process.
 * `done` resolves to `written <seq>`, or `stale` when the view had pending ops (or was older than
 * `job.seq`) when the child read it.
 *
 * @example const job = checkpointInChild({ dir, storeUrl, volumeId, seq }); const result = await job.done;
 */
export function checkpointInChild(job: Omit<CheckpointJob, 'kind'>): ChildJob {
  return runChild({ ...job, kind: 'checkpoint' });
}

/** The child's work for one job; returns its result word. */
async function runJob(job: Job): Promise<string> {
  const store = await openStore(job.storeUrl);
  const journal = new Journal(`${job.dir}/journal.db`);
  try {
    const log = new VolumeLog(store, job.volumeId);
    if (job.kind === 'bootstrap') {
      if (!journal.knownSessionId) throw new CairnError('INVALID_ARGUMENT', `journal in ${job.dir} has no session id`, { path: job.dir });
      await bootstrap(journal, log, job.upTo ?? Infinity);
      journal.claim(job.volumeId);
      return 'bootstrapped';
    }
    // One read transaction: a consistent view while the daemon goes on writing (WAL). Without
    // pending ops the view is exactly snapshot `seq` (sync.ts), which may be past job.seq by now.
    const snap = journal.cleanSnapshot(job.seq);
    if (!snap) return 'stale';
    await log.writeCheckpoint(snap.seq, snap.entries);
    return `written ${snap.seq}`;
  } finally {
    journal.close();
    await store.close();
  }
}

if (isEntry(import.meta.url)) {
  runJob(childInput<Job>()).then(
    (result) => {
      reportReady({ result });
      process.exit(0);
    },
    (e: unknown) => {
      reportError(e, 'journal job failed');
      process.exit(1);
    },
  );
}
