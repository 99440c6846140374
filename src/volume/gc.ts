/**
 * Garbage collection without a server (docs/ARCHITECTURE.md, "History retention and garbage
 * collection", has the protocol and the argument for its safety).
 *
 * A GC run of one volume: probe the store's clock (`now`), apply retention (write the pruned
 * floor, make sure a checkpoint exists at the oldest retained seq), mark every pack referenced by
 * that checkpoint and the records after it, then
 *  - delete the packs listed in a condemnation at least its grace old (store clock) that are still
 *    unreferenced, then that condemnation;
 *  - condemn (one new `gc/<time>-<rand>` object) the unreferenced packs older than the grace that
 *    no condemnation lists yet;
 *  - delete the records and checkpoints below the floor (the record at the floor stays: the log
 *    head is found by listing the log, so it must never be emptied).
 * Writers never publish a record referencing a condemned or missing pack (`CommitGuard`, used by
 * sync.ts right before every append), so a pack is deleted only when no record can still name it.
 *
 * Invariants: every age is a difference of two store-clock times (LastModified), never a host's
 * clock; a damaged record or checkpoint in the marked range aborts the run before anything is
 * deleted; each step is idempotent, so a GC killed anywhere (or several at once) leaves a store
 * the next run finishes; `dryRun` reads only.
 */
import crypto from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pLimit from 'p-limit';
import { CairnError, isCairnError } from '../errors.js';
import type { ObjectInfo, ObjectStore } from '../store/index.js';
import { checkInteger } from '../util/limits.js';
import { lowerPriority } from '../util/priority.js';
import {
  CONDEMNED_NAME_RE,
  PACK_ID_RE,
  decodeCondemnation,
  encodeCondemnation,
  keys,
  seqOfKey,
  VolumeLog,
  type RetentionPolicy,
  checkRetention,
  raiseFloor,
  prunedError,
  readFloor,
  readRetention,
  retainedFrom,
} from '../format/index.js';
import { DEFAULT_GRACE_MS, MIN_GRACE_MS, checkpointOf, putEntries } from '../session/index.js';
import { type PackRefs, addRefs } from './refs.js';
import { DEFAULT_COMPACT_THRESHOLD, compactPack, compactionPlans } from './compact.js';
import { covers, listForwards, resolveForwards } from './refs.js';

export { APPEND_WINDOW_MS, DEFAULT_GRACE_MS, MIN_GRACE_MS } from '../session/index.js';

/** LastModified has 1 s resolution on S3: ages are compared with this much slack. */
export const CLOCK_SLACK_MS = 1_000;
/** Runs of one gc that other GCs may cut short by pruning past its mark before it gives up (PRUNED). */
const PRUNED_RETRIES = 20;

export interface GcOptions {
  /**
   * Override the volume's retention for this run: given either, the run keeps exactly that (the
   * other at its least: keepLast 1, keepDays 0).
   */
  keepLast?: number;
  keepDays?: number;
  /** Report only; change nothing. */
  dryRun?: boolean;
  /** Grace period in ms (default DEFAULT_GRACE_MS, at least MIN_GRACE_MS). */
  graceMs?: number;
  /**
   * Compaction: a referenced pack whose dead share of bytes is at least this is rewritten (its
   * live chunks copied to a new pack, reads forwarded), default DEFAULT_COMPACT_THRESHOLD (0.5);
   * in (0, 1]: 1 never compacts (a referenced pack is never all dead).
   */
  compactThreshold?: number;
  /**
   * Lower this process's CPU priority to this nice value (0-19) for the run and after (never
   * raised back): for a process that exists to gc (`cairn volume gc` passes BACKGROUND_NICE, 10),
   * so commits and reads on the host go first. Default: unchanged.
   */
  nice?: number;
  /** Objects deleted or read at once (default 16). */
  concurrency?: number;
  /** Called as the run goes (phase names: retention, mark, sweep, prune). */
  onProgress?: (phase: string) => void;
}

export interface GcReport {
  volume: string;
  id: string;
  dryRun: boolean;
  /** The newest seq when marking, and the oldest retained one (0: empty volume). */
  head: number;
  retainedFrom: number;
  policy: RetentionPolicy;
  graceMs: number;
  records: { deleted: number; deletedBytes: number };
  checkpoints: { deleted: number; deletedBytes: number; written: number };
  packs: {
    total: number;
    live: number;
    liveBytes: number;
    /** Unreferenced but younger than the grace (a commit may still publish them). */
    young: number;
    /** Newly condemned this run (deleted by a run at least one grace later). */
    condemned: number;
    condemnedBytes: number;
    deleted: number;
    deletedBytes: number;
  };
  /** Compaction (./compact.ts): with `dryRun`, what it would rewrite. */
  compaction: {
    threshold: number;
    /** Mostly-dead packs rewritten (their live chunks copied, the pack condemned). */
    packs: number;
    packBytes: number;
    /** Live bytes copied into new packs. */
    copiedBytes: number;
    /** Forwarding objects deleted (their pack gone and referenced by no retained snapshot). */
    forwardsDeleted: number;
  };
  elapsedMs: number;
}

/**
 * The store's clock now (ms): writes a probe object and lists it back for its LastModified.
 * @example const now = await storeNow(store);
 */
export async function storeNow(store: ObjectStore): Promise<number> {
  const key = `_cairn/clock/${Date.now()}-${crypto.randomBytes(8).toString('hex')}`;
  await store.put(key, Buffer.from('cairn gc clock probe\n'));
  try {
    // Listed, as the ages it is compared with are (HEAD's Last-Modified header has 1 s resolution).
    const [info] = await store.list(key, { limit: 1 });
    if (info?.key !== key || info.lastModified === undefined) {
      throw new CairnError('UNSUPPORTED', `store ${store.url} reports no LastModified; gc cannot measure ages`, {
        store: store.url,
        hint: 'gc needs a store whose listings carry modification times',
      });
    }
    return info.lastModified;
  } finally {
    await store.delete(key).catch(() => undefined);
  }
}

export function checkGrace(graceMs: number | undefined): number {
  const g = graceMs ?? DEFAULT_GRACE_MS;
  checkInteger(g, 'graceMs', { min: MIN_GRACE_MS });
  return g;
}

/** Age of `o` at store time `now`, by the store's clock; NaN (never old) when it has no time. */
export function ageOf(o: ObjectInfo, now: number): number {
  return o.lastModified === undefined ? NaN : now - o.lastModified;
}

/**
 * Collects garbage of one volume (see the module comment); returns what it did (or, with
 * `dryRun`, would do).
 *
 * @example
 * const report = await gcVolume(store, { id, name: 'data' }, { keepLast: 10 });
 * console.log(report.packs.deletedBytes);
 */
export async function gcVolume(store: ObjectStore, volume: { id: string; name: string }, options: GcOptions = {}): Promise<GcReport> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await gcVolumeOnce(store, volume, options);
    } catch (err) {
      // Another GC pruned past the snapshot this one started marking from: start again (nothing
      // was deleted yet: deletions come after the mark), after a jittered pause that grows, so
      // that GCs running back to back on other hosts (each raising the floor) cannot starve it.
      if (!isCairnError(err, 'PRUNED') || attempt >= PRUNED_RETRIES) throw err;
      await sleep(Math.random() * Math.min(5_000, 100 * 2 ** attempt));
    }
  }
}

async function gcVolumeOnce(store: ObjectStore, volume: { id: string; name: string }, options: GcOptions): Promise<GcReport> {
  const started = Date.now();
  if (options.nice !== undefined) await lowerPriority(options.nice);
  const graceMs = checkGrace(options.graceMs);
  const threshold = options.compactThreshold ?? DEFAULT_COMPACT_THRESHOLD;
  if (!(threshold > 0 && threshold <= 1)) {
    throw new CairnError('INVALID_ARGUMENT', `compactThreshold ${JSON.stringify(threshold)} is not in (0, 1]`, {
      hint: 'the share of a pack that must be dead for gc to rewrite it, e.g. 0.5; 1 never compacts',
    });
  }
  checkRetention({ keepLast: options.keepLast, keepDays: options.keepDays });
  const dryRun = !!options.dryRun;
  const { id } = volume;
  const limit = pLimit(Math.max(1, options.concurrency ?? 16));
  const progress = options.onProgress ?? (() => undefined);
  const log = new VolumeLog(store, id);

  // 1. The store's clock, before anything is listed: every listing below happens after `now`.
  const now = await storeNow(store);

  // 2. Retention: the oldest retained seq, the floor, a checkpoint at it.
  progress('retention');
  const stored = await readRetention(store, id);
  // Either flag given: the run's policy is exactly what was given (the other one at its least).
  const override = options.keepLast !== undefined || options.keepDays !== undefined;
  const policy: RetentionPolicy = override ? { keepLast: options.keepLast ?? 1, keepDays: options.keepDays ?? 0 } : stored;
  const logs = await store.list(keys.logPrefix(id));
  const floor0 = await readFloor(store, id);
  const head = logs.length ? seqOfKey(logs[logs.length - 1]!.key) : 0;
  let from = head === 0 ? floor0 : Math.max(retainedFrom(logs, policy, now), floor0);
  // Another GC may have raised the floor further meanwhile: start from there.
  if (!dryRun && from > floor0) from = Math.min(head, await raiseFloor(store, id, from, now));
  let cps = await store.list(keys.checkpointPrefix(id));
  const report: GcReport = {
    volume: volume.name,
    id,
    dryRun,
    head,
    retainedFrom: from,
    policy,
    graceMs,
    records: { deleted: 0, deletedBytes: 0 },
    checkpoints: { deleted: 0, deletedBytes: 0, written: 0 },
    packs: { total: 0, live: 0, liveBytes: 0, young: 0, condemned: 0, condemnedBytes: 0, deleted: 0, deletedBytes: 0 },
    compaction: { threshold, packs: 0, packBytes: 0, copiedBytes: 0, forwardsDeleted: 0 },
    elapsedMs: 0,
  };
  const hasCp = (s: number) => cps.some((o) => seqOfKey(o.key) === s);
  const prunable = from > 1 && (logs.some((o) => seqOfKey(o.key) < from) || cps.some((o) => seqOfKey(o.key) < from));

  // 3. Mark: the snapshot the retained ones start from (its checkpoint, written now when missing;
  // a dry run only computes it) and every record after it.
  progress('mark');
  const refs: PackRefs = new Map();
  const marked = await underFloor(store, volume, from, async () => {
    if (prunable && !hasCp(from)) {
      // Encoded one entry at a time from a temporary journal, each entry marked as it goes.
      const cpKey = keys.checkpoint(id, from);
      const body = await checkpointOf(store, id, from, (e) => addRefs(refs, cpKey, [e]));
      if (!dryRun) {
        await log.putCheckpoint(from, body);
        report.checkpoints.written++;
        // Another GC may have pruned past `from` while this one encoded it: then the checkpoint
        // just written is below the floor, and the run starts again (and deletes it).
        const floor = await readFloor(store, id);
        if (floor > from) throw prunedError(volume.name, from, floor);
        cps = await store.list(keys.checkpointPrefix(id));
      }
      return markRecords(log, from, refs);
    }
    return markRetained(log, cps, from, refs);
  });

  // 4. Sweep: packs and condemnations as they are now (listed after `now`), records that landed
  // meanwhile marked too (not needed for safety, but it spares their writers a re-upload).
  progress('sweep');
  const packs = new Map<string, ObjectInfo>();
  for (const o of await store.list(keys.packPrefix(id))) {
    const name = o.key.slice(keys.packPrefix(id).length);
    if (PACK_ID_RE.test(name)) packs.set(name, o);
  }
  const condemnedObjects = await store.list(keys.condemnedPrefix(id));
  await underFloor(store, volume, from, () => markRecords(log, marked, refs));
  // Compaction's forwarding: a referenced chunk of a compacted pack marks its new place too.
  const forwards = await listForwards(store, id);
  const forwarded = await resolveForwards(store, id, refs, forwards);
  report.packs.total = packs.size;
  for (const [pack, { chunks }] of refs) {
    if (!packs.has(pack)) continue;
    report.packs.live++;
    for (const r of chunks.values()) report.packs.liveBytes += r.length;
  }
  const listed = new Set<string>();
  const doomed: { key: string; packs: string[] }[] = [];
  for (const o of condemnedObjects) {
    // Only well-named ones, as writers read only those (gcguard.ts).
    if (!CONDEMNED_NAME_RE.test(o.key.slice(keys.condemnedPrefix(id).length))) continue;
    let c;
    try {
      c = decodeCondemnation(await store.get(o.key), o.key, volume.name);
    } catch (err) {
      if (isCairnError(err, 'NOT_FOUND')) continue; // another GC finished it
      if (!isCairnError(err, 'CORRUPT') && !isCairnError(err, 'UNSUPPORTED')) throw err;
      // A damaged condemnation never authorises a deletion; writers refuse to commit past it.
      if (!dryRun && isCairnError(err, 'CORRUPT')) await store.delete(o.key);
      continue;
    }
    if (ageOf(o, now) >= c.graceMs + CLOCK_SLACK_MS) doomed.push({ key: o.key, packs: c.packs });
    else for (const p of c.packs) listed.add(p);
  }
  const deleting = new Set<string>();
  // A referenced pack goes only when compaction forwarded every chunk of it the mark references.
  for (const d of doomed) for (const p of d.packs) if (packs.has(p) && (!refs.has(p) || covers(forwarded.get(p)))) deleting.add(p);
  for (const p of deleting) {
    report.packs.deleted++;
    report.packs.deletedBytes += packs.get(p)!.size;
  }
  const condemn: string[] = [];
  for (const [pack, o] of packs) {
    if (deleting.has(pack) || listed.has(pack)) continue;
    // Forwarded but not (or no longer) condemned: a compaction that died before condemning it,
    // or one whose delete found a reference it does not cover. Condemned (again).
    if (refs.has(pack) && forwards.has(pack)) condemn.push(pack);
    if (refs.has(pack)) continue;
    if (ageOf(o, now) >= graceMs + CLOCK_SLACK_MS) {
      condemn.push(pack);
      report.packs.condemnedBytes += o.size;
    } else report.packs.young++;
  }
  const old = (o: ObjectInfo) => ageOf(o, now) >= graceMs + CLOCK_SLACK_MS;
  const skip = new Set([...forwards.keys(), ...listed, ...deleting, ...doomed.flatMap((d) => d.packs)]);
  const plans = threshold < 1 ? compactionPlans(packs, refs, threshold, old, (p) => skip.has(p)) : [];
  for (const plan of plans) {
    // Rewritten, then condemned with the unreferenced packs (in the same condemnation).
    const done = dryRun ? { won: true, copiedBytes: plan.liveBytes } : await compactPack(store, id, plan, now);
    if (!done?.won) continue;
    condemn.push(plan.pack);
    report.packs.condemnedBytes += plan.info.size;
    report.compaction.packs++;
    report.compaction.packBytes += plan.info.size;
    report.compaction.copiedBytes += done.copiedBytes;
  }
  report.packs.condemned = condemn.length;
  // Forwarding objects of packs that are gone and that no retained snapshot references.
  const staleForwards = [...forwards].filter(([p]) => !packs.has(p) && !refs.has(p)).map(([, o]) => o.key);
  report.compaction.forwardsDeleted = staleForwards.length;
  if (!dryRun) {
    await Promise.all(staleForwards.map((k) => limit(() => store.delete(k))));
    await Promise.all([...deleting].map((p) => limit(() => store.delete(packs.get(p)!.key))));
    await Promise.all(doomed.map((d) => limit(() => store.delete(d.key))));
    if (condemn.length) {
      const name = `${String(Math.floor(now)).padStart(15, '0')}-${crypto.randomBytes(8).toString('hex')}`;
      const key = keys.condemnedPrefix(id) + name;
      await store.put(key, encodeCondemnation({ time: now, graceMs, packs: condemn }));
    }
  }

  // 5. Prune: records below the floor (oldest first, so the log stays a suffix; the one at the
  // floor stays, so the log never empties and its head is never lost), then the checkpoints
  // below it. Only once the checkpoint at the floor exists.
  progress('prune');
  if (from > 0 && hasCp(from)) {
    const oldRecords = logs.filter((o) => seqOfKey(o.key) < from);
    const oldCps = cps.filter((o) => seqOfKey(o.key) < from);
    for (const o of oldRecords) report.records.deletedBytes += o.size;
    for (const o of oldCps) report.checkpoints.deletedBytes += o.size;
    report.records.deleted = oldRecords.length;
    report.checkpoints.deleted = oldCps.length;
    if (!dryRun) {
      for (let i = 0; i < oldRecords.length; i += 256) {
        await Promise.all(oldRecords.slice(i, i + 256).map((o) => limit(() => store.delete(o.key))));
      }
      await Promise.all(oldCps.map((o) => limit(() => store.delete(o.key))));
    }
  } else if (from > 0 && dryRun && prunable) {
    report.records.deleted = logs.filter((o) => seqOfKey(o.key) < from).length;
    report.checkpoints.deleted = cps.filter((o) => seqOfKey(o.key) < from).length;
  }
  report.elapsedMs = Date.now() - started;
  return report;
}

/**
 * Marks (into `refs`) every chunk the snapshots from `from` on reference: the newest checkpoint
 * at or below `from` (among `cps`, as listed) and every record after it. Returns the last seq marked.
 */
export async function markRetained(log: VolumeLog, cps: readonly ObjectInfo[], from: number, refs: PackRefs): Promise<number> {
  const base = [...cps].reverse().find((o) => seqOfKey(o.key) <= from);
  const baseSeq = base ? seqOfKey(base.key) : 0;
  // Streamed: a damaged checkpoint throws at its end, before anything is deleted (marking
  // more than needed until then only keeps more).
  if (base)
    await log.streamCheckpoint(baseSeq, (batch) =>
      addRefs(
        refs,
        base.key,
        batch.map(([, e]) => e),
      ),
    );
  return markRecords(log, baseSeq, refs);
}

/**
 * Runs `mark`, which reads the snapshots from `from` on. A checkpoint or record it reads may be
 * deleted under it by a concurrent GC that raised the floor past `from` (NOT_FOUND, or CORRUPT
 * for a hole a listing then shows): then PRUNED, and gcVolume starts again from the new floor.
 * Any other failure, or one with the floor still at most `from`, is real and stays as it is.
 */
async function underFloor<T>(store: ObjectStore, volume: { id: string; name: string }, from: number, mark: () => Promise<T>): Promise<T> {
  try {
    return await mark();
  } catch (err) {
    if (!isCairnError(err, 'NOT_FOUND') && !isCairnError(err, 'CORRUPT')) throw err;
    const floor = await readFloor(store, volume.id);
    if (floor > from) throw prunedError(volume.name, from, floor);
    throw err;
  }
}

async function markRecords(log: VolumeLog, after: number, refs: PackRefs): Promise<number> {
  const records = await log.recordsAfter(after);
  for (const r of records) addRefs(refs, keys.log(log.volumeId, r.seq), putEntries(r.ops));
  return records.length ? records[records.length - 1]!.seq : after;
}
