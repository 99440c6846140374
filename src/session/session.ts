/**
 * A session: one snapshot of a volume plus its own uncommitted changes, with the POSIX-shaped
 * calls a mount makes (FsSession) and the few extra ones the Volume API needs.
 *
 * Invariants: every call validates its paths and numbers first (../util/limits.ts: INVALID_ARGUMENT,
 * TOO_LARGE past the maximum file size) and changes nothing when it throws; every
 * change to the view is one journal transaction that also records the pending op; written data
 * lives in staging files (copy-on-write of committed files on first write); a read-only session
 * throws READ_ONLY on every write; reload is refused while files are open (VOLUME_BUSY naming
 * them). Commit/reload/recovery are in sync.ts.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import { CairnError } from '../errors.js';
import { ChunkStore, ReadCursor, type ReadHints } from '../chunks/index.js';
import { Journal, type JournalEntry } from './journal.js';
import type { ObjectStore } from '../store/types.js';
import type { CommitResult, FsSession, OpenFile, ReloadResult, Stat } from '../format/types.js';
import type { EntryData, VolumeMeta } from '../format/records.js';
import { keys } from '../format/records.js';
import { VolumeLog } from '../format/log.js';
import { Staging } from './staging.js';
import { Syncer } from './sync.js';
import { bootstrapInChild, checkpointInChild } from './offload.js';
import { lockSessionDir } from './sessiondir.js';
import { baseName, isWithin, joinPath, normalizePath, parentOf } from '../format/paths.js';
import {
  checkByteCount,
  checkFileEnd,
  checkFileSize,
  checkInteger,
  checkMode,
  checkTimeMs,
  checkWriteRange,
  isByteRange,
} from '../util/limits.js';

export interface SessionOptions {
  store: ObjectStore;
  volume: VolumeMeta;
  /** The session directory (journal + staging). Reopening one recovers its pending changes. */
  dir: string;
  readOnly?: boolean;
  /** Open read-only at this past snapshot (time travel). */
  seq?: number;
  /** Remove the directory at close (library sessions). */
  ephemeral?: boolean;
  chunks?: ChunkStore;
  /**
   * Bootstrap a fresh journal and write checkpoints in child processes (./offload.ts), so that
   * this process's memory does not grow with the volume and its event loop never stalls on a
   * whole-snapshot encode: for long-lived daemons. Needs a store reachable by URL (file, s3).
   */
  offload?: boolean;
  /**
   * With `offload`: a bootstrap that reads fewer bytes than this (checkpoint plus records, as
   * listed) runs in-process, where it is cheaper than starting a child (default OFFLOAD_MIN_BYTES).
   */
  offloadMinBytes?: number;
}

/** Below this many bytes of checkpoint and records, an offloaded session bootstraps in-process. */
export const OFFLOAD_MIN_BYTES = 4 * 1024 * 1024;

const FILE_MODE = 0o644;
/** Files up to this size also prefetch their pack neighbours (siblings uploaded with them). */
const SMALL_FILE_BYTES = 1024 * 1024;

export class Session implements FsSession {
  readonly readOnly: boolean;
  readonly volume: VolumeMeta;
  readonly chunks: ChunkStore;
  /** How this open filled a fresh journal (undefined: it reopened one). */
  readonly bootstrapped: 'child' | 'in-process' | undefined;
  private readonly handles = new Map<number, OpenFile>();
  private nextHandle = 1;
  private readonly materializing = new Map<string, Promise<string>>();
  /** Read state per path, for callers that pass no cursor of their own (see `read`). */
  private readonly pathCursors = new Map<string, ReadCursor>();
  private closed = false;

  private constructor(
    private readonly opts: SessionOptions,
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
  }

  /**
   * Opens (or reopens, recovering pending changes) a session.
   * @example const s = await Session.open({ store, volume: meta, dir: '/tmp/s1' });
   */
  static async open(opts: SessionOptions): Promise<Session> {
    if (opts.seq !== undefined) checkInteger(opts.seq, 'seq', { min: 0 }, { volume: opts.volume.name });
    if (opts.offloadMinBytes !== undefined) checkInteger(opts.offloadMinBytes, 'offloadMinBytes', { min: 0 });
    const unlock = await lockSessionDir(opts.dir);
    let journal: Journal | undefined;
    let bootstrapped: Session['bootstrapped'];
    try {
      journal = new Journal(`${opts.dir}/journal.db`);
      const staging = new Staging(opts.dir);
      await staging.init();
      const chunks = opts.chunks ?? new ChunkStore({ store: opts.store, packPrefix: keys.packPrefix(opts.volume.id) });
      const log = new VolumeLog(opts.store, opts.volume.id);
      const known = journal.getMeta('volumeId');
      if (known !== undefined && known !== opts.volume.id) {
        throw new CairnError('CONFLICT', `session directory ${opts.dir} belongs to volume ${known}`, {
          path: opts.dir,
          hint: 'use another session directory',
        });
      }
      let sessionId = journal.getMeta('sessionId');
      if (!sessionId) {
        sessionId = crypto.randomBytes(8).toString('hex');
        journal.setMeta('sessionId', sessionId);
      }
      if (known === undefined && opts.offload && (await log.bootstrapBytes(opts.seq ?? Infinity)) >= (opts.offloadMinBytes ?? OFFLOAD_MIN_BYTES)) {
        journal.close();
        journal = undefined;
        await bootstrapInChild({ dir: opts.dir, storeUrl: opts.store.url, volumeId: opts.volume.id, ...(opts.seq !== undefined ? { upTo: opts.seq } : {}) });
        journal = new Journal(`${opts.dir}/journal.db`);
        bootstrapped = 'child';
      }
      const sync = new Syncer(journal, log, chunks, staging, sessionId);
      sync.volumeName = opts.volume.name;
      if (opts.offload) sync.checkpointJob = (seq) => checkpointInChild({ dir: opts.dir, storeUrl: opts.store.url, volumeId: opts.volume.id, seq });
      if (journal.getMeta('volumeId') === undefined) {
        await sync.bootstrap(opts.seq ?? Infinity);
        journal.setMeta('volumeId', opts.volume.id);
        bootstrapped = 'in-process';
      } else {
        await reconcileStaged(journal, staging);
        await sync.recover();
        // A new session starts at the newest snapshot, even in a directory it used before (its
        // recovered pending changes stay on top, for the owner to commit): see docs/SEMANTICS.md.
        if (opts.seq === undefined) await sync.catchUp();
      }
      return new Session(opts, journal, staging, sync, unlock, chunks, bootstrapped);
    } catch (err) {
      journal?.close();
      await unlock();
      throw err;
    }
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
   * (one per open file handle: `s.chunks.cursor()`); without one, readers of a path share one.
   * @example const head = await s.read('/data/a.bin', 0, 4096);
   */
  async read(path: string, offset: number, length: number, cursor?: ReadCursor): Promise<Buffer> {
    const p = normalizePath(path);
    checkByteCount(offset, 'offset', { path: `/${p}` });
    checkByteCount(length, 'length', { path: `/${p}` });
    const e = this.entry(p);
    if (e.type === 'directory') throw new CairnError('IS_A_DIRECTORY', `/${e.path} is a directory`, { path: `/${e.path}` });
    if (e.type !== 'file') throw new CairnError('INVALID_ARGUMENT', `/${e.path} is a ${e.type}, not a file`, { path: `/${e.path}` });
    const n = Math.max(0, Math.min(length, e.size - offset));
    if (n === 0) return Buffer.alloc(0);
    if (e.staged) return this.staging.read(e.staged, offset, n);
    if (e.inline) return Buffer.from(e.inline.subarray(offset, offset + n));
    return this.chunks.read(e.chunks ?? [], offset, n, this.readOptions(e, cursor));
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
    const n = Math.max(0, Math.min(length, e.size - offset, into.length));
    if (n === 0) return 0;
    if (e.inline) return e.inline.copy(into, 0, offset, offset + n);
    return this.chunks.readCached(e.chunks ?? [], offset, n, into, this.readOptions(e, cursor));
  }

  /**
   * Fetching hints for a read of a committed file: the reader's cursor (else the path's) for
   * sequential read-ahead, pack neighbours for small files.
   */
  private readOptions(e: JournalEntry, cursor: ReadCursor | undefined): ReadHints {
    let c = cursor ?? this.pathCursors.get(e.path);
    if (!c) {
      c = this.chunks.cursor();
      this.pathCursors.set(e.path, c);
      if (this.pathCursors.size > 1024) this.pathCursors.delete(this.pathCursors.keys().next().value!);
    }
    return { cursor: c, ...(e.size <= SMALL_FILE_BYTES ? { neighbours: true } : {}) };
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

  /** Marks `path` as changed (one pending put per path per commit). */
  private markPut(path: string): void {
    this.journal.addPending('put', path, this.sync.fence);
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
    await this.staging.create((staged) => {
      this.journal.transaction(() => {
        const entry = { type: 'file' as const, mode, mtimeMs: Date.now(), size: 0, staged };
        this.journal.applyOp({ op: 'put', path: p, entry });
        this.markPut(p);
      });
    });
  }

  /** The staging file of a file, copying committed content into a new one on first write. */
  private async staged(p: string, keepContent = true): Promise<string> {
    const e = this.entry(p);
    if (e.type !== 'file') throw new CairnError(e.type === 'directory' ? 'IS_A_DIRECTORY' : 'INVALID_ARGUMENT', `/${p} is not a regular file`, { path: `/${p}` });
    if (e.staged) return e.staged;
    let pending = this.materializing.get(p);
    if (!pending) {
      pending = (async () => {
        let name = '';
        await this.staging.create((n) => (name = n));
        if (keepContent && e.size > 0) {
          let off = 0;
          if (e.inline) await this.staging.write(name, 0, e.inline);
          else for await (const buf of this.chunks.stream(e.chunks ?? [])) {
            await this.staging.write(name, off, buf);
            off += buf.length;
          }
          await this.staging.truncate(name, e.size);
        }
        const now = this.journal.get(p);
        if (now && now.type === 'file' && !now.staged) this.journal.putRaw(p, { ...now, staged: name });
        return this.journal.get(p)?.staged ?? name;
      })().finally(() => this.materializing.delete(p));
      this.materializing.set(p, pending);
    }
    return pending;
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
    this.journal.transaction(() => {
      this.journal.putRaw(p, { ...e, size: Math.max(e.size, offset + data.length), mtimeMs: Date.now() });
      this.markPut(p);
    });
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
    this.journal.transaction(() => {
      this.journal.putRaw(p, { ...e, size, mtimeMs: Date.now() });
      this.markPut(p);
    });
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
    this.journal.transaction(() => {
      this.journal.applyOp({ op: 'put', path: p, entry: { type: 'directory', mode, mtimeMs: Date.now(), size: 0 } });
      this.markPut(p);
    });
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

  private remove(p: string): void {
    this.journal.transaction(() => {
      this.journal.applyOp({ op: 'delete', path: p });
      this.journal.addPending('delete', p, this.sync.fence);
    });
  }

  async unlink(path: string): Promise<void> {
    const p = normalizePath(path);
    this.checkWritable(p);
    const e = this.entry(p);
    if (e.type === 'directory') throw new CairnError('IS_A_DIRECTORY', `/${p} is a directory`, { path: `/${p}`, hint: 'use rmdir, or remove recursively' });
    this.remove(p);
  }

  async rmdir(path: string): Promise<void> {
    const p = normalizePath(path);
    this.checkWritable(p);
    this.dirEntry(p);
    if (p === '') throw new CairnError('PERMISSION_DENIED', 'the root directory cannot be removed', { path: '/' });
    if (this.journal.hasChildren(p)) throw new CairnError('NOT_EMPTY', `/${p} is not empty`, { path: `/${p}`, hint: 'remove its contents first, or remove recursively' });
    this.remove(p);
  }

  /** Removes a path and, for a directory, everything inside it. */
  async removeTree(path: string): Promise<void> {
    const p = normalizePath(path);
    this.checkWritable(p);
    this.entry(p);
    if (p === '') {
      for (const c of this.journal.children('')) this.remove(c.path);
      return;
    }
    this.remove(p);
  }

  async rename(from: string, to: string): Promise<void> {
    const src = normalizePath(from);
    const dst = normalizePath(to);
    this.checkWritable(src);
    const e = this.entry(src);
    if (src === '' || dst === '') throw new CairnError('PERMISSION_DENIED', 'the root directory cannot be renamed or replaced', { path: '/' });
    this.checkParent(dst);
    if (src === dst) return;
    if (isWithin(dst, src)) throw new CairnError('INVALID_ARGUMENT', `cannot move /${src} into itself (/${dst})`, { path: `/${dst}` });
    const existing = this.journal.get(dst);
    if (existing) {
      if (e.type === 'directory' && existing.type !== 'directory') throw new CairnError('NOT_A_DIRECTORY', `/${dst} is not a directory`, { path: `/${dst}` });
      if (e.type !== 'directory' && existing.type === 'directory') throw new CairnError('IS_A_DIRECTORY', `/${dst} is a directory`, { path: `/${dst}` });
      if (existing.type === 'directory' && this.journal.hasChildren(dst)) throw new CairnError('NOT_EMPTY', `/${dst} is not empty`, { path: `/${dst}` });
    }
    this.journal.transaction(() => {
      const moved = [e, ...(e.type === 'directory' ? this.journal.descendants(src) : [])];
      this.journal.applyOp({ op: 'delete', path: src });
      this.journal.addPending('delete', src, this.sync.fence);
      if (existing) {
        this.journal.applyOp({ op: 'delete', path: dst });
        this.journal.addPending('delete', dst, this.sync.fence);
      }
      for (const m of moved) {
        const np = dst + m.path.slice(src.length);
        this.journal.putRaw(np, { ...m, path: np } as JournalEntry);
        this.markPut(np);
      }
    });
    for (const h of this.handles.values()) if (isWithin(h.path, src)) h.path = dst + h.path.slice(src.length);
  }

  async symlink(target: string, path: string): Promise<void> {
    const p = normalizePath(path);
    this.checkWritable(p);
    this.checkParent(p);
    if (this.journal.get(p)) throw new CairnError('ALREADY_EXISTS', `/${p} already exists`, { path: `/${p}` });
    if (typeof target !== 'string' || target === '' || target.includes('\0')) throw new CairnError('INVALID_ARGUMENT', 'invalid symlink target', { path: `/${p}` });
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
    this.journal.transaction(() => {
      this.journal.putRaw(p, change(e));
      this.markPut(p);
    });
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
   * parents), all in one journal transaction: all land or none does. How a batch upload lands.
   */
  putEntries(dirs: readonly string[], entries: readonly (readonly [string, EntryData])[]): void {
    for (const [path, entry] of entries) checkEntryNumbers(path, entry);
    const made = new Set<string>();
    const ensureDir = (d: string): void => {
      if (made.has(d)) return;
      this.mkdirpNow(d);
      made.add(d);
    };
    this.journal.transaction(() => {
      for (const d of dirs) ensureDir(normalizePath(d));
      for (const [path, entry] of entries) {
        const p = normalizePath(path);
        this.checkWritable(p);
        ensureDir(p.slice(0, Math.max(0, p.lastIndexOf('/'))));
        this.journal.applyOp({ op: 'put', path: p, entry });
        this.markPut(p);
      }
    });
  }

  /** Copies a file, symlink or (recursively) a directory by reference; written data is copied. */
  async copy(from: string, to: string): Promise<void> {
    const src = normalizePath(from);
    const dst = normalizePath(to);
    this.checkWritable(dst);
    const e = this.entry(src);
    if (isWithin(dst, src)) throw new CairnError('INVALID_ARGUMENT', `cannot copy /${src} into itself`, { path: `/${dst}` });
    const all = [e, ...(e.type === 'directory' ? this.journal.descendants(src) : [])];
    const copies: [string, EntryData & { staged?: string }][] = [];
    for (const m of all) {
      const { path: _p, staged, ...data } = m;
      let copyStaged: string | undefined;
      if (staged) {
        copyStaged = await this.staging.create(() => {});
        await fs.copyFile(this.staging.pathOf(staged), this.staging.pathOf(copyStaged));
      }
      copies.push([dst + m.path.slice(src.length), copyStaged ? { ...data, staged: copyStaged } : data]);
    }
    this.journal.transaction(() => {
      for (const [p, data] of copies) {
        this.journal.applyOp({ op: 'put', path: p, entry: data });
        this.markPut(p);
      }
    });
  }

  // ---- open files, commit, reload ------------------------------------------------------------

  /**
   * Notes an open file (reload is refused while any is open); `pid` names its process.
   * @example const h = s.open('/data/a.bin', process.pid); ...; s.release(h);
   */
  open(path: string, pid?: number): number {
    const p = normalizePath(path);
    if (pid !== undefined) checkInteger(pid, 'pid', { min: 1, max: 2 ** 31 - 1 }, { path: `/${p}` });
    const h = this.nextHandle++;
    this.handles.set(h, pid === undefined ? { path: p } : { path: p, pid });
    return h;
  }

  release(handle: number): void {
    this.handles.delete(handle);
  }

  openFiles(): OpenFile[] {
    return [...this.handles.values()].map((h) => ({ ...h, path: `/${h.path}` }));
  }

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

  /** Commits pending changes, then moves to the newest snapshot. Refused while files are open. */
  async reload(): Promise<ReloadResult> {
    this.checkOpen();
    if (this.opts.seq !== undefined) {
      throw new CairnError('INVALID_ARGUMENT', `this session is pinned at snapshot ${this.opts.seq}`, { hint: 'open a new session to see newer snapshots' });
    }
    const open = this.openFiles();
    if (open.length > 0) {
      const list = open.map((o) => (o.pid ? `${o.path} (pid ${o.pid})` : o.path)).join(', ');
      throw new CairnError('VOLUME_BUSY', `cannot reload while files are open: ${list}`, {
        volume: this.volume.name,
        path: open[0]!.path,
        openFiles: open,
        hint: 'close these files, then reload again',
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

/** The numbers of an entry handed to putEntries: mode, mtime, size (INVALID_ARGUMENT / TOO_LARGE). */
function checkEntryNumbers(path: string, e: EntryData): void {
  const ctx = { path: String(path) };
  checkMode(e.mode, ctx);
  checkTimeMs(e.mtimeMs, 'mtime', ctx);
  checkFileEnd(checkInteger(e.size, 'size', { min: 0 }, ctx), ctx);
}

/** After a crash: every staged entry takes its size from its staging file (the truth). */
async function reconcileStaged(journal: Journal, staging: Staging): Promise<void> {
  for (const { path, staged } of journal.allStaged()) {
    const st = await staging.size(staged);
    const e = journal.get(path);
    if (!e) continue;
    if (!st) journal.putRaw(path, { ...e, staged: undefined, size: 0 } as JournalEntry);
    else if (st.size !== e.size) journal.putRaw(path, { ...e, size: st.size });
  }
}

export function toStat(e: JournalEntry): Stat {
  const s: Stat = { path: e.path, type: e.type, mode: e.mode, size: e.size, mtimeMs: e.mtimeMs };
  if (e.target !== undefined) s.target = e.target;
  return s;
}

export { baseName, joinPath };
