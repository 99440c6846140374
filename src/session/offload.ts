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
 * Usage (by the functions below only): node dist/src/session/offload.js '<json Job>'
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { asCairnError, CairnError, type ErrorCode, type ErrorContext } from '../errors.js';
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

/** What a child prints last on stdout: its result, or its error. */
type Outcome = { ok: true; result: string } | { ok: false; code: ErrorCode; message: string; context?: ErrorContext };

const SELF = fileURLToPath(import.meta.url);

/** A running child job: its result (the child's result word) and a way to stop it. */
export interface ChildJob {
  readonly done: Promise<string>;
  kill(): void;
}

function runChild(job: Job): ChildJob {
  let child: ChildProcess | undefined;
  const done = new Promise<string>((resolve, reject) => {
    child = spawn(process.execPath, [SELF, JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (err = (err + b.toString()).slice(-4000)));
    child.on('error', (e) => reject(asCairnError(e, 'IO', `cannot start a ${job.kind} process`)));
    child.on('close', (code, signal) => {
      let outcome: Outcome | undefined;
      try {
        outcome = JSON.parse(out.trim().split('\n').pop() ?? '') as Outcome;
      } catch {
        outcome = undefined;
      }
      if (code === 0 && outcome?.ok) return resolve(outcome.result);
      if (outcome && !outcome.ok && outcome.code) return reject(new CairnError(outcome.code, outcome.message, outcome.context ?? {}));
      reject(
        new CairnError('IO', `the ${job.kind} process of ${job.dir} failed (${signal ?? `exit ${code}`}): ${err.trim().split('\n').slice(-3).join(' | ')}`, {
          path: job.dir,
          hint: job.kind === 'bootstrap' ? 'see the message; mounting again retries from scratch' : 'a later commit writes the checkpoint again',
        }),
      );
    });
  });
  done.catch(() => {});
  return { done, kill: () => child?.kill('SIGTERM') };
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

if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  const say = (o: Outcome): void => {
    process.stdout.write(`${JSON.stringify(o)}\n`);
  };
  runJob(JSON.parse(process.argv[2] ?? '{}') as Job).then(
    (result) => {
      say({ ok: true, result });
      process.exit(0);
    },
    (e: unknown) => {
      const c = asCairnError(e, 'IO', 'journal job failed');
      let context: ErrorContext = {};
      try {
        context = JSON.parse(JSON.stringify(c.context)) as ErrorContext;
      } catch {
        // not serialisable: drop it
      }
      say({ ok: false, code: c.code, message: c.message, context });
      process.exit(1);
    },
  );
}
