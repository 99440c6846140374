/**
 * A volume's commit log and checkpoints on the object store.
 *
 * Invariants: `log/<seq>` is created only with `ifAbsent`, so each seq has exactly one record and
 * the log is a total order without holes; records and checkpoints are immutable once written; a checkpoint at
 * seq S equals replaying records 1..S onto an empty volume. Everything read is verified by the
 * decoders of records.ts (CORRUPT with `{ key, volume }`: the volume id here).
 */
import { CairnError, isCairnError } from '../errors.js';
import type { ObjectStore } from '../store/index.js';
import {
  type Checkpoint,
  type CommitRecord,
  type EntryData,
  decodeCheckpoint,
  decodeRecord,
  encodeCheckpoint,
  encodeRecord,
  streamCheckpoint,
} from './records.js';
import { keys, seqOfKey } from './keys.js';
import { prunedError, readFloor } from './retention.js';

export class VolumeLog {
  constructor(
    readonly store: ObjectStore,
    readonly volumeId: string,
  ) {}

  /** Seqs of the records after `seq`, in order (one LIST). */
  async seqsAfter(seq: number, upTo = Infinity): Promise<number[]> {
    const found = await this.store.list(keys.logPrefix(this.volumeId), { startAfter: keys.log(this.volumeId, seq) });
    return found.map((o) => seqOfKey(o.key)).filter((s) => s <= upTo);
  }

  async read(seq: number): Promise<CommitRecord> {
    const key = keys.log(this.volumeId, seq);
    return decodeRecord(await this.store.get(key), key, this.volumeId);
  }

  /**
   * Records after `seq` (up to `upTo`), fetched in parallel, returned in order. The log has no
   * holes (each seq is taken after the one before it), so a missing seq is CORRUPT.
   */
  async recordsAfter(seq: number, upTo = Infinity): Promise<CommitRecord[]> {
    const seqs = await this.seqsAfter(seq, upTo);
    if (seqs.length && seqs[0] !== seq + 1) {
      // A view older than the pruned floor cannot catch up record by record.
      const floor = await readFloor(this.store, this.volumeId);
      if (seq < floor) throw prunedError(this.volumeId, seq, floor);
    }
    this.checkContiguous(seqs, seq + 1);
    return Promise.all(seqs.map((s) => this.read(s)));
  }

  /**
   * Every record still on the store, in order: records below a checkpoint may have been removed
   * (a session starts from the checkpoint), so the first one may be past seq 1; no holes after it.
   */
  async retainedRecords(): Promise<CommitRecord[]> {
    // Below the pruned floor, a GC stopped half-way may have left some records: not history.
    const floor = await readFloor(this.store, this.volumeId);
    const seqs = (await this.seqsAfter(0)).filter((s) => s >= floor);
    this.checkContiguous(seqs, seqs[0] ?? 1);
    return Promise.all(seqs.map((s) => this.read(s)));
  }

  private checkContiguous(seqs: number[], first: number): void {
    seqs.forEach((s, i) => {
      if (s !== first + i) {
        const key = keys.log(this.volumeId, first + i);
        const message = `commit record ${key} of volume ${this.volumeId} is missing (the log goes on at seq ${s})`;
        throw new CairnError('CORRUPT', message, {
          key,
          volume: this.volumeId,
          hint: 'an object was removed from the store; `cairn volume verify` lists every damaged object',
        });
      }
    });
  }

  /** Creates `log/<record.seq>`; false when another writer holds that seq already. */
  async tryAppend(record: CommitRecord): Promise<boolean> {
    try {
      await this.store.put(keys.log(this.volumeId, record.seq), encodeRecord(record), { ifAbsent: true });
      return true;
    } catch (err) {
      if (isCairnError(err, 'ALREADY_EXISTS')) return false;
      throw err;
    }
  }

  /** The newest committed seq (0 for an empty volume). */
  async head(): Promise<number> {
    const seqs = await this.seqsAfter(0);
    return seqs.length ? seqs[seqs.length - 1]! : 0;
  }

  /** The newest checkpoint at or below `maxSeq`, if any. */
  async latestCheckpoint(maxSeq = Infinity): Promise<number | undefined> {
    const found = await this.store.list(keys.checkpointPrefix(this.volumeId));
    const seqs = found.map((o) => seqOfKey(o.key)).filter((s) => s <= maxSeq);
    return seqs.length ? seqs[seqs.length - 1] : undefined;
  }

  /**
   * Bytes a bootstrap to `upTo` reads: the newest checkpoint at or below it and the records after
   * that checkpoint (two LISTs; sizes as listed).
   */
  async bootstrapBytes(upTo = Infinity): Promise<number> {
    const cps = (await this.store.list(keys.checkpointPrefix(this.volumeId))).filter((o) => seqOfKey(o.key) <= upTo);
    const cp = cps[cps.length - 1];
    const from = cp ? seqOfKey(cp.key) : 0;
    const records = await this.store.list(keys.logPrefix(this.volumeId), { startAfter: keys.log(this.volumeId, from) });
    return (cp?.size ?? 0) + records.filter((o) => seqOfKey(o.key) <= upTo).reduce((n, o) => n + o.size, 0);
  }

  async readCheckpoint(seq: number): Promise<Checkpoint> {
    const key = keys.checkpoint(this.volumeId, seq);
    return decodeCheckpoint(await this.store.get(key), key, this.volumeId);
  }

  /**
   * Streams the checkpoint at `seq` into `visit` (./checkpoint.ts: what `visit` got is untrusted
   * until this resolves). Returns its seq, the number of entries and its key.
   */
  async streamCheckpoint(seq: number, visit: (batch: [string, EntryData][]) => void): Promise<{ seq: number; count: number; key: string }> {
    const key = keys.checkpoint(this.volumeId, seq);
    const r = await streamCheckpoint(await this.store.get(key), key, this.volumeId, visit);
    return { seq: r.seq, count: r.count, key };
  }

  async writeCheckpoint(seq: number, entries: Iterable<[string, EntryData]>): Promise<void> {
    await this.putCheckpoint(seq, await encodeCheckpoint(seq, entries));
  }

  /** Stores checkpoint `body` (from encodeCheckpointSync) at `seq`, unless one is there. */
  async putCheckpoint(seq: number, body: Buffer): Promise<void> {
    try {
      await this.store.put(keys.checkpoint(this.volumeId, seq), body, { ifAbsent: true });
    } catch (err) {
      if (!isCairnError(err, 'ALREADY_EXISTS')) throw err;
    }
  }
}
