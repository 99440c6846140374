/**
 * An in-memory ObjectStore, for unit tests of the layers above the store only. Never used by
 * the product: the embedded default is the file store.
 */
import { CairnError } from '../errors.js';
import { checkKey, checkPrefix } from './keys.js';
import type { ByteRange, ListOptions, ObjectInfo, ObjectStore, PutOptions } from './types.js';

export class MemoryStore implements ObjectStore {
  readonly url = 'memory://';
  readonly conditionalWrites = true;
  private readonly objects = new Map<string, Buffer>();
  private readonly times = new Map<string, number>();

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    const body = this.objects.get(checkKey(key));
    if (!body) throw new CairnError('NOT_FOUND', `no object ${key}`, { key, store: this.url });
    return range ? Buffer.from(body.subarray(range.offset, range.offset + range.length)) : Buffer.from(body);
  }

  async put(key: string, body: Uint8Array, options: PutOptions = {}): Promise<void> {
    checkKey(key);
    if (options.ifAbsent && this.objects.has(key)) {
      throw new CairnError('ALREADY_EXISTS', `object ${key} already exists`, { key, store: this.url });
    }
    this.objects.set(key, Buffer.from(body));
    this.times.set(key, Date.now());
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const body = this.objects.get(checkKey(key));
    return body ? { key, size: body.length, lastModified: this.times.get(key) } : undefined;
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ObjectInfo[]> {
    checkPrefix(prefix);
    const keys = [...this.objects.keys()]
      .filter((k) => k.startsWith(prefix) && (options.startAfter === undefined || k > options.startAfter))
      .sort();
    return keys.slice(0, options.limit ?? keys.length).map((key) => ({
      key,
      size: this.objects.get(key)!.length,
      lastModified: this.times.get(key),
    }));
  }

  async delete(key: string): Promise<void> {
    this.objects.delete(checkKey(key));
    this.times.delete(key);
  }

  async close(): Promise<void> {}
}
