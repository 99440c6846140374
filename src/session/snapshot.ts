/**
 * Filling a journal with a whole snapshot (bootstrap: the newest checkpoint at or below it plus
 * the records after that), and reading a snapshot's entries through a private temporary journal
 * (GC, usage): the one way a snapshot is assembled from the log.
 *
 * Invariants: a bootstrap that picked a checkpoint a concurrent GC then pruned past picks again
 * (up to 5 times); a snapshot below the pruned floor is PRUNED, one that does not exist NOT_FOUND;
 * the temporary journal of `readSnapshot` is removed whatever happens.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CairnError, isCairnError } from '../errors.js';
import type { ObjectStore } from '../store/index.js';
import { type CommitRecord, type EntryData, VolumeLog, prunedError, readFloor } from '../format/index.js';
import { entryData, type JournalEntry } from './entry.js';
import { Journal } from './journal.js';

/** What a bootstrap reads: the newest checkpoint at or below a seq (if any), the records after it. */
interface Pieces {
  cp: number | undefined;
  state: [string, EntryData][] | undefined;
  records: CommitRecord[];
}

/** Reads the pieces of snapshot `upTo`, picking again when a concurrent GC pruned past the checkpoint picked. */
async function pieces(log: VolumeLog, upTo: number): Promise<Pieces> {
  for (let attempt = 1; ; attempt++) {
    let cp: number | undefined;
    try {
      cp = await log.latestCheckpoint(upTo);
      const state = cp !== undefined ? (await log.readCheckpoint(cp)).entries : undefined;
      return { cp, state, records: await log.recordsAfter(cp ?? 0, upTo) };
    } catch (err) {
      // A GC pruned past the checkpoint picked (it wrote a newer one first): pick again.
      const raced = isCairnError(err, 'PRUNED') || isCairnError(err, 'CORRUPT') || isCairnError(err, 'NOT_FOUND');
      if (!raced || attempt >= 5 || (await readFloor(log.store, log.volumeId)) <= (cp ?? 0)) throw err;
    }
  }
}

/**
 * Fills an empty journal with the snapshot at `upTo` (default: the newest) of `log`'s volume.
 * @example await bootstrap(new Journal(file), new VolumeLog(store, id));
 */
export async function bootstrap(journal: Journal, log: VolumeLog, upTo = Infinity, volumeName = log.volumeId): Promise<void> {
  if (upTo !== Infinity) {
    const floor = await readFloor(log.store, log.volumeId);
    if (upTo < floor) throw prunedError(volumeName, upTo, floor);
  }
  const { cp, state, records } = await pieces(log, upTo);
  if (cp !== undefined) journal.loadState(cp, state!);
  if (upTo !== Infinity && upTo > 0 && (records.length ? records[records.length - 1]!.seq : (cp ?? 0)) !== upTo) {
    throw new CairnError('NOT_FOUND', `snapshot ${upTo} does not exist`, { hint: 'see vol.history() for the seqs there are' });
  }
  journal.applyRecords(records);
}

/**
 * Moves a view that fell below the volume's pruned floor (a GC deleted the records it would
 * apply) to the newest snapshot: the newest checkpoint replaces the view, its pending ops staying
 * on top (Journal.rebase), then the records after it are applied as a reload applies them.
 * Returns the floor seen and the checkpoint's seq (0: none).
 * @example const { floor, checkpoint } = await rebootstrap(journal, log);
 */
export async function rebootstrap(journal: Journal, log: VolumeLog): Promise<{ floor: number; checkpoint: number }> {
  const floor = await readFloor(log.store, log.volumeId);
  const { cp, state, records } = await pieces(log, Infinity);
  journal.rebase(cp ?? 0, state ?? []);
  journal.applyRecords(records);
  return { floor, checkpoint: cp ?? 0 };
}

/**
 * Visits every entry (but the root) of snapshot `seq` of a volume, in path order, assembled in a
 * private temporary journal.
 * @example await readSnapshot(store, id, head, (e, data) => { files++; });
 */
export async function readSnapshot(
  store: ObjectStore,
  volumeId: string,
  seq: number,
  visit: (e: JournalEntry, data: EntryData) => void,
): Promise<void> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-snapshot-'));
  const journal = new Journal(path.join(dir, 'journal.db'));
  try {
    await bootstrap(journal, new VolumeLog(store, volumeId), seq);
    for (const e of journal.iterateAll()) visit(e, entryData(e));
  } finally {
    journal.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
}
