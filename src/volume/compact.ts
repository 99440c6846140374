/**
 * Compaction: GC's rewriting of mostly-dead packs (docs/ARCHITECTURE.md, "Compaction", has the
 * protocol and why it is safe).
 *
 * A pack that is referenced but mostly dead (at least `threshold` of its bytes referenced by no
 * retained snapshot) and older than the grace has its live chunks copied (each verified against
 * its hash) into a new pack, then a forwarding object `forward/<pack>` is created (ifAbsent:
 * one compaction of a pack wins) mapping each copied chunk to its new place, then the old pack is
 * condemned like an unreferenced one. Records and checkpoints keep naming the old pack; a reader
 * whose GET of it is NOT_FOUND follows the forwarding object (chunks/forward.ts). GC deletes a
 * condemned pack that is still referenced only when its forwarding object covers every chunk its
 * mark references there.
 *
 * Marks follow forwarding (`resolveForwards`): a referenced chunk of a forwarded pack also marks
 * its new place, so the new pack lives as long as the old one is referenced, and a forwarding
 * object goes only once its pack is gone and referenced by nothing.
 *
 * Invariants: nothing here deletes; an object it writes is either a fresh pack (an orphan if the
 * run dies before its forwarding object: collected as any unreferenced pack) or an immutable
 * forwarding object; a damaged forwarding object covers nothing (its pack is never deleted).
 */
import { isCairnError } from '../errors.js';
import type { ObjectInfo, ObjectStore } from '../store/index.js';
import { type ChunkRef, PackBuilder, encodeForward, outboardAsync, verifyChunkAsync } from '../chunks/index.js';
import { keys } from '../format/index.js';
import type { PackRefs } from './refs.js';

/** Default share of a pack's bytes that must be dead for compaction to rewrite it. */
export const DEFAULT_COMPACT_THRESHOLD = 0.5;
/** Longest run of adjacent live chunks read with one range GET while copying. */
const RUN_BYTES = 8 * 1024 * 1024;

/** A pack compaction would rewrite. */
export interface CompactPlan {
  pack: string;
  info: ObjectInfo;
  /** Its referenced chunks, by offset. */
  live: ChunkRef[];
  liveBytes: number;
}

/**
 * The packs worth compacting: present, referenced, old enough (`isOld`), not excluded (condemned,
 * being deleted, already forwarded), with at least `threshold` of their bytes dead.
 * @example const plans = compactionPlans(packs, refs, 0.5, (o) => old(o), (p) => skip.has(p));
 */
export function compactionPlans(
  packs: ReadonlyMap<string, ObjectInfo>,
  refs: PackRefs,
  threshold: number,
  isOld: (o: ObjectInfo) => boolean,
  excluded: (pack: string) => boolean,
): CompactPlan[] {
  const plans: CompactPlan[] = [];
  for (const [pack, info] of packs) {
    const r = refs.get(pack);
    if (!r || excluded(pack) || !isOld(info) || info.size <= 0) continue;
    const byHash = new Map<string, ChunkRef>();
    for (const c of r.chunks.values()) if (!byHash.has(c.hash)) byHash.set(c.hash, c);
    const live = [...byHash.values()].sort((a, b) => a.offset - b.offset);
    const liveBytes = live.reduce((n, c) => n + c.length, 0);
    if ((info.size - liveBytes) / info.size >= threshold) plans.push({ pack, info, live, liveBytes });
  }
  return plans;
}

/**
 * Copies the live chunks of `plan.pack` into a new pack (each verified against its hash), then
 * creates the forwarding object (ifAbsent). Returns the new pack and whether this run's
 * forwarding object is the one on the store (false: another GC compacted the pack first, and the
 * new pack is an orphan GC collects later); undefined when the old pack is gone already.
 *
 * @example const r = await compactPack(store, id, plan, now);
 */
export async function compactPack(
  store: ObjectStore,
  id: string,
  plan: CompactPlan,
  now: number,
): Promise<{ newPack: string; copiedBytes: number; won: boolean } | undefined> {
  const prefix = keys.packPrefix(id);
  const key = prefix + plan.pack;
  const builder = new PackBuilder();
  const moved = new Map<string, ChunkRef>();
  for (let i = 0; i < plan.live.length;) {
    let j = i + 1;
    while (
      j < plan.live.length &&
      plan.live[j]!.offset === plan.live[j - 1]!.offset + plan.live[j - 1]!.length &&
      plan.live[j]!.offset + plan.live[j]!.length - plan.live[i]!.offset <= RUN_BYTES
    )
      j++;
    const first = plan.live[i]!;
    const last = plan.live[j - 1]!;
    let body: Buffer;
    try {
      body = await store.get(key, { offset: first.offset, length: last.offset + last.length - first.offset });
    } catch (err) {
      if (isCairnError(err, 'NOT_FOUND')) return undefined;
      throw err;
    }
    for (const c of plan.live.slice(i, j)) {
      const bytes = await verifyChunkAsync(body.subarray(c.offset - first.offset, c.offset - first.offset + c.length), c.hash, c.length, {
        key,
        pack: plan.pack,
        offset: c.offset,
      });
      const copy = Buffer.from(bytes);
      const offset = builder.add(c.hash, copy, builder.blockBytes ? outboardAsync(copy, builder.blockBytes) : undefined);
      moved.set(c.hash, { hash: c.hash, pack: builder.id, offset, length: c.length });
    }
    i = j;
  }
  const newPack = builder.id;
  const copiedBytes = builder.size;
  await store.put(prefix + newPack, await builder.sealed());
  try {
    await store.put(keys.forwardPrefix(id) + plan.pack, encodeForward({ pack: plan.pack, time: now, chunks: moved }), { ifAbsent: true });
  } catch (err) {
    if (isCairnError(err, 'ALREADY_EXISTS')) return { newPack, copiedBytes, won: false };
    throw err;
  }
  return { newPack, copiedBytes, won: true };
}
