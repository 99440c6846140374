/**
 * Helpers of the tests that damage a volume's objects on the store (records, verify): flip a
 * byte, and write a checkpoint of a session's view as a session does every 100 seqs.
 */
import type { ObjectStore } from '../../src/store/types.js';
import { VolumeLog } from '../../src/format/log.js';
import type { EntryData } from '../../src/format/records.js';
import type { Session } from '../../src/session/session.js';
import { entryData } from '../../src/session/index.js';

/** A copy of `body` with one bit of byte `i` flipped (for '0'-'9', a different digit). */
export function flip(body: Buffer, i: number): Buffer {
  const b = Buffer.from(body);
  b[i] = b[i]! ^ 0x01;
  return b;
}

/** Writes the checkpoint of session `s`'s view (it must be at `seq`, without pending changes). */
export async function writeCheckpoint(store: ObjectStore, volumeId: string, seq: number, s: Session): Promise<void> {
  const entries: [string, EntryData][] = [];
  for (const e of s.journal.iterateAll()) if (e.path !== '') entries.push([e.path, entryData(e)]);
  await new VolumeLog(store, volumeId).writeCheckpoint(seq, entries);
}
