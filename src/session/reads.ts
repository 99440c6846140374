/**
 * The reading half of a session (./session.ts extends it): stat, readdir, reads of bytes and
 * symlinks, extended attributes, and the lookups the Volume API needs.
 *
 * Invariants: every call validates its path and numbers first (INVALID_ARGUMENT) and throws
 * CLOSED once the session is closed; a directory's link count counts its subdirectories.
 */
import { CairnError } from '../errors.js';
import type { ChunkRef, ChunkStore, ReadCursor } from '../chunks/index.js';
import { type Credentials, type Stat, type VolumeMeta, normalizePath } from '../format/index.js';
import { checkByteCount, checkInteger, isByteRange } from '../util/limits.js';
import type { Journal } from './journal.js';
import { type JournalEntry, toStat } from './entry.js';
import type { FileData } from './filedata.js';
import * as meta from './metadata.js';
import { linkCount } from './links.js';

export abstract class SessionReads {
  protected closed = false;

  protected constructor(
    /**
     * The session's journal. Not for layers above: use `entryAt`/`knownChunk` (still read by the
     * CLI's time travel, src/cli/time-travel.ts, and a test helper, until they move to `entryAt`).
     */
    readonly journal: Journal,
    readonly chunks: ChunkStore,
    /** File bytes: reads with fetching hints, copy-on-write into staging (./filedata.ts). */
    protected readonly data: FileData,
    readonly volume: VolumeMeta,
  ) {}

  protected checkOpen(): void {
    if (this.closed) throw new CairnError('CLOSED', 'the session is closed', { volume: this.volume.name, hint: 'open a new session' });
  }

  protected entry(path: string): JournalEntry {
    this.checkOpen();
    const e = this.journal.get(path);
    if (!e) throw new CairnError('NOT_FOUND', `no such file or directory: /${path}`, { path: `/${path}`, volume: this.volume.name });
    return e;
  }

  protected dirEntry(path: string): JournalEntry {
    const e = this.entry(path);
    if (e.type !== 'directory') throw new CairnError('NOT_A_DIRECTORY', `/${path} is not a directory`, { path: `/${path}` });
    return e;
  }

  /**
   * The stored entry of a path (chunk refs, inline bytes), for readers that fetch its content
   * themselves; undefined when there is none.
   * @example const e = s.entryAt('data/a.bin'); if (e?.chunks) yield* chunks.stream(e.chunks);
   */
  entryAt(path: string): JournalEntry | undefined {
    this.checkOpen();
    return this.journal.get(normalizePath(path));
  }

  /** A chunk this session's volume already stores (dedup for uploads that bypass commit). */
  knownChunk(hash: string): ChunkRef | undefined {
    return this.journal.knownChunk(hash);
  }

  /** Looks up one path without throwing. */
  lookup(path: string): Stat | undefined {
    this.checkOpen();
    const e = this.journal.get(normalizePath(path));
    return e && this.toStat(e);
  }

  /** An entry's Stat: a directory's link count counts its subdirectories, a file's its names (./links.ts). */
  protected toStat(e: JournalEntry): Stat {
    return toStat(e, e.type === 'directory' ? this.journal.subdirCount(e.path) : 0, linkCount(this.journal, e));
  }

  async stat(path: string): Promise<Stat> {
    return this.toStat(this.entry(normalizePath(path)));
  }

  async readdir(path: string): Promise<Stat[]> {
    const p = normalizePath(path);
    this.dirEntry(p);
    return this.journal.children(p).map((e) => this.toStat(e));
  }

  /** Every entry strictly inside a directory, in path order. */
  descendants(path: string): Stat[] {
    const p = normalizePath(path);
    this.dirEntry(p);
    return this.journal.descendants(p).map((e) => this.toStat(e));
  }

  /**
   * Up to `length` bytes at `offset` (fewer at the end of the file). Both are integers from 0 to
   * the maximum file size (INVALID_ARGUMENT otherwise). `cursor` is the reader's own read state
   * (`s.cursor()`, one per open file handle); without one, the readers of a path share one.
   * @example const head = await s.read('/data/a.bin', 0, 4096);
   */
  async read(path: string, offset: number, length: number, cursor?: ReadCursor): Promise<Buffer> {
    const p = normalizePath(path);
    checkByteCount(offset, 'offset', { path: `/${p}` });
    checkByteCount(length, 'length', { path: `/${p}` });
    const e = this.entry(p);
    if (e.type === 'directory') throw new CairnError('IS_A_DIRECTORY', `/${e.path} is a directory`, { path: `/${e.path}` });
    if (e.type !== 'file') throw new CairnError('INVALID_ARGUMENT', `/${e.path} is a ${e.type}, not a file`, { path: `/${e.path}` });
    return this.data.read(e, offset, length, cursor);
  }

  /** A new read state for one reader. @example const c = s.cursor(); await s.read(p, 0, n, c); */
  cursor(): ReadCursor {
    return this.chunks.cursor();
  }

  readCached(path: string, offset: number, length: number, into: Buffer, cursor?: ReadCursor): number | undefined {
    if (this.closed || !isByteRange(offset, length)) return undefined;
    let e: JournalEntry | undefined;
    try {
      e = this.journal.get(normalizePath(path));
    } catch {
      return undefined; // a bad path: `read` reports it
    }
    if (!e || e.type !== 'file' || e.staged) return undefined;
    return this.data.readCached(e, offset, length, into, cursor);
  }

  /** The whole committed content of a file, chunk by chunk (parallel fetch). */
  async *stream(path: string, concurrency?: number): AsyncGenerator<Buffer> {
    if (concurrency !== undefined) checkInteger(concurrency, 'concurrency', { min: 1, max: 1024 });
    const e = this.entry(normalizePath(path));
    if (e.type !== 'file') throw new CairnError('IS_A_DIRECTORY', `/${e.path} is not a file`, { path: `/${e.path}` });
    if (e.staged || e.inline) {
      const step = 4 << 20;
      for (let off = 0; off < e.size; off += step) yield await this.read(e.path, off, step);
      return;
    }
    yield* this.chunks.stream(e.chunks ?? [], { concurrency });
  }

  async readlink(path: string): Promise<string> {
    const e = this.entry(normalizePath(path));
    if (e.type !== 'symlink') throw new CairnError('INVALID_ARGUMENT', `/${e.path} is not a symlink`, { path: `/${e.path}` });
    return e.target ?? '';
  }

  /** An extended attribute's value (NO_ATTRIBUTE when absent). @example (await s.getxattr('/a', 'user.k')).toString() */
  async getxattr(path: string, name: string, cred?: Credentials): Promise<Buffer> {
    return meta.getXattr(this.entry(normalizePath(path)), name, cred);
  }

  /**
   * Whether an entry of the view has extended attribute `name`: all of them (a scan of the view,
   * for a mount's start), or only those of `paths` (after a reload, its changed paths).
   *
   * @example if (!s.hasXattr('security.capability')) console.log('no file capabilities here');
   */
  hasXattr(name: string, paths?: Iterable<string>): boolean {
    this.checkOpen();
    if (!paths) return this.journal.hasXattr(name);
    for (const p of paths) if (this.journal.get(normalizePath(p))?.xattrs?.[name] !== undefined) return true;
    return false;
  }

  /** The names of a path's extended attributes. @example await s.listxattr('/a'); */
  async listxattr(path: string, cred?: Credentials): Promise<string[]> {
    return meta.listXattrs(this.entry(normalizePath(path)), cred);
  }
}
