/**
 * `usage`: how much a volume stores and why (the library's `vol.usage()`, `cairn volume du`).
 *
 * Invariants: only reads; uses the same mark as GC (gc.ts `markRetained`), so `reclaimableBytes`
 * is exactly what `gc` with the volume's retention would (eventually: after the grace) delete from
 * the packs; memory is the distinct chunk refs of the retained snapshots.
 */
import type { ObjectStore } from '../store/index.js';
import { PACK_ID_RE, VolumeLog, keys, readFloor, readRetention, retainedFrom, seqOfKey, type RetentionPolicy } from '../format/index.js';
import { readSnapshot } from '../session/index.js';
import { type PackRefs, addRefs, listForwards, resolveForwards } from './refs.js';
import { markRetained, storeNow } from './gc.js';

export interface VolumeUsage {
  volume: string;
  id: string;
  head: number;
  retainedFrom: number;
  policy: RetentionPolicy;
  /** Files and symlinks in the newest snapshot. */
  files: number;
  /** The sum of their sizes: what a copy of the newest snapshot would take. */
  liveBytes: number;
  /** Distinct chunk bytes (plus inline bytes) of the newest snapshot. */
  uniqueBytes: number;
  /** liveBytes - uniqueBytes: bytes deduplication saves in the newest snapshot. */
  sharedBytes: number;
  /** Distinct chunk bytes every retained snapshot together references (history included). */
  retainedBytes: number;
  /** Every object of the volume on the store. */
  storedBytes: number;
  objects: number;
  packs: number;
  packBytes: number;
  /** Bytes of packs no retained snapshot references: gc deletes them. */
  reclaimableBytes: number;
  /** Unreferenced bytes inside packs that are still referenced (gc's compaction frees those of mostly-dead packs). */
  deadInLivePacksBytes: number;
}

function distinctBytes(refs: PackRefs): number {
  let n = 0;
  for (const { chunks } of refs.values()) for (const r of chunks.values()) n += r.length;
  return n;
}

/**
 * The usage report of volume `volume` on `store` (see VolumeUsage).
 * @example const u = await volumeUsage(store, { id, name: 'data' }); console.log(u.storedBytes / u.liveBytes);
 */
export async function volumeUsage(store: ObjectStore, volume: { id: string; name: string }): Promise<VolumeUsage> {
  const { id } = volume;
  const log = new VolumeLog(store, id);
  const now = await storeNow(store);
  const policy = await readRetention(store, id);
  const all = await store.list(keys.volume(id));
  const logs = all.filter((o) => o.key.startsWith(keys.logPrefix(id)) && Number.isSafeInteger(seqOfKey(o.key)));
  const cps = all.filter((o) => o.key.startsWith(keys.checkpointPrefix(id)) && Number.isSafeInteger(seqOfKey(o.key)));
  const packPrefix = keys.packPrefix(id);
  const packs = all.filter((o) => o.key.startsWith(packPrefix) && PACK_ID_RE.test(o.key.slice(packPrefix.length)));
  const head = logs.length ? seqOfKey(logs[logs.length - 1]!.key) : 0;
  const floor = await readFloor(store, id);
  const from = head === 0 ? floor : Math.max(retainedFrom(logs, policy, now), floor);
  const retained: PackRefs = new Map();
  await markRetained(log, cps, from, retained);
  const retainedBytes = distinctBytes(retained);
  // Packs compaction wrote are live while the chunks forwarded to them are (./refs.ts).
  await resolveForwards(store, id, retained, await listForwards(store, id));

  // The newest snapshot (../session/snapshot.ts).
  let files = 0;
  let liveBytes = 0;
  let inlineBytes = 0;
  const current: PackRefs = new Map();
  await readSnapshot(store, id, head, (e) => {
    if (e.type !== 'file' && e.type !== 'symlink') return;
    files++;
    liveBytes += e.size;
    if (e.inline) inlineBytes += e.inline.length;
    addRefs(current, e.path, [e]);
  });
  const uniqueBytes = distinctBytes(current) + inlineBytes;
  let packBytes = 0;
  let reclaimableBytes = 0;
  let livePackBytes = 0;
  for (const o of packs) {
    packBytes += o.size;
    if (retained.has(o.key.slice(keys.packPrefix(id).length))) livePackBytes += o.size;
    else reclaimableBytes += o.size;
  }
  return {
    volume: volume.name,
    id,
    head,
    retainedFrom: from,
    policy,
    files,
    liveBytes,
    uniqueBytes,
    sharedBytes: Math.max(0, liveBytes - uniqueBytes),
    retainedBytes,
    storedBytes: all.reduce((n, o) => n + o.size, 0),
    objects: all.length,
    packs: packs.length,
    packBytes,
    reclaimableBytes,
    deadInLivePacksBytes: Math.max(0, livePackBytes - retainedBytes),
  };
}
