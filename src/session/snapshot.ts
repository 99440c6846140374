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

/**
 * Fills an empty journal with the snapshot at `upTo` (default: the newest) of `log`'s volume.
 * @example await bootstrap(new Journal(file), new VolumeLog(store, id));
 */
export async function bootstrap(journal: Journal, log: VolumeLog, upTo = Infinity, volumeName = log.volumeId): Promise<void> {
  if (upTo !== Infinity) {
    const floor = await readFloor(log.store, log.volumeId);
    if (upTo < floor) throw prunedError(volumeName, upTo, floor);
  }
  let cp: number | undefined;
  let state: [string, EntryData][] | undefined;
  let records: CommitRecord[];
  for (let attempt = 1; ; attempt++) {
    try {
      cp = await log.latestCheckpoint(upTo);
      state = cp !== undefined ? (await log.readCheckpoint(cp)).entries : undefined;
      records = await log.recordsAfter(cp ?? 0, upTo);
      break;
    } catch (err) {
      // A GC pruned past the checkpoint picked (it wrote a newer one first): pick again.
      const raced = isCairnError(err, 'PRUNED') || isCairnError(err, 'CORRUPT') || isCairnError(err, 'NOT_FOUND');
      if (!raced || attempt >= 5 || (await readFloor(log.store, log.volumeId)) <= (cp ?? 0)) throw err;
    }
  }
  if (cp !== undefined) journal.loadState(cp, state!);
  if (upTo !== Infinity && upTo > 0 && (records.length ? records[records.length - 1]!.seq : (cp ?? 0)) !== upTo) {
    throw new CairnError('NOT_FOUND', `snapshot ${upTo} does not exist`, { hint: 'see vol.history() for the seqs there are' });
  }
  journal.applyRecords(records);
}

/**
 * Visits every entry (but the root, unless `withRoot`: a checkpoint keeps the root's owner, mode,
 * times and xattrs) of snapshot `seq` of a volume, in path order, assembled in a private
 * temporary journal.
 * @example await readSnapshot(store, id, head, (e, data) => { files++; });
 */
export async function readSnapshot(
  store: ObjectStore,
  volumeId: string,
  seq: number,
  visit: (e: JournalEntry, data: EntryData) => void,
  withRoot = false,
): Promise<void> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-snapshot-'));
  const journal = new Journal(path.join(dir, 'journal.db'));
  try {
    await bootstrap(journal, new VolumeLog(store, volumeId), seq);
    const root = journal.get('');
    if (withRoot && root) visit(root, entryData(root));
    for (const e of journal.iterateAll()) visit(e, entryData(e));
  } finally {
    journal.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
}
