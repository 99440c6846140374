/**
 * A session: one snapshot of a volume plus its own uncommitted changes, with the POSIX-shaped
 * calls a mount makes (FsSession) and the few extra ones the Volume API needs.
 *
 * Invariants: every call validates its paths and numbers first (../util/limits.ts: INVALID_ARGUMENT,
 * TOO_LARGE past the maximum file size) and changes nothing when it throws; every change to the view is
 * one whole journal operation (./journal.ts: one transaction that also records the pending op; a write to a
 * file already pending keeps its size and times in memory, ≤ 1 s: ./view.ts); written data lives in staging
 * files (copy-on-write of committed files on first write: ./filedata.ts); a read-only session throws READ_ONLY
 * on every write; reload is refused while files are open (VOLUME_BUSY). Opening: ./opening.ts; commit, reload: ./sync.ts.
 */
import fs from 'node:fs/promises';
import { CairnError } from '../errors.js';
import type { ChunkStore } from '../chunks/index.js';
import type { Journal } from './journal.js';
import { type JournalEntry, toStat } from './entry.js';
import * as meta from './metadata.js';
import {
  type CommitResult,
  type Credentials,
  type EntryType,
  type FsSession,
  type ReloadResult,
  type EntryData,
  isWithin,
  hasLoneSurrogate,
  normalizePath,
  parentOf,
} from '../format/index.js';
import type { Staging } from './staging.js';
import type { Syncer } from './sync.js';
import { type SessionOptions, openParts } from './opening.js';
import { FileData } from './filedata.js';
import { SessionReads } from './reads.js';
import { planCopy, planPut } from './bulk.js';
import { planLink } from './links.js';
import type { SpaceReserve } from './reserve.js';
import { checkFileSize, checkInteger, checkMode, checkTimeMs, checkWriteRange } from '../util/limits.js';

const FILE_MODE = 0o644;
/** What mknod makes besides regular files. */
const SPECIAL_TYPES: readonly EntryType[] = ['fifo', 'socket', 'chardev', 'blockdev'];

export { OFFLOAD_MIN_BYTES, type SessionOptions } from './opening.js';

export class Session extends SessionReads implements FsSession {
  readonly readOnly: boolean;
  /** How this open filled a fresh journal (undefined: it reopened one). */
  readonly bootstrapped: 'child' | 'in-process' | undefined;

  private constructor(
    private readonly opts: SessionOptions,
    journal: Journal,
    private readonly staging: Staging,
    private readonly sync: Syncer,
    private readonly unlock: () => Promise<void>,
    chunks: ChunkStore,
    private readonly space: SpaceReserve,
    bootstrapped?: 'child' | 'in-process',
  ) {
    super(journal, chunks, new FileData(journal, staging, chunks), opts.volume);
    this.bootstrapped = bootstrapped;
    this.readOnly = !!opts.readOnly || opts.seq !== undefined;
  }

  /**
   * Opens (or reopens, recovering pending changes) a session.
   * @example const s = await Session.open({ store, volume: meta, dir: '/tmp/s1' });
   */
  static async open(opts: SessionOptions): Promise<Session> {
    const parts = await openParts(opts);
    return new Session(opts, parts.journal, parts.staging, parts.sync, parts.unlock, parts.chunks, parts.space, parts.bootstrapped);
  }

  get seq(): number {
    return this.sync.seq;
  }

  get dir(): string {
    return this.opts.dir;
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
   * Creates an empty file (replacing a file there) with permission bits `mode` (0 to 0o7777),
   * owned by `cred` (see ./metadata.ts; without credentials no owner is stored).
   * @example await s.create('/data/new.txt', 0o644);
   */
  async create(path: string, mode = FILE_MODE, cred?: Credentials): Promise<void> {
    const p = normalizePath(path);
    checkMode(mode, { path: `/${p}` });
    this.checkWritable(p);
    this.checkParent(p);
    const cur = this.journal.get(p);
    if (cur?.type === 'directory') throw new CairnError('IS_A_DIRECTORY', `/${p} is a directory`, { path: `/${p}` });
    this.space.check(`/${p}`);
    // No staging file yet: a new file's bytes live in its entry until they outgrow INLINE_MAX (see `write`).
    const e = { ...this.newEntry(p, 'file', mode, cred), inline: Buffer.alloc(0) };
    this.journal.put(p, e, this.parentTouch(p, e.mtimeMs));
  }

  /** A new entry of `type` at `p` made by `cred`: owner and group (./metadata.ts), all three times now. */
  private newEntry(p: string, type: EntryType, mode: number, cred: Credentials | undefined): EntryData {
    const now = Date.now();
    const o = meta.newOwner(this.journal.get(parentOf(p)), cred, type === 'directory');
    const e: EntryData = { type, mode: mode | o.modeBits, mtimeMs: now, atimeMs: now, ctimeMs: now, size: 0 };
    if (o.uid !== undefined) e.uid = o.uid;
    if (o.gid !== undefined) e.gid = o.gid;
    return e;
  }

  /** The parents of `paths`, whose mtime and ctime an entry created or removed in them changes. */
  private parentTouch(...paths: string[]): { dirs: string[]; now: number };
  private parentTouch(p: string, now: number): { dirs: string[]; now: number };
  private parentTouch(...args: (string | number)[]): { dirs: string[]; now: number } {
    const now = typeof args[args.length - 1] === 'number' ? (args.pop() as number) : Date.now();
    return { dirs: [...new Set((args as string[]).map(parentOf))], now };
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
   * Writes `data` at `offset` (an integer ≥ 0, else INVALID_ARGUMENT), extending the file; TOO_LARGE past the maximum
   * file size; nothing changes when it throws. `keepTimes`: mtime and ctime stay (see FsSession).
   * @example await s.write('/data/a.bin', 0, Buffer.from('hello'));
   */
  async write(path: string, offset: number, data: Uint8Array, cred?: Credentials, keepTimes = false): Promise<void> {
    const p = normalizePath(path);
    this.checkWritable(p);
    if (!(data instanceof Uint8Array)) {
      throw new CairnError('INVALID_ARGUMENT', 'write takes its data as a Buffer or Uint8Array', { path: `/${p}` });
    }
    checkWriteRange(offset, data.length, { path: `/${p}`, volume: this.volume.name });
    this.space.check(`/${p}`);
    // A file held inline stays so, or moves to a staging file, in one synchronous step (./filedata.ts).
    const cur = this.entry(p);
    const end = offset + data.length;
    const now = (): number | undefined => (keepTimes ? undefined : Date.now());
    const written = meta.writtenEntry(cur, cred, now());
    if (this.data.inlineChange(p, cur, end, Math.max(cur.size, end), (b) => b.set(data, offset), written)) return;
    if (this.data.stageNow(p, cur, offset, data, written)) return;
    const name = await this.staged(p);
    await this.staging.write(name, offset, data);
    const e = this.entry(p);
    this.journal.update(p, { ...meta.writtenEntry(e, cred, now()), size: Math.max(e.size, offset + data.length) }, true);
  }

  /**
   * Sets a file's size (an integer ≥ 0, else INVALID_ARGUMENT; TOO_LARGE past the maximum file
   * size): shrinking drops the tail, growing adds zeros.
   * @example await s.truncate('/data/a.bin', 0);
   */
  async truncate(path: string, size: number, cred?: Credentials): Promise<void> {
    const p = normalizePath(path);
    this.checkWritable(p);
    checkFileSize(size, { path: `/${p}`, volume: this.volume.name });
    const cur = this.entry(p);
    if (this.data.inlineChange(p, cur, size, size, () => undefined, meta.writtenEntry(cur, cred, Date.now()))) return;
    const name = await this.staged(p, size > 0);
    await this.staging.truncate(name, size);
    const e = this.entry(p);
    this.journal.update(p, { ...meta.writtenEntry(e, cred, Date.now()), size });
  }

  /** Makes a file's written bytes durable locally: its staging file (and the size the journal kept), or the journal holding them inline. */
  async fsync(path: string): Promise<void> {
    const e = this.journal.get(normalizePath(path));
    this.journal.flushWrites();
    if (e?.staged) await this.staging.fsync(e.staged);
    else if (e?.type === 'file' && e.inline) this.journal.sync();
  }

  /**
   * Creates a directory with permission bits `mode` (0 to 0o7777); its parent must exist.
   * @example await s.mkdir('/data/out', 0o755);
   */
  async mkdir(path: string, mode = 0o755, cred?: Credentials): Promise<void> {
    const p = normalizePath(path);
    this.mkdirNow(p, checkMode(mode, { path: `/${p}` }), cred);
  }

  private mkdirNow(p: string, mode = 0o755, cred?: Credentials): void {
    this.makeNode(p, this.newEntry(p, 'directory', mode, cred));
  }

  /** Puts a new entry where nothing is (ALREADY_EXISTS), touching its parent. */
  private makeNode(p: string, e: EntryData): void {
    this.checkWritable(p);
    this.checkParent(p);
    if (this.journal.get(p)) throw new CairnError('ALREADY_EXISTS', `/${p} already exists`, { path: `/${p}` });
    this.space.check(`/${p}`);
    this.journal.put(p, e, this.parentTouch(p, e.mtimeMs));
  }

  /**
   * mknod(2): a FIFO, socket, character or block device (`rdev`, Linux's encoding) with
   * permission bits `mode`; a regular file is `create`. ALREADY_EXISTS when the path exists.
   * @example await s.mknod('/run/pipe', 'fifo', 0o644);
   */
  async mknod(path: string, type: EntryType, mode: number, rdev = 0, cred?: Credentials): Promise<void> {
    const p = normalizePath(path);
    checkMode(mode, { path: `/${p}` });
    if (type === 'file') {
      if (this.journal.get(p)) throw new CairnError('ALREADY_EXISTS', `/${p} already exists`, { path: `/${p}` });
      return this.create(p, mode, cred);
    }
    if (!SPECIAL_TYPES.includes(type)) throw new CairnError('INVALID_ARGUMENT', `mknod cannot make a ${String(type)}`, { path: `/${p}` });
    const e = this.newEntry(p, type, mode, cred);
    if (type === 'chardev' || type === 'blockdev') e.rdev = checkInteger(rdev, 'rdev', { min: 0, max: 0xffffffff }, { path: `/${p}` });
    this.makeNode(p, e);
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

  /**
   * link(2): `newPath` becomes another name of the file at `existing` (./links.ts): NOT_PERMITTED
   * for a directory, ALREADY_EXISTS when `newPath` exists, NOT_FOUND without its parent.
   * @example await s.link('/data/a.bin', '/data/b.bin'); (await s.stat('/data/a.bin')).nlink === 2;
   */
  async link(existing: string, newPath: string): Promise<void> {
    const [src, dst] = [normalizePath(existing), normalizePath(newPath)];
    this.checkWritable(dst);
    const e = this.entry(src);
    if (e.type !== 'directory') this.checkParent(dst);
    this.space.check(`/${dst}`);
    this.journal.putAll(planLink(e, src, dst, this.journal.get(dst), Date.now()), this.parentTouch(dst));
  }

  async unlink(path: string): Promise<void> {
    const p = normalizePath(path);
    this.checkWritable(p);
    const e = this.entry(p);
    if (e.type === 'directory')
      throw new CairnError('IS_A_DIRECTORY', `/${p} is a directory`, { path: `/${p}`, hint: 'use rmdir, or remove recursively' });
    this.journal.remove(p, this.parentTouch(p));
  }

  async rmdir(path: string): Promise<void> {
    const p = normalizePath(path);
    this.checkWritable(p);
    this.dirEntry(p);
    if (p === '') throw new CairnError('PERMISSION_DENIED', 'the root directory cannot be removed', { path: '/' });
    if (this.journal.hasChildren(p))
      throw new CairnError('NOT_EMPTY', `/${p} is not empty`, { path: `/${p}`, hint: 'remove its contents first, or remove recursively' });
    this.journal.remove(p, this.parentTouch(p));
  }

  /** Removes a path and, for a directory, everything inside it. */
  async removeTree(path: string): Promise<void> {
    const p = normalizePath(path);
    this.checkWritable(p);
    this.entry(p);
    if (p === '') {
      for (const c of this.journal.children('')) this.journal.remove(c.path, this.parentTouch(c.path));
      return;
    }
    this.journal.remove(p, this.parentTouch(p));
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
    if (existing?.ino !== undefined && existing.ino === e.ino) return; // two names of one file: rename(2) does nothing
    if (existing) {
      if (e.type === 'directory' && existing.type !== 'directory')
        throw new CairnError('NOT_A_DIRECTORY', `/${dst} is not a directory`, { path: `/${dst}` });
      if (e.type !== 'directory' && existing.type === 'directory')
        throw new CairnError('IS_A_DIRECTORY', `/${dst} is a directory`, { path: `/${dst}` });
      if (existing.type === 'directory' && this.journal.hasChildren(dst))
        throw new CairnError('NOT_EMPTY', `/${dst} is not empty`, { path: `/${dst}` });
    }
    this.journal.move(src, dst, this.parentTouch(src, dst));
  }

  async symlink(target: string, path: string, cred?: Credentials): Promise<void> {
    const p = normalizePath(path);
    if (typeof target !== 'string' || target === '' || target.includes('\0') || hasLoneSurrogate(target))
      throw new CairnError('INVALID_ARGUMENT', 'invalid symlink target', { path: `/${p}` });
    this.makeNode(p, { ...this.newEntry(p, 'symlink', 0o777, cred), size: Buffer.byteLength(target), target });
  }

  /**
   * Sets the permission bits (0 to 0o7777); with `cred`, only its owner may (NOT_PERMITTED).
   * @example await s.chmod('/data/run.sh', 0o755);
   */
  async chmod(path: string, mode: number, cred?: Credentials): Promise<void> {
    checkMode(mode, { path: String(path) });
    this.touch(path, (e) => meta.chmodEntry(e, mode, cred, Date.now()));
  }

  /**
   * chown(2): `uid`/`gid` of -1 stay; with `cred`, POSIX rules (./metadata.ts: NOT_PERMITTED).
   * @example await s.chown('/data/a', 1000, 1000);
   */
  async chown(path: string, uid: number, gid: number, cred?: Credentials): Promise<void> {
    this.touch(path, (e) => meta.chownEntry(e, uid, gid, cred, Date.now()));
  }

  /** Sets the mtime (ms since the epoch, a finite number). @example await s.utimes('/a', Date.now()); */
  async utimes(path: string, mtimeMs: number): Promise<void> {
    await this.setTimes(path, { mtimeMs });
  }

  /**
   * Sets the access and/or modification time (ms, finite; an absent one stays); ctime becomes now.
   * @example await s.setTimes('/a', { atimeMs: 0, mtimeMs: Date.parse('2001-01-01') });
   */
  async setTimes(path: string, t: { atimeMs?: number; mtimeMs?: number }): Promise<void> {
    const ctx = { path: String(path) };
    const at = t.atimeMs === undefined ? undefined : checkTimeMs(t.atimeMs, 'atime', ctx);
    const mt = t.mtimeMs === undefined ? undefined : checkTimeMs(t.mtimeMs, 'mtime', ctx);
    this.touch(path, (e) => ({ ...e, atimeMs: at ?? e.atimeMs ?? e.mtimeMs, mtimeMs: mt ?? e.mtimeMs, ctimeMs: Date.now() }));
  }

  // ---- extended attributes (./metadata.ts) ---------------------------------------------------

  /**
   * Sets an extended attribute (user.*, trusted.*, security.*; sizes in ../format/xattrs.ts).
   * @example await s.setxattr('/a', 'user.origin', Buffer.from('https://…'));
   */
  async setxattr(path: string, name: string, value: Buffer, flags?: 'create' | 'replace', cred?: Credentials): Promise<void> {
    this.space.check(String(path));
    this.touch(path, (e) => meta.setXattr(e, name, value, flags, cred, Date.now()));
  }

  /** Removes an extended attribute (NO_ATTRIBUTE when absent). @example await s.removexattr('/a', 'user.k'); */
  async removexattr(path: string, name: string, cred?: Credentials): Promise<void> {
    this.touch(path, (e) => meta.removeXattr(e, name, cred, Date.now()));
  }

  private touch(path: string, change: (e: JournalEntry) => JournalEntry): void {
    const p = normalizePath(path);
    this.checkWritable(p);
    const e = this.entry(p);
    this.journal.update(p, change(e));
  }

  /** Sets a path to a committed entry, creating missing parents: how copies land. Replaces what is there (callers check first). */
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

  /** Commits pending changes, then moves to the newest snapshot (a mount refuses it while files are open: src/fuse/handles.ts). */
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
