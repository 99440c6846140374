/**
 * Bootstrapping a fresh session journal in a short-lived child process.
 *
 * Filling a journal with a volume's snapshot decodes its newest checkpoint and the log records
 * after it whole, so it costs memory in proportion to the volume (about 1 GB of JavaScript heap at
 * 1,000,000 files), and a V8 heap that grew once does not give the memory back. A mount daemon
 * lives for hours in a container with a memory limit: it has a child fill the journal (SQLite, on
 * disk) and exit, then opens the filled journal and stays small (~70–100 MiB at 1,000,000 files).
 *
 * Invariants: the parent holds the session directory's lock for the whole time (the child never
 * takes it); the journal is complete when the child exits 0 (it sets the `volumeId` meta last, in
 * the same way an in-process bootstrap does), so a failed or killed child leaves a journal without
 * `volumeId`, which the next open bootstraps again from scratch; the child's error reaches the
 * caller as the same CairnError (code, message, context).
 *
 * Usage (by `bootstrapInChild` only): node dist/src/volume/bootstrap.js '<json BootstrapJob>'
 */
import { spawn } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ChunkStore } from '../chunks/chunkstore.js';
import { asCairnError, CairnError, type ErrorCode, type ErrorContext } from '../errors.js';
import { Journal } from '../journal/journal.js';
import { openStore } from '../store/open.js';
import { VolumeLog } from './log.js';
import { keys } from './records.js';
import { Staging } from './staging.js';
import { Syncer } from './sync.js';

export interface BootstrapJob {
  /** Session directory holding `journal.db` (its lock is the caller's). */
  dir: string;
  /** URL of the store (the child opens its own client; credentials come from the environment). */
  storeUrl: string;
  volumeId: string;
  /** Snapshot to stop at (default: the newest). */
  upTo?: number;
}

const SELF = fileURLToPath(import.meta.url);

/**
 * Fills the empty journal of `job.dir` with the volume's snapshot, in a child process.
 *
 * @example await bootstrapInChild({ dir, storeUrl: store.url, volumeId: meta.id });
 */
export function bootstrapInChild(job: BootstrapJob): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SELF, JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err = (err + b.toString()).slice(-4000)));
    child.on('error', (e) => reject(asCairnError(e, 'IO', `cannot start the bootstrap process: ${e.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) return resolve();
      let wire: { code: ErrorCode; message: string; context?: ErrorContext } | undefined;
      try {
        wire = JSON.parse(out.trim().split('\n').pop() ?? '') as typeof wire;
      } catch {
        wire = undefined;
      }
      if (wire?.code) return reject(new CairnError(wire.code, wire.message, wire.context ?? {}));
      reject(
        new CairnError('IO', `the bootstrap process of ${job.dir} failed (${signal ?? `exit ${code}`}): ${err.trim().split('\n').slice(-3).join(' | ')}`, {
          path: job.dir,
          hint: 'see the message; mounting again retries from scratch',
        }),
      );
    });
  });
}

/** The child's work: the same bootstrap a session does in-process, then `volumeId` last. */
async function runJob(job: BootstrapJob): Promise<void> {
  const store = await openStore(job.storeUrl);
  const journal = new Journal(`${job.dir}/journal.db`);
  try {
    const sessionId = journal.getMeta('sessionId');
    if (!sessionId) throw new CairnError('INVALID_ARGUMENT', `journal in ${job.dir} has no session id`, { path: job.dir });
    const chunks = new ChunkStore({ store, packPrefix: keys.packPrefix(job.volumeId), cache: null });
    const sync = new Syncer(journal, new VolumeLog(store, job.volumeId), chunks, new Staging(job.dir), sessionId);
    await sync.bootstrap(job.upTo ?? Infinity);
    journal.setMeta('volumeId', job.volumeId);
  } finally {
    journal.close();
    await store.close();
  }
}

if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  runJob(JSON.parse(process.argv[2] ?? '{}') as BootstrapJob).then(
    () => process.exit(0),
    (e: unknown) => {
      const c = asCairnError(e, 'IO', 'bootstrap failed');
      let context: ErrorContext = {};
      try {
        context = JSON.parse(JSON.stringify(c.context)) as ErrorContext;
      } catch {
        // not serialisable: drop it
      }
      process.stdout.write(`${JSON.stringify({ code: c.code, message: c.message, context })}\n`);
      process.exit(1);
    },
  );
}
