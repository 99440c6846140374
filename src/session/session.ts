/**
 * A session: one snapshot of a volume plus its own uncommitted changes, with the POSIX-shaped
 * calls a mount makes (FsSession) and the few extra ones the Volume API needs.
 *
 * Invariants: every call validates its paths and numbers first (../util/limits.ts: INVALID_ARGUMENT,
 * TOO_LARGE past the maximum file size) and changes nothing when it throws; every change to the
 * view is one whole journal operation (./journal.ts: one transaction that also records the
 * pending op); written data lives in staging files (copy-on-write of committed files on first
 * write: ./filedata.ts); a read-only session throws READ_ONLY on every write; reload is refused
 * while files are open (VOLUME_BUSY naming them: ./openfiles.ts). Opening is in ./opening.ts,
 * commit/reload/recovery in ./sync.ts.
 */
import fs from 'node:fs/promises';
import { CairnError } from '../errors.js';
import type { ChunkRef, ChunkStore, ReadCursor } from '../chunks/index.js';
import type { Journal } from './journal.js';
import { type JournalEntry, toStat } from './entry.js';
import {
  type CommitResult,
  type FsSession,
  type ReloadResult,
  type Stat,
  type EntryData,
  type VolumeMeta,
  isWithin,
  normalizePath,
  parentOf,
} from '../format/index.js';
import type { Staging } from './staging.js';
import type { Syncer } from './sync.js';
import { type SessionOptions, openParts } from './opening.js';
import { FileData } from './filedata.js';
import { planCopy, planPut } from './bulk.js';
import { checkByteCount, checkFileSize, checkInteger, checkMode, checkTimeMs, checkWriteRange, isByteRange } from '../util/limits.js';

const FILE_MODE = 0o644;

export { OFFLOAD_MIN_BYTES, type SessionOptions } from './opening.js';

export class Session implements FsSession {
  readonly readOnly: boolean;
  readonly volume: VolumeMeta;
  readonly chunks: ChunkStore;
  /** How this open filled a fresh journal (undefined: it reopened one). */
  readonly bootstrapped: 'child' | 'in-process' | undefined;
  /** File bytes: reads with fetching hints, copy-on-write into staging (./filedata.ts). */
  private readonly data: FileData;
  private closed = false;

  private constructor(
    private readonly opts: SessionOptions,
    /**
     * The session's journal. Not for layers above: use `entryAt`/`knownChunk` (still read by the
     * CLI's time travel, src/cli/time-travel.ts, and a test helper, until they move to `entryAt`).
     */
    readonly journal: Journal,
    private readonly staging: Staging,
    private readonly sync: Syncer,
    private readonly unlock: () => Promise<void>,
    chunks: ChunkStore,
    bootstrapped?: 'child' | 'in-process',
  ) {
    this.bootstrapped = bootstrapped;
    this.readOnly = !!opts.readOnly || opts.seq !== undefined;
    this.volume = opts.volume;
    this.chunks = chunks;
    this.data = new FileData(journal, staging, chunks);
  }

  /**
   * Opens (or reopens, recovering pending changes) a session.
   * @example const s = await Session.open({ store, volume: meta, dir: '/tmp/s1' });
   */
  static async open(opts: SessionOptions): Promise<Session> {
    const parts = await openParts(opts);
    return new Session(opts, parts.journal, parts.staging, parts.sync, parts.unlock, parts.chunks, parts.bootstrapped);
  }

  get seq(): number {
    return this.sync.seq;
  }

  get dir(): string {
    return this.opts.dir;
  }

  // ---- reads ---------------------------------------------------------------------------------

  private entry(path: string): JournalEntry {
    this.checkOpen();
    const e = this.journal.get(path);
    if (!e) throw new CairnError('NOT_FOUND', `no such file or directory: /${path}`, { path: `/${path}`, volume: this.volume.name });
    return e;
  }

  private dirEntry(path: string): JournalEntry {
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
    return e && toStat(e);
  }

  async stat(path: string): Promise<Stat> {
    return toStat(this.entry(normalizePath(path)));
  }

  async readdir(path: string): Promise<Stat[]> {
    const p = normalizePath(path);
    this.dirEntry(p);
    return this.journal.children(p).map(toStat);
  }

  /** Every entry strictly inside a directory, in path order. */
  descendants(path: string): Stat[] {
    const p = normalizePath(path);
    this.dirEntry(p);
    return this.journal.descendants(p).map(toStat);
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

  // ---- writes --------------------------------------------------------------------------------

  private checkWritable(path?: string): void {
    this.checkOpen();
    if (this.readOnly) {
      throw new CairnError('READ_ONLY', `the session is read-only${path !== undefined ? `: cannot change /${path}` : ''}`, {
        path: path === undefined ? undefined : `/${path}`,
        volume: this.volume.name,
        hint: 'open the volume without readOnly to write',
      });
    }
  }

  /** Checks that `path` can be created: not the root, parent is a directory. */
  private checkParent(path: string): void {
    if (path === '') throw new CairnError('ALREADY_EXISTS', 'the root directory always exists', { path: '/' });
    this.dirEntry(parentOf(path));
  }

  /**
   * Creates an empty file (replacing a file there) with permission bits `mode` (0 to 0o7777).
   * @example await s.create('/data/new.txt', 0o644);
   */
  async create(path: string, mode = FILE_MODE): Promise<void> {
    const p = normalizePath(path);
    checkMode(mode, { path: `/${p}` });
    this.checkWritable(p);
    this.checkParent(p);
    const cur = this.journal.get(p);
    if (cur?.type === 'directory') throw new CairnError('IS_A_DIRECTORY', `/${p} is a directory`, { path: `/${p}` });
    await this.staging.create((staged) => this.journal.put(p, { type: 'file', mode, mtimeMs: Date.now(), size: 0, staged }));
  }

  /** The staging file of a file, copying committed content into a new one on first write. */
  private async staged(p: string, keepContent = true): Promise<string> {
    const e = this.entry(p);
    if (e.type !== 'file')
      throw new CairnError(e.type === 'directory' ? 'IS_A_DIRECTORY' : 'INVALID_ARGUMENT', `/${p} is not a regular file`, {
        path: `/${p}`,
      });
    return this.data.staged(p, e, keepContent);
  }

  /**
   * Writes `data` at `offset` (an integer ≥ 0, else INVALID_ARGUMENT), extending the file as
   * needed; TOO_LARGE when the file would end past the maximum file size. Nothing changes when
   * it throws.
   * @example await s.write('/data/a.bin', 0, Buffer.from('hello'));
   */
  async write(path: string, offset: number, data: Uint8Array): Promise<void> {
    const p = normalizePath(path);
    this.checkWritable(p);
    if (!(data instanceof Uint8Array)) {
      throw new CairnError('INVALID_ARGUMENT', 'write takes its data as a Buffer or Uint8Array', { path: `/${p}` });
    }
    checkWriteRange(offset, data.length, { path: `/${p}`, volume: this.volume.name });
    const name = await this.staged(p);
    await this.staging.write(name, offset, data);
    const e = this.entry(p);
    this.journal.update(p, { ...e, size: Math.max(e.size, offset + data.length), mtimeMs: Date.now() });
  }

  /**
   * Sets a file's size (an integer ≥ 0, else INVALID_ARGUMENT; TOO_LARGE past the maximum file
   * size): shrinking drops the tail, growing adds zeros.
   * @example await s.truncate('/data/a.bin', 0);
   */
  async truncate(path: string, size: number): Promise<void> {
    const p = normalizePath(path);
    this.checkWritable(p);
    checkFileSize(size, { path: `/${p}`, volume: this.volume.name });
    const name = await this.staged(p, size > 0);
    await this.staging.truncate(name, size);
    const e = this.entry(p);
    this.journal.update(p, { ...e, size, mtimeMs: Date.now() });
  }

  async fsync(path: string): Promise<void> {
    const e = this.journal.get(normalizePath(path));
    if (e?.staged) await this.staging.fsync(e.staged);
  }

  /**
   * Creates a directory with permission bits `mode` (0 to 0o7777); its parent must exist.
   * @example await s.mkdir('/data/out', 0o755);
   */
  async mkdir(path: string, mode = 0o755): Promise<void> {
    const p = normalizePath(path);
    this.mkdirNow(p, checkMode(mode, { path: `/${p}` }));
  }

  private mkdirNow(p: string, mode = 0o755): void {
    this.checkWritable(p);
    this.checkParent(p);
    if (this.journal.get(p)) throw new CairnError('ALREADY_EXISTS', `/${p} already exists`, { path: `/${p}` });
    this.journal.put(p, { type: 'directory', mode, mtimeMs: Date.now(), size: 0 });
  }

  /** Creates a directory and its missing parents; an existing directory is fine. */
  async mkdirp(path: string): Promise<void> {
    this.mkdirpNow(normalizePath(path));
  }

  private mkdirpNow(p: string): void {
    const segs = p === '' ? [] : p.split('/');
    for (let i = 1; i <= segs.length; i++) {
      const d = segs.slice(0, i).join('/');
      const e = this.journal.get(d);
      if (!e) this.mkdirNow(d);
      else if (e.type !== 'directory') throw new CairnError('NOT_A_DIRECTORY', `/${d} is not a directory`, { path: `/${d}` });
    }
  }

  async unlink(path: string): Promise<void> {
    const p = normalizePath(path);
    this.checkWritable(p);
    const e = this.entry(p);
    if (e.type === 'directory')
      throw new CairnError('IS_A_DIRECTORY', `/${p} is a directory`, { path: `/${p}`, hint: 'use rmdir, or remove recursively' });
    this.journal.remove(p);
  }

  async rmdir(path: string): Promise<void> {
    const p = normalizePath(path);
    this.checkWritable(p);
    this.dirEntry(p);
    if (p === '') throw new CairnError('PERMISSION_DENIED', 'the root directory cannot be removed', { path: '/' });
    if (this.journal.hasChildren(p))
      throw new CairnError('NOT_EMPTY', `/${p} is not empty`, { path: `/${p}`, hint: 'remove its contents first, or remove recursively' });
    this.journal.remove(p);
  }

  /** Removes a path and, for a directory, everything inside it. */
  async removeTree(path: string): Promise<void> {
    const p = normalizePath(path);
    this.checkWritable(p);
    this.entry(p);
    if (p === '') {
      for (const c of this.journal.children('')) this.journal.remove(c.path);
      return;
    }
    this.journal.remove(p);
  }

  async rename(from: string, to: string): Promise<void> {
    const src = normalizePath(from);
    const dst = normalizePath(to);
    this.checkWritable(src);
    const e = this.entry(src);
    if (src === '' || dst === '')
      throw new CairnError('PERMISSION_DENIED', 'the root directory cannot be renamed or replaced', { path: '/' });
    this.checkParent(dst);
    if (src === dst) return;
    if (isWithin(dst, src)) throw new CairnError('INVALID_ARGUMENT', `cannot move /${src} into itself (/${dst})`, { path: `/${dst}` });
    const existing = this.journal.get(dst);
    if (existing) {
      if (e.type === 'directory' && existing.type !== 'directory')
        throw new CairnError('NOT_A_DIRECTORY', `/${dst} is not a directory`, { path: `/${dst}` });
      if (e.type !== 'directory' && existing.type === 'directory')
        throw new CairnError('IS_A_DIRECTORY', `/${dst} is a directory`, { path: `/${dst}` });
      if (existing.type === 'directory' && this.journal.hasChildren(dst))
        throw new CairnError('NOT_EMPTY', `/${dst} is not empty`, { path: `/${dst}` });
    }
    this.journal.move(src, dst);
  }

  async symlink(target: string, path: string): Promise<void> {
    const p = normalizePath(path);
    this.checkWritable(p);
    this.checkParent(p);
    if (this.journal.get(p)) throw new CairnError('ALREADY_EXISTS', `/${p} already exists`, { path: `/${p}` });
    if (typeof target !== 'string' || target === '' || target.includes('\0'))
      throw new CairnError('INVALID_ARGUMENT', 'invalid symlink target', { path: `/${p}` });
    this.putEntry(p, { type: 'symlink', mode: 0o777, mtimeMs: Date.now(), size: Buffer.byteLength(target), target });
  }

  /** Sets the permission bits (0 to 0o7777). @example await s.chmod('/data/run.sh', 0o755); */
  async chmod(path: string, mode: number): Promise<void> {
    checkMode(mode, { path: String(path) });
    this.touch(path, (e) => ({ ...e, mode }));
  }

  /** Sets the mtime (ms since the epoch, a finite number). @example await s.utimes('/a', Date.now()); */
  async utimes(path: string, mtimeMs: number): Promise<void> {
    const ms = checkTimeMs(mtimeMs, 'mtime', { path: String(path) });
    this.touch(path, (e) => ({ ...e, mtimeMs: ms }));
  }

  private touch(path: string, change: (e: JournalEntry) => JournalEntry): void {
    const p = normalizePath(path);
    this.checkWritable(p);
    const e = this.entry(p);
    this.journal.update(p, change(e));
  }

  /**
   * Sets a path to a committed entry (chunk refs or inline data), creating missing parents:
   * how batch uploads and copies land. Replaces what is there (callers check first).
   */
  putEntry(path: string, entry: EntryData): void {
    this.putEntries([], [[path, entry]]);
  }

  /**
   * `mkdirp` of every directory in `dirs`, then `putEntry` of every entry (with its missing
   * parents), all in one journal operation: all land or none does. How a batch upload lands.
   */
  putEntries(dirs: readonly string[], entries: readonly (readonly [string, EntryData])[]): void {
    this.checkOpen();
    const items = planPut(this.journal, dirs, entries);
    if (items.length > 0) this.checkWritable(items[items.length - 1]![0]);
    this.journal.putAll(items);
  }

  /** Copies a file, symlink or (recursively) a directory by reference; written data is copied. */
  async copy(from: string, to: string): Promise<void> {
    const src = normalizePath(from);
    const dst = normalizePath(to);
    this.checkWritable(dst);
    const e = this.entry(src);
    if (isWithin(dst, src)) throw new CairnError('INVALID_ARGUMENT', `cannot copy /${src} into itself`, { path: `/${dst}` });
    this.journal.putAll(await planCopy(this.journal, this.staging, e, src, dst));
  }

  // ---- commit, reload ------------------------------------------------------------------------

  pendingCount(): number {
    this.checkOpen();
    return this.journal.pendingCount();
  }

  /** Publishes pending changes as one new snapshot. Others see them after they reload. */
  async commit(): Promise<CommitResult> {
    this.checkOpen();
    if (this.readOnly) return { seq: this.seq, committed: false, paths: [], overwrote: [], bytesUploaded: 0 };
    return this.sync.commit();
  }

  /**
   * Commits pending changes, then moves to the newest snapshot. (A mount refuses it while files
   * are open: its open-file table, src/fuse/handles.ts, decides.)
   */
  async reload(): Promise<ReloadResult> {
    this.checkOpen();
    if (this.opts.seq !== undefined) {
      throw new CairnError('INVALID_ARGUMENT', `this session is pinned at snapshot ${this.opts.seq}`, {
        hint: 'open a new session to see newer snapshots',
      });
    }
    const commit = this.journal.pendingCount() > 0 ? await this.commit() : undefined;
    const r = await this.sync.reload();
    return commit ? { ...r, commit } : r;
  }

  private checkOpen(): void {
    if (this.closed) throw new CairnError('CLOSED', 'the session is closed', { volume: this.volume.name, hint: 'open a new session' });
  }

  /** Closes the journal; pending changes stay in the directory unless it is ephemeral. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.sync.stop();
    await this.staging.closeAll();
    this.journal.close();
    await this.unlock();
    if (this.opts.ephemeral) await fs.rm(this.opts.dir, { recursive: true, force: true });
  }
}

export { toStat };
