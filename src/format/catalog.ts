/**
 * The volume catalog on the store: names -> volume ids, volume metadata, create / look up /
 * list / rename / delete.
 *
 * Invariants: `names/<name>` is created with `ifAbsent`, so two creators of one name cannot both
 * win; a volume's id never changes (renames move the name only); deleting a volume removes its
 * name first, so it is invisible before its objects go.
 */
import crypto from 'node:crypto';
import os from 'node:os';
import { CairnError, isCairnError } from '../errors.js';
import type { ObjectStore } from '../store/index.js';
import { type VolumeMeta, decodeMeta, encodeMeta } from './records.js';
import { FORMAT_VERSION, VOLUME_ID_RE, keys } from './keys.js';
import { checkVolumeName } from './paths.js';

/** Who is acting, for `createdBy` and commit authors: `$CAIRN_AUTHOR`, else user@host. */
export function currentAuthor(): string {
  if (process.env.CAIRN_AUTHOR) return process.env.CAIRN_AUTHOR;
  let user = 'unknown';
  try {
    user = os.userInfo().username;
  } catch {
    /* no passwd entry in some containers */
  }
  return `${user}@${os.hostname()}`;
}

function newVolumeId(): string {
  // Time-ordered prefix (for humans), random suffix (for uniqueness).
  return `vo-${Date.now().toString(36)}${crypto.randomBytes(6).toString('hex')}`;
}

export class Catalog {
  constructor(readonly store: ObjectStore) {}

  /** Creates a named volume; ALREADY_EXISTS unless `allowExisting`. */
  async create(name: string, options: { allowExisting?: boolean } = {}): Promise<{ meta: VolumeMeta; created: boolean }> {
    checkVolumeName(name);
    const meta: VolumeMeta = {
      version: FORMAT_VERSION,
      id: newVolumeId(),
      name,
      createdAt: Date.now(),
      createdBy: currentAuthor(),
    };
    await this.store.put(keys.meta(meta.id), encodeMeta(meta), { ifAbsent: true });
    try {
      await this.store.put(keys.name(name), encodeMeta(meta), { ifAbsent: true });
      return { meta, created: true };
    } catch (err) {
      await this.store.delete(keys.meta(meta.id));
      if (isCairnError(err, 'ALREADY_EXISTS')) {
        if (options.allowExisting) return { meta: await this.lookup(name), created: false };
        throw new CairnError('ALREADY_EXISTS', `volume ${name} already exists`, {
          volume: name,
          hint: 'pick another name, or pass allowExisting / createIfMissing to use it',
        });
      }
      throw err;
    }
  }

  /** The metadata of a named volume; NOT_FOUND when there is none. */
  async lookup(name: string): Promise<VolumeMeta> {
    checkVolumeName(name);
    let body: Buffer;
    try {
      body = await this.store.get(keys.name(name));
    } catch (err) {
      if (isCairnError(err, 'NOT_FOUND')) {
        throw new CairnError('NOT_FOUND', `volume ${name} not found`, {
          volume: name,
          hint: 'create it first (Volume.objects.create, or createIfMissing: true)',
        });
      }
      throw err;
    }
    const byName = decodeMeta(body, keys.name(name), name);
    return { ...(await this.byId(byName.id)), name };
  }

  async byId(id: string): Promise<VolumeMeta> {
    if (!VOLUME_ID_RE.test(id)) {
      throw new CairnError('INVALID_ARGUMENT', `invalid volume id ${JSON.stringify(id)}`, { hint: 'ids look like vo-…' });
    }
    try {
      return decodeMeta(await this.store.get(keys.meta(id)), keys.meta(id), id);
    } catch (err) {
      if (isCairnError(err, 'NOT_FOUND')) throw new CairnError('NOT_FOUND', `volume id ${id} not found`, { volume: id });
      throw err;
    }
  }

  /** Named volumes, newest first. */
  async list(options: { maxObjects?: number; createdBefore?: Date | number } = {}): Promise<VolumeMeta[]> {
    const names = await this.store.list(keys.names());
    const metas = await Promise.all(
      names.map(async (o) => {
        try {
          const name = o.key.slice(keys.names().length);
          return { ...decodeMeta(await this.store.get(o.key), o.key, name), name };
        } catch (err) {
          if (isCairnError(err, 'NOT_FOUND')) return undefined; // deleted meanwhile
          throw err;
        }
      }),
    );
    const before = options.createdBefore === undefined ? Infinity : Number(options.createdBefore);
    const out = metas
      .filter((m): m is VolumeMeta => m !== undefined && m.createdAt < before)
      .sort((a, b) => b.createdAt - a.createdAt || a.name.localeCompare(b.name));
    return options.maxObjects === undefined ? out : out.slice(0, options.maxObjects);
  }

  /** Renames a volume: ALREADY_EXISTS when `to` is taken, NOT_FOUND when `from` is missing. */
  async rename(from: string, to: string): Promise<void> {
    checkVolumeName(to);
    const meta = await this.lookup(from);
    const moved: VolumeMeta = { ...meta, name: to };
    try {
      await this.store.put(keys.name(to), encodeMeta(moved), { ifAbsent: true });
    } catch (err) {
      if (isCairnError(err, 'ALREADY_EXISTS')) {
        throw new CairnError('ALREADY_EXISTS', `volume ${to} already exists`, { volume: to, hint: 'pick another name' });
      }
      throw err;
    }
    await this.store.put(keys.meta(meta.id), encodeMeta(moved));
    await this.store.delete(keys.name(from));
  }

  /** Deletes a volume and all its objects; NOT_FOUND unless `allowMissing`. */
  async delete(name: string, options: { allowMissing?: boolean } = {}): Promise<void> {
    let meta: VolumeMeta;
    try {
      meta = await this.lookup(name);
    } catch (err) {
      if (options.allowMissing && isCairnError(err, 'NOT_FOUND')) return;
      throw err;
    }
    await this.store.delete(keys.name(name));
    await this.deleteObjects(meta.id);
  }

  /** Removes every object of a volume id (its metadata last). */
  async deleteObjects(id: string): Promise<void> {
    const objects = await this.store.list(keys.volume(id));
    const metaKey = keys.meta(id);
    const batch = 32;
    const rest = objects.filter((o) => o.key !== metaKey);
    for (let i = 0; i < rest.length; i += batch) {
      await Promise.all(rest.slice(i, i + batch).map((o) => this.store.delete(o.key)));
    }
    await this.store.delete(metaKey);
  }
}
