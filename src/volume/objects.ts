/**
 * Volume management by name, as Modal's `Volume.objects` (create, list, verify, gc, delete), and
 * how the Volume API gets at a store (a URL it opens and closes, or an open store it borrows).
 *
 * Invariant: a store this module opened is closed when the call ends, whatever happens; a store
 * the caller passed is never closed here.
 */
import { type ObjectStore, openStore } from '../store/index.js';
import { Catalog, keys } from '../format/index.js';
import { checkInteger, checkTimeMs } from '../util/limits.js';
import { type VerifyOptions, type VerifyReport, verifyVolume } from './verify.js';
import type { GcOptions } from './gc.js';
import { type StoreGcReport, gcStore } from './gcstore.js';

export interface StoreOption {
  /** A store URL (`file:///…`, `s3://bucket/prefix?…`) or an open store; default `$CAIRN_STORE` or the embedded file store. */
  store?: string | ObjectStore;
}

/** The store of a call: an open one (borrowed) or one opened from a URL (owned: close it). */
export async function resolveStore(opt: StoreOption['store']): Promise<{ store: ObjectStore; owned: boolean }> {
  if (opt && typeof opt !== 'string') return { store: opt, owned: false };
  return { store: await openStore(opt), owned: true };
}

/** Volume management, as Modal's `Volume.objects`: `Volume.objects` is this object. */
export const volumeObjects = {
  /** @example await Volume.objects.create('data', { allowExisting: true }); */
  async create(name: string, options: StoreOption & { allowExisting?: boolean } = {}): Promise<void> {
    await withStore(options.store, (s) => new Catalog(s).create(name, options));
  },
  /**
   * Newest first; with `sizes`, each with `storedBytes` (every object of the volume: one LIST each).
   * @example const vols = await Volume.objects.list({ maxObjects: 10 });
   */
  async list(options: StoreOption & { maxObjects?: number; createdBefore?: Date | number; sizes?: boolean } = {}) {
    if (options.maxObjects !== undefined) checkInteger(options.maxObjects, 'maxObjects', { min: 0 });
    if (options.createdBefore !== undefined) {
      const t = options.createdBefore;
      checkTimeMs(t instanceof Date ? t.getTime() : t, 'createdBefore');
    }
    return withStore(options.store, async (s) => {
      const metas = await new Catalog(s).list(options);
      return Promise.all(
        metas.map(async (m) => ({
          name: m.name,
          id: m.id,
          createdAt: new Date(m.createdAt),
          createdBy: m.createdBy,
          ...(options.sizes ? { storedBytes: await storedBytes(s, m.id) } : {}),
        })),
      );
    });
  },
  /**
   * Verifies a volume by name, like `vol.verify()`, and also when its name object is damaged
   * (the handle `fromName` would refuse): the report then names it, and goes on when the
   * volume's id can still be found. NOT_FOUND when there is no such volume.
   * @example
   * const report = await Volume.objects.verify('data', { data: true });
   * process.exitCode = report.ok ? 0 : 1;
   */
  async verify(name: string, options: StoreOption & VerifyOptions = {}): Promise<VerifyReport> {
    return withStore(options.store, (s) => verifyVolume(s, { name }, options));
  },
  /**
   * Garbage collection of the whole store: every volume (as `vol.gc()`), the objects of deleted
   * volumes, and (file store) temporary files crashed writers left; all older than the grace.
   * @example const report = await Volume.objects.gc({ dryRun: true });
   */
  async gc(options: StoreOption & GcOptions = {}): Promise<StoreGcReport> {
    return withStore(options.store, (s) => gcStore(s, options));
  },
  /** Irreversible. @example await Volume.objects.delete('data', { allowMissing: true }); */
  async delete(name: string, options: StoreOption & { allowMissing?: boolean } = {}): Promise<void> {
    await withStore(options.store, (s) => new Catalog(s).delete(name, options));
  },
};

/** Bytes of every object of volume `id` (one LIST). */
async function storedBytes(store: ObjectStore, id: string): Promise<number> {
  return (await store.list(keys.volume(id))).reduce((n, o) => n + o.size, 0);
}

/** Runs `fn` with the store of a call, closing it after when it was opened here. */
export async function withStore<T>(opt: StoreOption['store'], fn: (s: ObjectStore) => Promise<T>): Promise<T> {
  const { store, owned } = await resolveStore(opt);
  try {
    return await fn(store);
  } finally {
    if (owned) await store.close();
  }
}
