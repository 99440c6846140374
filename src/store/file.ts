/**
 * The file-system ObjectStore (`file:///abs/path`): Cairn's embedded default, no server needed.
 *
 * Layout: a key `a/b/c` is stored at `ROOT/a%/b%/c`. Every key segment is escaped (`%` -> `%25`,
 * a leading `.` -> `%2E`), object files carry the escaped last segment as their name, and
 * directories carry the escaped segment plus a trailing `%`. So an escaped name never ends with
 * `%` (files and directories never collide: keys `a` and `a/b` may both exist) and never starts
 * with `.` (temp files, named `.tmp-…`, can never be mistaken for keys).
 *
 * Invariants:
 * - A key's content is never partial: every write goes to a temp file in the target directory,
 *   is fsynced, then renamed (plain put) or hard-linked (`ifAbsent`) into place, and the directory
 *   is fsynced. A crash leaves at most an orphan `.tmp-…` file, which `list` never shows.
 * - `put(…, { ifAbsent: true })` is atomic across processes and hosts sharing the directory:
 *   `link(2)` fails with EEXIST for every racer but one.
 * - `list` returns keys in byte (UTF-8) order, like S3.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { asCairnError, CairnError } from '../errors.js';
import { checkByteRange } from '../util/limits.js';
import { checkKey, checkPrefix } from './keys.js';
import type { ByteRange, ListOptions, ObjectInfo, ObjectStore, PutOptions } from './types.js';

const TMP_PREFIX = '.tmp-';

/** Escapes one key segment into a file name (see the module comment). */
function escapeSegment(segment: string): string {
  const s = segment.replace(/%/g, '%25');
  return s.startsWith('.') ? `%2E${s.slice(1)}` : s;
}

/** Inverse of escapeSegment. */
function unescapeSegment(name: string): string {
  return name.replace(/%(25|2E)/g, (_m, hex: string) => (hex === '25' ? '%' : '.'));
}

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** Byte-order comparison of two strings (UTF-8), as S3 orders keys. */
function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Throws INVALID_ARGUMENT unless the range is two non-negative safe integers (../util/limits.ts). */
function checkRange(key: string, range: ByteRange): void {
  checkByteRange(range.offset, range.length, { what: `for ${key}`, max: Number.MAX_SAFE_INTEGER, context: { key } });
}

export class FileStore implements ObjectStore {
  readonly url: string;
  readonly conditionalWrites = true;
  private closed = false;

  /** Use `FileStore.open` (which creates the root) rather than the constructor. */
  constructor(readonly root: string) {
    this.url = pathToFileURL(root).href;
  }

  /**
   * Opens (creating if needed) a file store rooted at an absolute directory.
   * @example const store = await FileStore.open('/var/lib/cairn/store');
   */
  static async open(root: string): Promise<FileStore> {
    if (!path.isAbsolute(root)) {
      throw new CairnError('INVALID_ARGUMENT', `file store root ${JSON.stringify(root)} is not absolute`, {
        hint: 'use file:///absolute/path',
      });
    }
    const store = new FileStore(path.resolve(root));
    try {
      await fs.mkdir(store.root, { recursive: true });
      await fs.access(store.root, fsConstants.R_OK | fsConstants.W_OK);
    } catch (err) {
      throw store.ioError(err, `cannot open file store at ${store.root}`);
    }
    return store;
  }

  /** Directory and file name of a (checked) key. */
  private locate(key: string): { dir: string; file: string } {
    const segments = key.split('/');
    const last = segments.pop()!;
    const dir = path.join(this.root, ...segments.map((s) => `${escapeSegment(s)}%`));
    return { dir, file: path.join(dir, escapeSegment(last)) };
  }

  private ioError(err: unknown, message: string, key?: string): CairnError {
    const code = errnoOf(err);
    const context = { key, store: this.url };
    if (code === 'ENAMETOOLONG') {
      return new CairnError(
        'INVALID_ARGUMENT',
        `${message}: key segment too long for the file system`,
        {
          ...context,
          hint: 'keep each key segment under 255 bytes',
        },
        { cause: err },
      );
    }
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
      return new CairnError(
        'PERMISSION_DENIED',
        `${message}: ${(err as Error).message}`,
        {
          ...context,
          hint: `check the permissions of ${this.root}`,
        },
        { cause: err },
      );
    }
    return asCairnError(err, 'IO', message, { ...context, hint: `check the disk holding ${this.root}` });
  }

  private checkOpen(): void {
    if (this.closed) throw new CairnError('CLOSED', `file store ${this.url} is closed`, { store: this.url, hint: 'open it again' });
  }

  /**
   * Reads a whole object or a byte range of it; only the range is read from disk.
   * @example const head = await store.get('volumes/v1/packs/abc', { offset: 0, length: 4096 });
   */
  async get(key: string, range?: ByteRange): Promise<Buffer> {
    checkKey(key);
    if (range) checkRange(key, range);
    this.checkOpen();
    const { file } = this.locate(key);
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(file, 'r');
    } catch (err) {
      if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') {
        throw new CairnError('NOT_FOUND', `no object ${key}`, { key, store: this.url });
      }
      throw this.ioError(err, `cannot read ${key}`, key);
    }
    try {
      if (!range) return await handle.readFile();
      const size = (await handle.stat()).size;
      const start = Math.min(range.offset, size);
      const length = Math.max(0, Math.min(range.length, size - start));
      const buf = Buffer.allocUnsafe(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(buf, done, length - done, start + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done === length ? buf : buf.subarray(0, done);
    } catch (err) {
      throw this.ioError(err, `cannot read ${key}`, key);
    } finally {
      await handle.close();
    }
  }

  /**
   * Writes an object durably (temp file, fsync, rename/link, fsync dir).
   * @example await store.put('names/data', body, { ifAbsent: true }); // ALREADY_EXISTS if taken
   */
  async put(key: string, body: Uint8Array, options: PutOptions = {}): Promise<void> {
    checkKey(key);
    this.checkOpen();
    const { dir, file } = this.locate(key);
    const tmp = await this.writeTemp(dir, key, body);
    try {
      if (options.ifAbsent) {
        try {
          await fs.link(tmp, file);
        } catch (err) {
          if (errnoOf(err) === 'EEXIST') {
            throw new CairnError('ALREADY_EXISTS', `object ${key} already exists`, { key, store: this.url });
          }
          throw err;
        }
        await fs.unlink(tmp);
      } else {
        await fs.rename(tmp, file);
      }
      await this.syncDir(dir);
    } catch (err) {
      await fs.unlink(tmp).catch(() => undefined);
      throw this.ioError(err, `cannot write ${key}`, key);
    }
  }

  /** Creates `dir` (fsyncing new parents) and writes `body` to a fresh, fsynced temp file in it. */
  private async writeTemp(dir: string, key: string, body: Uint8Array): Promise<string> {
    // A concurrent delete may prune the (empty) directory between mkdir and open: retry.
    for (let attempt = 0; ; attempt++) {
      try {
        const created = await fs.mkdir(dir, { recursive: true });
        if (created !== undefined) await this.syncNewDirs(created, dir);
        const tmp = path.join(dir, `${TMP_PREFIX}${process.pid}-${randomBytes(8).toString('hex')}`);
        const handle = await fs.open(tmp, 'wx', 0o644);
        try {
          await handle.writeFile(body);
          await handle.sync();
        } catch (err) {
          await handle.close();
          await fs.unlink(tmp).catch(() => undefined);
          throw err;
        }
        await handle.close();
        return tmp;
      } catch (err) {
        if (errnoOf(err) === 'ENOENT' && attempt < 5) continue;
        throw this.ioError(err, `cannot write ${key}`, key);
      }
    }
  }

  /** fsyncs the parents of every directory mkdir created, from `first` down to `last`. */
  private async syncNewDirs(first: string, last: string): Promise<void> {
    let dir = last;
    const parents: string[] = [];
    while (dir.length >= first.length && dir !== path.dirname(dir)) {
      parents.push(path.dirname(dir));
      dir = path.dirname(dir);
    }
    for (const p of parents) await this.syncDir(p);
  }

  private async syncDir(dir: string): Promise<void> {
    const handle = await fs.open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /**
   * Size of an object, or undefined when it does not exist.
   * @example if (!(await store.head('names/data'))) console.log('free');
   */
  async head(key: string): Promise<ObjectInfo | undefined> {
    checkKey(key);
    this.checkOpen();
    try {
      const st = await fs.stat(this.locate(key).file);
      return st.isFile() ? { key, size: st.size, lastModified: st.mtimeMs } : undefined;
    } catch (err) {
      if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') return undefined;
      throw this.ioError(err, `cannot stat ${key}`, key);
    }
  }

  /**
   * Keys starting with `prefix`, in byte order, after `startAfter`, at most `limit` of them.
   * Walks only the directories that can hold matching keys.
   * @example const logs = await store.list('volumes/v1/log/', { startAfter: 'volumes/v1/log/0007' });
   */
  async list(prefix: string, options: ListOptions = {}): Promise<ObjectInfo[]> {
    checkPrefix(prefix);
    this.checkOpen();
    const limit = options.limit ?? Infinity;
    const startAfter = options.startAfter;
    const out: ObjectInfo[] = [];
    if (limit <= 0) return out;

    const walk = async (dir: string, keyPrefix: string): Promise<boolean> => {
      let names: string[];
      try {
        names = await fs.readdir(dir);
      } catch (err) {
        if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') return true;
        throw this.ioError(err, `cannot list ${keyPrefix || '/'}`);
      }
      const entries = names
        .filter((n) => !n.startsWith('.'))
        .map((n) => {
          const isDir = n.endsWith('%');
          const key = keyPrefix + unescapeSegment(isDir ? n.slice(0, -1) : n);
          return { name: n, isDir, key, sortKey: isDir ? `${key}/` : key };
        })
        .sort((a, b) => compareBytes(a.sortKey, b.sortKey));
      for (const e of entries) {
        if (e.isDir) {
          const sub = e.sortKey;
          if (!(sub.startsWith(prefix) || prefix.startsWith(sub))) continue;
          if (startAfter !== undefined && !startAfter.startsWith(sub) && compareBytes(sub, startAfter) < 0) continue;
          if (!(await walk(path.join(dir, e.name), sub))) return false;
        } else {
          if (!e.key.startsWith(prefix)) continue;
          if (startAfter !== undefined && compareBytes(e.key, startAfter) <= 0) continue;
          let size: number;
          let lastModified: number;
          try {
            ({ size, mtimeMs: lastModified } = await fs.stat(path.join(dir, e.name)));
          } catch (err) {
            if (errnoOf(err) === 'ENOENT') continue; // deleted while listing
            throw this.ioError(err, `cannot list ${e.key}`, e.key);
          }
          out.push({ key: e.key, size, lastModified });
          if (out.length >= limit) return false;
        }
      }
      return true;
    };
    await walk(this.root, '');
    return out;
  }

  /**
   * Removes a key (a missing key is fine) and prunes directories it leaves empty.
   * @example await store.delete('volumes/v1/packs/abc');
   */
  async delete(key: string): Promise<void> {
    checkKey(key);
    this.checkOpen();
    const { dir, file } = this.locate(key);
    try {
      await fs.unlink(file);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') return;
      throw this.ioError(err, `cannot delete ${key}`, key);
    }
    for (let d = dir; d !== this.root && d.startsWith(this.root); d = path.dirname(d)) {
      try {
        await fs.rmdir(d);
      } catch {
        break; // not empty (or already gone, or in use by a concurrent put): stop pruning
      }
    }
  }

  /**
   * Removes the `.tmp-…` files a crashed writer left (written before `before`, by mtime: a
   * writer in progress keeps its file younger than that), and counts them; `dryRun` only counts.
   * @example await store.sweepTemporary(Date.now() - 3_600_000);
   */
  async sweepTemporary(before: number, options: { dryRun?: boolean } = {}): Promise<{ count: number; bytes: number }> {
    this.checkOpen();
    const found = { count: 0, bytes: 0 };
    const walk = async (dir: string): Promise<void> => {
      let entries: import('node:fs').Dirent[];
      try {
        entries = await fs.readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') return;
        throw this.ioError(err, `cannot list ${dir}`);
      }
      for (const e of entries) {
        const full = path.join(dir, e.name);
        if (e.isDirectory() && e.name.endsWith('%')) await walk(full);
        else if (e.isFile() && e.name.startsWith(TMP_PREFIX)) {
          const st = await fs.stat(full).catch(() => undefined);
          if (!st || st.mtimeMs >= before) continue;
          found.count++;
          found.bytes += st.size;
          if (!options.dryRun) await fs.unlink(full).catch(() => undefined);
        }
      }
    };
    await walk(this.root);
    return found;
  }

  /** Marks the store closed; later calls fail with CLOSED. */
  async close(): Promise<void> {
    this.closed = true;
  }
}
