/**
 * Filling a journal with a whole snapshot (bootstrap: the newest checkpoint at or below it plus
 * the records after that), moving a view that fell below the pruned floor to the newest snapshot
 * (rebootstrap), and reading a snapshot's entries or its checkpoint through a private temporary
 * journal (GC, usage): the one way a snapshot is assembled from the log.
 *
 * Invariants: checkpoints stream in (bounded memory) and land only in a journal nothing uses
 * before their checksum matched (a fresh one, claimed by the caller afterwards, or a temporary
 * one, adopted afterwards); a bootstrap that picked a checkpoint a concurrent GC then pruned past
 * picks again (up to 5 times); a snapshot below the pruned floor is PRUNED, one that does not
 * exist NOT_FOUND; temporary journals are removed whatever happens.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CairnError, isCairnError } from '../errors.js';
import type { ObjectStore } from '../store/index.js';
import { type EntryData, VolumeLog, checkpointDamage, encodeCheckpointSync, prunedError, readFloor } from '../format/index.js';
import { entryData, type JournalEntry } from './entry.js';
import { Journal } from './journal.js';

/**
 * Fills `journal`'s view with the snapshot at `upTo` (the newest checkpoint at or below it,
 * streamed in, then the records after it), picking again when a concurrent GC pruned past the
 * checkpoint picked. The journal must be one nothing uses until this resolves (not yet claimed,
 * or temporary): the checkpoint's entries land before its checksum is checked at its end.
 * Returns the checkpoint's seq (undefined: none) and the seq of the last record applied.
 */
async function fill(journal: Journal, log: VolumeLog, upTo: number): Promise<{ cp: number | undefined; last: number }> {
  for (let attempt = 1; ; attempt++) {
    let cp: number | undefined;
    try {
      cp = await log.latestCheckpoint(upTo);
      journal.loadEntries([], true);
      if (cp !== undefined) {
        const read = await log.streamCheckpoint(cp, (batch) => journal.loadEntries(batch));
        // Unique paths: the journal holds one row per path.
        if (journal.entryCount() !== read.count) throw checkpointDamage(read.key, log.volumeId, 'a path appears twice in it');
        journal.setBase(cp);
      }
      const records = await log.recordsAfter(cp ?? 0, upTo);
      journal.applyRecords(records);
      return { cp, last: records.length ? records[records.length - 1]!.seq : (cp ?? 0) };
    } catch (err) {
      // A GC pruned past the checkpoint picked (it wrote a newer one first): pick again.
      const raced = isCairnError(err, 'PRUNED') || isCairnError(err, 'CORRUPT') || isCairnError(err, 'NOT_FOUND');
      if (!raced || attempt >= 5 || (await readFloor(log.store, log.volumeId)) <= (cp ?? 0)) throw err;
    }
  }
}

/**
 * Fills an empty journal (not yet claimed) with the snapshot at `upTo` (default: the newest) of
 * `log`'s volume, in bounded memory.
 * @example await bootstrap(new Journal(file), new VolumeLog(store, id));
 */
export async function bootstrap(journal: Journal, log: VolumeLog, upTo = Infinity, volumeName = log.volumeId): Promise<void> {
  if (upTo !== Infinity) {
    const floor = await readFloor(log.store, log.volumeId);
    if (upTo < floor) throw prunedError(volumeName, upTo, floor);
  }
  const { last } = await fill(journal, log, upTo);
  if (upTo !== Infinity && upTo > 0 && last !== upTo) {
    // A GC pruned past `upTo` while it was read (its records went): PRUNED, as if it had been first.
    const floor = await readFloor(log.store, log.volumeId);
    if (upTo < floor) throw prunedError(volumeName, upTo, floor);
    throw new CairnError('NOT_FOUND', `snapshot ${upTo} does not exist`, { hint: 'see vol.history() for the seqs there are' });
  }
}

/** Runs `fn` on a private temporary journal, removed whatever happens. */
async function withTemporaryJournal<T>(fn: (journal: Journal, file: string) => Promise<T>): Promise<T> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-snapshot-'));
  const file = path.join(dir, 'journal.db');
  const journal = new Journal(file);
  try {
    return await fn(journal, file);
  } finally {
    journal.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/**
 * Moves a view that fell below the volume's pruned floor (a GC deleted the records it would
 * apply) to the newest snapshot: that snapshot is bootstrapped in a temporary journal (verified
 * whole), then adopted in one transaction with the pending ops on top (Journal.adopt), as a
 * record lands. Returns the floor seen and the checkpoint's seq (0: none).
 * @example const { floor, checkpoint } = await rebootstrap(journal, log);
 */
export async function rebootstrap(journal: Journal, log: VolumeLog): Promise<{ floor: number; checkpoint: number }> {
  const floor = await readFloor(log.store, log.volumeId);
  return withTemporaryJournal(async (temp, file) => {
    const { cp } = await fill(temp, log, Infinity);
    const seq = temp.seq;
    temp.close();
    journal.adopt(file, seq);
    journal.checkpoint = cp ?? 0;
    return { floor, checkpoint: cp ?? 0 };
  });
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
  await withTemporaryJournal(async (journal) => {
    await bootstrap(journal, new VolumeLog(store, volumeId), seq);
    const root = journal.get('');
    if (withRoot && root) visit(root, entryData(root));
    for (const e of journal.iterateAll()) visit(e, entryData(e));
  });
}

/**
 * The checkpoint of snapshot `seq` of a volume, encoded one entry at a time from a private
 * temporary journal (bounded memory); `visit` sees each entry as it is encoded (GC marks them).
 * @example const body = await checkpointOf(store, id, floor, (data) => mark(data));
 */
export async function checkpointOf(store: ObjectStore, volumeId: string, seq: number, visit: (data: EntryData) => void): Promise<Buffer> {
  return withTemporaryJournal(async (journal) => {
    await bootstrap(journal, new VolumeLog(store, volumeId), seq);
    const snap = journal.cleanSnapshot(seq, (s, entries) =>
      encodeCheckpointSync(
        s,
        (function* () {
          for (const x of entries) {
            visit(x[1]);
            yield x;
          }
        })(),
      ),
    );
    return snap!.body;
  });
}
