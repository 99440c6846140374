/**
 * GC of a whole store (`Volume.objects.gc()`, `cairn volume gc` without a volume): every named
 * volume by gc.ts, then the objects of volume ids no name points at, then the file store's stale
 * temporary files (docs/ARCHITECTURE.md, "Deleted volumes, temporary files").
 *
 * Invariants: ages are store-clock differences from one probe at the start; an id goes only when
 * every one of its objects is older than the grace and no name points at it when it goes; a
 * damaged name object stops the store-wide part (its id is unknown).
 */
import pLimit from 'p-limit';
import { CairnError, isCairnError } from '../errors.js';
import type { ObjectInfo, ObjectStore } from '../store/index.js';
import { VOLUME_ID_RE, decodeMeta, keys } from '../format/index.js';
import { CLOCK_SLACK_MS, type GcOptions, type GcReport, ageOf, checkGrace, gcVolume, storeNow } from './gc.js';

export interface StoreGcReport {
  volumes: GcReport[];
  /** Volume ids with no name (deleted volumes, or a create that died), older than the grace. */
  deletedVolumes: { ids: string[]; objects: number; bytes: number };
  /** The file store's `.tmp-…` files left by crashed writers. */
  temporary: { count: number; bytes: number };
  dryRun: boolean;
  elapsedMs: number;
}

/**
 * GC of a whole store: every named volume, then the objects of volume ids no name points at
 * (deleted volumes; a volume being created writes its meta before its name, so only ids whose
 * every object is older than the grace go), then the file store's stale temporary files.
 *
 * @example const report = await gcStore(store, { dryRun: true });
 */
export async function gcStore(store: ObjectStore, options: GcOptions = {}): Promise<StoreGcReport> {
  const started = Date.now();
  const graceMs = checkGrace(options.graceMs);
  const dryRun = !!options.dryRun;
  // The store's clock at the start: ages are measured from here, however long the per-volume gcs
  // below take (a volume created while they run is never old enough).
  const now = await storeNow(store);
  const named = new Map<string, string>();
  for (const o of await store.list(keys.names())) {
    const name = o.key.slice(keys.names().length);
    try {
      named.set(decodeMeta(await store.get(o.key), o.key, name).id, name);
    } catch (err) {
      if (isCairnError(err, 'NOT_FOUND')) continue;
      // A damaged name object: its id is unknown, so no nameless volume can be proven dead.
      throw new CairnError(
        'CORRUPT',
        `name object ${o.key} is damaged; gc of the whole store stops`,
        {
          key: o.key,
          hint: '`cairn volume verify` names what is wrong; gc a volume by name meanwhile',
        },
        { cause: err },
      );
    }
  }
  const volumes: GcReport[] = [];
  for (const [id, name] of named) volumes.push(await gcVolume(store, { id, name }, options));

  const byId = new Map<string, ObjectInfo[]>();
  for (const o of await store.list('volumes/')) {
    const vid = o.key.split('/')[1]!;
    if (named.has(vid) || !VOLUME_ID_RE.test(vid)) continue;
    let list = byId.get(vid);
    if (!list) byId.set(vid, (list = []));
    list.push(o);
  }
  const deletedVolumes = { ids: [] as string[], objects: 0, bytes: 0 };
  const limit = pLimit(Math.max(1, options.concurrency ?? 16));
  for (const [vid, objects] of byId) {
    if (!objects.every((o) => ageOf(o, now) >= graceMs + CLOCK_SLACK_MS)) continue;
    // Named meanwhile (a create that was slow between its meta and its name)?
    if (await namesId(store, vid)) continue;
    deletedVolumes.ids.push(vid);
    deletedVolumes.objects += objects.length;
    for (const o of objects) deletedVolumes.bytes += o.size;
    if (dryRun) continue;
    const meta = keys.meta(vid);
    await Promise.all(objects.filter((o) => o.key !== meta).map((o) => limit(() => store.delete(o.key))));
    await store.delete(meta);
  }
  const temporary = store.sweepTemporary ? await store.sweepTemporary(now - graceMs - CLOCK_SLACK_MS, { dryRun }) : { count: 0, bytes: 0 };
  return { volumes, deletedVolumes, temporary, dryRun, elapsedMs: Date.now() - started };
}

/** Whether some name object now points at volume id `id`. */
async function namesId(store: ObjectStore, id: string): Promise<boolean> {
  for (const o of await store.list(keys.names())) {
    try {
      if (decodeMeta(await store.get(o.key), o.key, o.key.slice(keys.names().length)).id === id) return true;
    } catch {
      return true; // unreadable: assume it might
    }
  }
  return false;
}
