/**
 * History retention: which snapshots of a volume stay readable (docs/ARCHITECTURE.md, "History
 * retention and garbage collection").
 *
 * Invariants: the retained snapshots are always a suffix `[floor, head]` of the log: the newest
 * `keepLast`, and every one committed (by the store's clock: the record's LastModified) within
 * `keepDays`, and everything after the oldest of those; the floor written to `volumes/<id>/pruned/`
 * only rises, and it is written before GC deletes anything below it, so a reader of a pruned seq
 * always gets PRUNED, never a damaged snapshot.
 */
import { CairnError, isCairnError } from '../errors.js';
import type { ObjectInfo, ObjectStore } from '../store/index.js';
import { checkInteger } from '../util/limits.js';
import { MAX_KEEP_DAYS, type RetentionPolicy, decodeRetention, encodePruned, encodeRetention } from './gcobjects.js';
import { keys, seqOfKey } from './keys.js';

export type { RetentionPolicy } from './gcobjects.js';

/** Without a policy on the store: time travel over the last week, and at least 100 snapshots. */
export const DEFAULT_RETENTION: Readonly<RetentionPolicy> = Object.freeze({ keepLast: 100, keepDays: 7 });

const DAY_MS = 86_400_000;

/** Checks a (partial) policy given by a caller: INVALID_ARGUMENT, nothing written, when bad. */
export function checkRetention(p: Partial<RetentionPolicy>): void {
  if (p.keepLast !== undefined) checkInteger(p.keepLast, 'keepLast', { min: 1 });
  if (p.keepDays !== undefined) {
    const d = p.keepDays;
    if (typeof d !== 'number' || !Number.isFinite(d) || d < 0 || d > MAX_KEEP_DAYS) {
      const message = `keepDays ${JSON.stringify(d)} is not a number of days in [0, ${MAX_KEEP_DAYS}]`;
      throw new CairnError('INVALID_ARGUMENT', message, {
        hint: 'e.g. 7 (a week); 0 keeps only the newest keepLast snapshots',
      });
    }
  }
}

/** The volume's policy (DEFAULT_RETENTION when none was set). */
export async function readRetention(store: ObjectStore, id: string): Promise<RetentionPolicy> {
  const key = keys.retention(id);
  try {
    return decodeRetention(await store.get(key), key, id);
  } catch (err) {
    if (isCairnError(err, 'NOT_FOUND')) return { ...DEFAULT_RETENTION };
    throw err;
  }
}

/** Replaces the volume's policy; fields not given keep their current value. Returns the new policy. */
export async function writeRetention(store: ObjectStore, id: string, p: Partial<RetentionPolicy>): Promise<RetentionPolicy> {
  checkRetention(p);
  const next = { ...(await readRetention(store, id)), ...definedOnly(p) };
  await store.put(keys.retention(id), encodeRetention(next));
  return next;
}

function definedOnly(p: Partial<RetentionPolicy>): Partial<RetentionPolicy> {
  const out: Partial<RetentionPolicy> = {};
  if (p.keepLast !== undefined) out.keepLast = p.keepLast;
  if (p.keepDays !== undefined) out.keepDays = p.keepDays;
  return out;
}

/** The pruned floor: snapshots below it are gone (0: nothing was ever pruned). One LIST. */
export async function readFloor(store: ObjectStore, id: string): Promise<number> {
  let floor = 0;
  for (const o of await store.list(keys.prunedPrefix(id))) {
    const s = seqOfKey(o.key);
    if (Number.isSafeInteger(s) && s > floor) floor = s;
  }
  return floor;
}

/**
 * Raises the floor to `seq` (a no-op when it is there already): creates `pruned/<seq>`, then
 * removes the lower floor keys. Returns the floor afterwards (another GC may have raised it more).
 */
export async function raiseFloor(store: ObjectStore, id: string, seq: number, now: number): Promise<number> {
  try {
    await store.put(keys.pruned(id, seq), encodePruned({ seq, time: now }), { ifAbsent: true });
  } catch (err) {
    if (!isCairnError(err, 'ALREADY_EXISTS')) throw err;
  }
  let floor = seq;
  const found = await store.list(keys.prunedPrefix(id));
  for (const o of found) floor = Math.max(floor, seqOfKey(o.key) || 0);
  for (const o of found) if (seqOfKey(o.key) < floor) await store.delete(o.key);
  return floor;
}

/**
 * The oldest retained seq given the log's objects as listed (`log`, in order), the policy and
 * the store's time `now`: the smallest seq that is among the newest `keepLast` or was written
 * within `keepDays`; every seq after it is retained too. 0 for an empty log.
 */
export function retainedFrom(log: readonly ObjectInfo[], policy: RetentionPolicy, now: number): number {
  if (log.length === 0) return 0;
  const head = seqOfKey(log[log.length - 1]!.key);
  let from = Math.max(1, head - policy.keepLast + 1);
  const cutoff = now - policy.keepDays * DAY_MS;
  for (const o of log) {
    const s = seqOfKey(o.key);
    if (s >= from) break;
    if (policy.keepDays > 0 && (o.lastModified ?? now) >= cutoff) {
      from = s;
      break;
    }
  }
  return from;
}

export const PRUNED_HINT = 'open a newer snapshot (vol.history() lists the seqs kept); vol.setRetention() sets what is kept';

/** PRUNED for a snapshot below the volume's floor. */
export function prunedError(volume: string, seq: number, floor: number): CairnError {
  const why = `was pruned by its retention policy (the oldest kept is ${floor})`;
  const message = `snapshot ${seq} of volume ${volume} ${why}`;
  return new CairnError('PRUNED', message, {
    volume,
    seq,
    floor,
    hint: PRUNED_HINT,
  });
}
