/**
 * The native FUSE binding: libfuse3's low-level (inode) API through the addon in `native/`
 * (cairn_fuse.node). Native threads read requests from /dev/fuse and hand each one to this module
 * through one thread-safe function; this module resolves inodes to paths, runs the adapter's path
 * operations (the same errno table and open-file table as the fuse-native binding) and answers
 * with the addon's reply functions.
 *
 * Invariants:
 * - every request is answered exactly once (a request dropped unanswered is answered EIO by the
 *   addon when it is garbage-collected; a second answer throws);
 * - inode numbers are never reused; an inode lives from its first lookup until the kernel forgets
 *   it (lookup count 0); the root is inode 1 and never forgotten;
 * - a rename moves the inodes of the renamed path and everything under it; unlink/rmdir detach
 *   the name (open files keep working through their handle's path);
 * - kernel cache invalidation runs on the addon's notifier thread, never on a worker or on this
 *   thread (it can wait on inode locks held by a process waiting for one of our answers).
 */
import { createRequire } from 'node:module';
import { Errno } from '../errors.js';
import type { FuseOps } from './adapter.js';
import type { HandleTable } from './handles.js';

/** The addon's exports (see native/cairn_fuse.c). */
export interface NativeAddon {
  mount(mountpoint: string, args: string[], handler: NativeHandler, opts: NativeMountOptions): [unknown, Promise<void>];
  unmount(ctx: unknown): Promise<void>;
  invalidate(ctx: unknown, parents: number[], names: string[], inodes: number[], done: (failed: number) => void): void;
  replyErr(req: Req, errno: number): void;
  replyEntry(req: Req, ...a: [...AttrArgs, number, number]): void;
  replyCreate(req: Req, ...a: [...AttrArgs, number, number, number, number, number]): void;
  replyAttr(req: Req, ...a: [...AttrArgs, number]): void;
  replyOpen(req: Req, fh: number, keepCache: number, directIo: number): void;
  replyBuf(req: Req, buf: Buffer | null, len: number): void;
  replyWrite(req: Req, count: number): void;
  replyReadlink(req: Req, target: string): void;
  replyDir(
    req: Req,
    plus: boolean,
    size: number,
    first: number,
    names: string[],
    nums: Float64Array,
    uid: number,
    gid: number,
    attrTimeout: number,
    entryTimeout: number,
  ): number;
}
type Req = object;
/** ino, mode, nlink, uid, gid, size, mtimeMs */
type AttrArgs = [number, number, number, number, number, number, number];
type NativeHandler = (
  op: number,
  req: Req | null,
  ino: number,
  ino2: number,
  n0: number,
  n1: number,
  n2: number,
  n3: number,
  s1: string | undefined,
  s2: string | undefined,
  data: Buffer | number[] | undefined,
  pid: number,
) => void;

export interface NativeMountOptions {
  workers?: number;
  maxWrite?: number;
  maxReadahead?: number;
  /** 1: ask for the kernel's writeback cache (measurement only). */
  writeback?: number;
}

/** Request codes (native/cairn_fuse.c). */
const OP = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  MKNOD: 6,
  MKDIR: 7,
  UNLINK: 8,
  RMDIR: 9,
  SYMLINK: 10,
  RENAME: 11,
  LINK: 12,
  OPEN: 13,
  READ: 14,
  WRITE: 15,
  RELEASE: 17,
  FSYNC: 18,
  FLUSH: 19,
  OPENDIR: 20,
  READDIR: 21,
  RELEASEDIR: 22,
  ACCESS: 24,
  CREATE: 25,
  READDIRPLUS: 26,
  EXITED: 91,
} as const;

const SET_ATTR = { MODE: 1, UID: 2, GID: 4, SIZE: 8, ATIME: 16, MTIME: 32, ATIME_NOW: 128, MTIME_NOW: 256 } as const;
const RENAME_NOREPLACE = 1;
const ETIMEDOUT = 110;
const REPLIES = [
  'replyErr',
  'replyEntry',
  'replyCreate',
  'replyAttr',
  'replyOpen',
  'replyBuf',
  'replyWrite',
  'replyReadlink',
  'replyDir',
] as const;
const ROOT = 1;

let loaded: { addon?: NativeAddon; error?: string } | undefined;

/**
 * Loads the addon once; undefined (with `loadError()` saying why) when it is not built or libfuse3
 * is missing.
 *
 * @example
 *   const addon = loadNative(); if (!addon) console.log(loadError());
 */
export function loadNative(): NativeAddon | undefined {
  if (!loaded) {
    try {
      const req = createRequire(import.meta.url);
      const file = new URL('../../../native/build/Release/cairn_fuse.node', import.meta.url);
      loaded = { addon: req(file.pathname) as NativeAddon };
    } catch (err) {
      loaded = { error: err instanceof Error ? err.message.split('\n')[0] : String(err) };
    }
  }
  return loaded.addon;
}

/** Why the addon did not load (undefined when it did, or was not tried). */
export function loadError(): string | undefined {
  return loaded?.error;
}

interface Inode {
  /** Current path, or null once the name is gone (unlinked, replaced). */
  path: string | null;
  nlookup: number;
  /** File-type bits last told to the kernel (0: not yet). */
  type: number;
}

/** The kernel's inodes: number <-> path, with lookup counts. */
export class InodeTable {
  private readonly byIno = new Map<number, Inode>([[ROOT, { path: '/', nlookup: 1, type: 0o040000 }]]);
  private readonly byPath = new Map<string, number>([['/', ROOT]]);
  private next = ROOT + 1;

  path(ino: number): string | null {
    return this.byIno.get(ino)?.path ?? null;
  }

  /** The inode of `path` (made with lookup count 0 when new). */
  ensure(path: string): number {
    let ino = this.byPath.get(path);
    if (ino === undefined) {
      ino = this.next++;
      this.byIno.set(ino, { path, nlookup: 0, type: 0 });
      this.byPath.set(path, ino);
    }
    return ino;
  }

  peek(path: string): number | undefined {
    return this.byPath.get(path);
  }

  /** Records the file type (mode & S_IFMT) the kernel was told for `ino`. */
  setType(ino: number, mode: number): void {
    const e = this.byIno.get(ino);
    if (e) e.type = mode & 0o170000;
  }

  type(ino: number): number {
    return this.byIno.get(ino)?.type ?? 0;
  }

  /** Inodes of `path` and of every known path under it. */
  subtree(path: string): number[] {
    const out: number[] = [];
    for (const [p, ino] of this.byPath) if (p === path || p.startsWith(path === '/' ? '/' : `${path}/`)) out.push(ino);
    return out;
  }

  /** One more kernel reference (a lookup, create, mkdir... answered with this inode). */
  ref(ino: number, n = 1): void {
    const e = this.byIno.get(ino);
    if (e) e.nlookup += n;
  }

  /** The kernel dropped `n` references; the inode goes at 0. */
  forget(ino: number, n: number): void {
    const e = this.byIno.get(ino);
    if (!e || ino === ROOT) return;
    e.nlookup -= n;
    if (e.nlookup <= 0) this.drop(ino);
  }

  /** Drops an inode the kernel holds no reference to (an unsent readdirplus entry). */
  dropIfUnused(ino: number): void {
    const e = this.byIno.get(ino);
    if (e && e.nlookup <= 0 && ino !== ROOT) this.drop(ino);
  }

  private drop(ino: number): void {
    const e = this.byIno.get(ino)!;
    this.byIno.delete(ino);
    if (e.path !== null && this.byPath.get(e.path) === ino) this.byPath.delete(e.path);
  }

  /** The name is gone: the inode (and those under it) keep living until forgotten, nameless. */
  detach(path: string): void {
    for (const [p, ino] of this.byPath) {
      if (p === path || p.startsWith(`${path}/`)) {
        this.byPath.delete(p);
        const e = this.byIno.get(ino);
        if (e) e.path = null;
      }
    }
  }

  /** Follows a rename of `from` (and everything under it) to `to`; whatever was at `to` is detached. */
  rename(from: string, to: string): void {
    const moved: [string, number][] = [];
    for (const [p, ino] of this.byPath) {
      if (p === from || p.startsWith(`${from}/`)) moved.push([p, ino]);
    }
    this.detach(to);
    for (const [p] of moved) this.byPath.delete(p);
    for (const [p, ino] of moved) {
      const np = to + p.slice(from.length);
      this.byPath.set(np, ino);
      const e = this.byIno.get(ino);
      if (e) e.path = np;
    }
  }

  /** Every live (path, inode) pair. */
  entries(): IterableIterator<[string, number]> {
    return this.byPath.entries();
  }

  get size(): number {
    return this.byIno.size;
  }
}

/** `parent/name` as a FUSE path. */
function child(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`;
}

/** The parent path of a FUSE path ('/' for top-level names). */
export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

type FuseStat = { mode: number; nlink: number; uid: number; gid: number; size: number; mtime: Date };

function attrArgs(ino: number, st: FuseStat): AttrArgs {
  return [ino, st.mode, st.nlink, st.uid, st.gid, st.size, st.mtime.getTime()];
}

/** Negative entries remembered for invalidation; beyond this, absent names are not cached. */
const MAX_NEGATIVE = 50_000;

export interface LowLevelOptions {
  mountpoint: string;
  /** libfuse options (`-o` values): fsname, ro, allow_other... */
  options: string[];
  /** Kernel attribute/entry cache, seconds. */
  attrTimeoutSec: number;
  entryTimeoutSec: number;
  /** uid/gid reported for "." in readdir (entries carry their own). */
  uid: number;
  gid: number;
  native?: NativeMountOptions;
  /**
   * Paths the kernel must not cache (no entry/attribute timeouts, direct I/O): files whose
   * content the daemon makes up per request, like a control file.
   */
  uncached?: (path: string) => boolean;
  /** Answer ETIMEDOUT to a request not answered within this many ms (0: no limit). */
  timeoutMs?: number;
  /** The limit of a write to an `uncached` path (the control file: its command may be a commit). */
  controlWriteTimeoutMs?: number;
  /** The adapter's open-file table (unlink of an open file hides it until the last close). */
  handles: HandleTable;
  /** The kernel ended the mount (unmounted from outside). */
  onExit?: () => void;
  onError?: (op: string, path: string, err: unknown) => void;
}

/** A live native mount. */
export interface LowLevelMount {
  readonly inodes: InodeTable;
  unmount(): Promise<void>;
  /**
   * After the session's view changed under the kernel (a reload): drops from the kernel's caches
   * exactly what changed among `changed` (FUSE paths; undefined: anything the kernel knows may
   * have changed). A path now absent, or of another type, loses its name and inode (a later lookup
   * gets a new inode); a changed path loses its attributes and pages; a new path loses a cached
   * "absent" answer. Resolves once the kernel has done it.
   */
  refresh(changed?: Iterable<string>): Promise<{ entries: number; inodes: number }>;
}

interface DirHandle {
  path: string;
  names: string[];
  stats: FuseStat[];
}

/**
 * Mounts with the native binding and serves `ops` (the adapter's path operations).
 *
 * @example
 *   const ops = createOps(session, { readOnly: false, handles });
 *   const m = await mountLowLevel(addon, ops, { mountpoint, options: ['fsname=cairn:v'], handles,
 *     attrTimeoutSec: 0, entryTimeoutSec: 0, uid: 0, gid: 0 });
 *   await m.unmount();
 */
export async function mountLowLevel(raw: NativeAddon, ops: FuseOps, o: LowLevelOptions): Promise<LowLevelMount> {
  // Per-request time limit: a request not answered within timeoutMs gets ETIMEDOUT, and its late
  // answer is dropped (the reply functions below answer only requests still waiting).
  const waiting = new Map<Req, number>();
  const addon: NativeAddon = { ...raw };
  for (const k of REPLIES) {
    (addon as any)[k] = (req: Req, ...a: unknown[]) => (waiting.delete(req) ? (raw as any)[k](req, ...a) : 0);
  }
  const limit = o.timeoutMs ?? 0;
  const sweep =
    limit > 0
      ? setInterval(
          () => {
            const now = Date.now();
            for (const [req, deadline] of waiting) {
              if (deadline > now) continue;
              waiting.delete(req);
              raw.replyErr(req, ETIMEDOUT);
            }
          },
          Math.min(1000, Math.max(50, limit / 4)),
        )
      : undefined;
  sweep?.unref();
  const inodes = new InodeTable();
  const dirs = new Map<number, DirHandle>();
  let nextDir = 1;
  /** Paths answered as absent with a cacheable negative entry. */
  const negatives = new Set<string>();
  /** Open files unlinked while open: kept under a hidden name until their last close (as libfuse 2 does). */
  const hidden = new Set<string>();
  let hideSeq = 0;
  const isOpen = (p: string): boolean => o.handles.list().some((h) => h.path === p);
  const at = o.attrTimeoutSec;
  const uncached = o.uncached ?? ((): boolean => false);
  const et = o.entryTimeoutSec;

  const fail = (req: Req, code: number): void => addon.replyErr(req, -code > 0 ? -code : Errno.EIO);

  /** Answers an entry for `path` (lookup, mkdir, symlink, mknod): stat, then one reference. */
  function replyEntryFor(req: Req, path: string, negativeOk: boolean): void {
    ops.getattr(path, (code: number, st?: FuseStat) => {
      if (code < 0) {
        if (negativeOk && code === -Errno.ENOENT && et > 0 && negatives.size < MAX_NEGATIVE) {
          // A negative entry: the kernel remembers the name is absent for entry_timeout (and a
          // refresh drops it).
          negatives.add(path);
          return addon.replyEntry(req, 0, 0, 0, 0, 0, 0, 0, 0, et);
        }
        return fail(req, code);
      }
      const ino = inodes.ensure(path);
      inodes.ref(ino);
      inodes.setType(ino, st!.mode);
      const live = uncached(path);
      addon.replyEntry(req, ...attrArgs(ino, st!), live ? 0 : at, live ? 0 : et);
    });
  }

  function replyAttrFor(req: Req, ino: number, path: string): void {
    ops.getattr(path, (code: number, st?: FuseStat) => {
      if (code < 0) return fail(req, code);
      addon.replyAttr(req, ...attrArgs(ino, st!), uncached(path) ? 0 : at);
    });
  }

  /** The path of an inode for a request, or answers ENOENT (the name is gone) and returns null. */
  function pathOf(req: Req, ino: number): string | null {
    const p = inodes.path(ino);
    if (p === null) addon.replyErr(req, Errno.ENOENT);
    return p;
  }

  /** Moves an open file out of the way to a hidden name, removed at its last close. */
  function hide(req: Req, p: string, next: () => void): void {
    const tag = `${(inodes.peek(p) ?? 0).toString(16)}${(++hideSeq).toString(16).padStart(8, '0')}`;
    const h = child(parentOf(p), `.fuse_hidden${tag}`);
    step(
      req,
      (cb) => ops.rename(p, h, cb),
      () => {
        inodes.rename(p, h);
        hidden.add(h);
        next();
      },
    );
  }

  /** Runs the adapter step `f` and continues with `next` on success. */
  function step(req: Req, f: (cb: (code: number, ...r: any[]) => void) => void, next: (...r: any[]) => void): void {
    f((code, ...r) => (code < 0 ? fail(req, code) : next(...r)));
  }

  function readdir(req: Req, ino: number, size: number, off: number, fh: number, plus: boolean): void {
    const d = dirs.get(fh);
    if (!d) return addon.replyErr(req, Errno.EBADF);
    const send = (): void => {
      // An entry costs at least 24 bytes (readdir) or ~150 (readdirplus): offer no more than fit.
      const max = Math.ceil(size / (plus ? 136 : 24)) + 1;
      const names = d.names.slice(off, off + max);
      const nums = new Float64Array(names.length * 5);
      const made: number[] = [];
      for (let i = 0; i < names.length; i++) {
        const name = names[i];
        const st = d.stats[off + i];
        let eino: number;
        if (name === '.') eino = ino;
        else if (name === '..') eino = inodes.peek(parentOf(d.path)) ?? ROOT;
        else {
          const p = child(d.path, name);
          const known = inodes.peek(p);
          eino = known ?? inodes.ensure(p);
          if (known === undefined) made.push(eino);
        }
        nums.set([eino, st.mode, st.nlink, st.size, st.mtime.getTime()], i * 5);
      }
      const packed = addon.replyDir(req, plus, size, off, names, nums, o.uid, o.gid, at, et);
      if (plus) {
        for (let i = 0; i < packed; i++) {
          if (names[i] === '.' || names[i] === '..') continue;
          inodes.ref(nums[i * 5]);
          inodes.setType(nums[i * 5], nums[i * 5 + 1]);
        }
      }
      for (const m of made) inodes.dropIfUnused(m);
    };
    if (off !== 0) return send();
    // From the start (first call, or rewinddir): take a fresh listing.
    ops.readdir(d.path, (code: number, names?: string[], stats?: FuseStat[]) => {
      if (code < 0) return fail(req, code);
      d.names = names!;
      d.stats = stats!;
      send();
    });
  }

  const handler: NativeHandler = (op, req, ino, ino2, n0, n1, n2, n3, s1, s2, data, pid) => {
    if (op === OP.FORGET) return inodes.forget(ino, n0);
    if (op === OP.EXITED) return o.onExit?.();
    if (!req) return;
    const slow = op === OP.WRITE && uncached(inodes.path(ino) ?? '');
    waiting.set(req, limit > 0 ? Date.now() + (slow ? Math.max(limit, o.controlWriteTimeoutMs ?? 0) : limit) : Infinity);
    try {
      dispatch(req, op, ino, ino2, n0, n1, n2, n3, s1, s2, data, pid);
    } catch (err) {
      o.onError?.(`op ${op}`, inodes.path(ino) ?? `#${ino}`, err);
      try {
        addon.replyErr(req, Errno.EIO);
      } catch {
        // answered already
      }
    }
  };

  function dispatch(
    req: Req,
    op: number,
    ino: number,
    ino2: number,
    n0: number,
    n1: number,
    n2: number,
    n3: number,
    s1: string | undefined,
    s2: string | undefined,
    data: Buffer | number[] | undefined,
    pid: number,
  ): void {
    const path = pathOf(req, ino);
    if (path === null) return;
    switch (op) {
      case OP.LOOKUP:
        return replyEntryFor(req, child(path, s1!), true);
      case OP.GETATTR:
        return replyAttrFor(req, ino, path);
      case OP.SETATTR: {
        // atime is not stored: only mtime (a time, UTIME_NOW, or UTIME_OMIT when unset) changes.
        const [, mtimeMs, newUid, newGid] = data as number[];
        const set = n0;
        const fh = n3;
        const NO_ID = 0xffffffff;
        const steps: ((cb: (code: number) => void) => void)[] = [];
        if (set & SET_ATTR.MODE) steps.push((cb) => ops.chmod(path, n1 & 0o7777, cb));
        if (set & SET_ATTR.SIZE) {
          steps.push((cb) => (fh >= 0 ? ops.ftruncate(path, fh, n2, cb) : ops.truncate(path, n2, cb)));
        }
        if (set & (SET_ATTR.UID | SET_ATTR.GID)) {
          const u = set & SET_ATTR.UID ? newUid : NO_ID;
          const g = set & SET_ATTR.GID ? newGid : NO_ID;
          steps.push((cb) => ops.chown(path, u, g, cb));
        }
        if (set & (SET_ATTR.MTIME | SET_ATTR.MTIME_NOW | SET_ATTR.ATIME | SET_ATTR.ATIME_NOW)) {
          const m = set & SET_ATTR.MTIME_NOW ? 'now' : set & SET_ATTR.MTIME ? mtimeMs : null;
          steps.push((cb) => ops.setTimes(path, m, cb));
        }
        const runSteps = (i: number): void => {
          if (i === steps.length) return replyAttrFor(req, ino, path);
          step(req, steps[i], () => runSteps(i + 1));
        };
        return runSteps(0);
      }
      case OP.READLINK:
        return step(
          req,
          (cb) => ops.readlink(path, cb),
          (t: string) => addon.replyReadlink(req, t),
        );
      case OP.MKNOD: {
        const p = child(path, s1!);
        return step(
          req,
          (cb) => ops.mknod(p, n0, n1, cb),
          () => replyEntryFor(req, p, false),
        );
      }
      case OP.MKDIR: {
        const p = child(path, s1!);
        return step(
          req,
          (cb) => ops.mkdir(p, n0, cb),
          () => replyEntryFor(req, p, false),
        );
      }
      case OP.SYMLINK: {
        const p = child(path, s1!);
        return step(
          req,
          (cb) => ops.symlink(s2!, p, cb),
          () => replyEntryFor(req, p, false),
        );
      }
      case OP.UNLINK:
      case OP.RMDIR: {
        const p = child(path, s1!);
        if (op === OP.UNLINK && isOpen(p)) return hide(req, p, () => addon.replyErr(req, 0));
        const f = op === OP.UNLINK ? ops.unlink : ops.rmdir;
        return step(
          req,
          (cb) => f(p, cb),
          () => {
            inodes.detach(p);
            addon.replyErr(req, 0);
          },
        );
      }
      case OP.RENAME: {
        const to = inodes.path(ino2);
        if (to === null) return addon.replyErr(req, Errno.ENOENT);
        const from = child(path, s1!);
        const dest = child(to, s2!);
        // RENAME_NOREPLACE is checked here (best effort: no other writer shares this session);
        // RENAME_EXCHANGE and RENAME_WHITEOUT are not supported (EINVAL).
        if (n0 & ~RENAME_NOREPLACE) return addon.replyErr(req, Errno.EINVAL);
        const move = (): void =>
          step(
            req,
            (cb) => ops.rename(from, dest, cb),
            () => {
              inodes.rename(from, dest);
              addon.replyErr(req, 0);
            },
          );
        // A replaced file that is open keeps its bytes for its readers: hide it first (as unlink does).
        const go = (): void => (from !== dest && isOpen(dest) ? hide(req, dest, move) : move());
        if (!(n0 & RENAME_NOREPLACE)) return go();
        return ops.getattr(dest, (code: number) => (code === 0 ? addon.replyErr(req, Errno.EEXIST) : go()));
      }
      case OP.LINK:
        return step(
          req,
          (cb) => ops.link(path, child(inodes.path(ino2) ?? '/', s1!), cb),
          () => addon.replyErr(req, 0),
        );
      case OP.OPEN:
        return step(
          req,
          (cb) => ops.open(path, n0, cb, pid),
          (fh: number) => (uncached(path) ? addon.replyOpen(req, fh, 0, 1) : addon.replyOpen(req, fh, 1, 0)),
        );
      case OP.CREATE: {
        const p = child(path, s1!);
        return step(
          req,
          (cb) => ops.create(p, n0, cb, pid),
          (fh: number) => {
            ops.getattr(p, (code: number, st?: FuseStat) => {
              if (code < 0) {
                ops.release(p, fh, () => undefined);
                return fail(req, code);
              }
              const cino = inodes.ensure(p);
              inodes.ref(cino);
              inodes.setType(cino, st!.mode);
              const live = uncached(p);
              const [t1, t2, keep, direct] = live ? [0, 0, 0, 1] : [at, et, 1, 0];
              addon.replyCreate(req, ...attrArgs(cino, st!), t1, t2, fh, keep, direct);
            });
          },
        );
      }
      case OP.READ: {
        return ops.read(path, n2, null, n0, n1, (code: number, bytes?: Buffer) =>
          code < 0 ? fail(req, code) : addon.replyBuf(req, bytes ?? null, code),
        );
      }
      case OP.WRITE: {
        const b = data as Buffer;
        const done = (code: number): void => (code < 0 ? fail(req, code) : addon.replyWrite(req, code));
        return ops.write(path, n2, b, b.length, n1, done, true);
      }
      case OP.FLUSH:
        return ops.flush(path, n2, (code: number) => addon.replyErr(req, code < 0 ? -code : 0));
      case OP.RELEASE: {
        const hp = o.handles.get(n2)?.path;
        return ops.release(path, n2, () => {
          if (hp === undefined || !hidden.has(hp) || isOpen(hp)) return addon.replyErr(req, 0);
          hidden.delete(hp);
          ops.unlink(hp, () => {
            inodes.detach(hp);
            addon.replyErr(req, 0);
          });
        });
      }
      case OP.FSYNC:
        return ops.fsync(path, n0, n2, (code: number) => addon.replyErr(req, code < 0 ? -code : 0));
      case OP.OPENDIR:
        return step(
          req,
          (cb) => ops.getattr(path, cb),
          (st: FuseStat) => {
            if ((st.mode & 0o170000) !== 0o040000) return addon.replyErr(req, Errno.ENOTDIR);
            const fh = nextDir++;
            dirs.set(fh, { path, names: [], stats: [] });
            addon.replyOpen(req, fh, 0, 0);
          },
        );
      case OP.READDIR:
      case OP.READDIRPLUS:
        return readdir(req, ino, n0, n1, n2, op === OP.READDIRPLUS);
      case OP.RELEASEDIR:
        dirs.delete(n2);
        return addon.replyErr(req, 0);
      case OP.ACCESS:
        return ops.access(path, n0, (code: number) => addon.replyErr(req, code < 0 ? -code : 0));
      default:
        return addon.replyErr(req, Errno.ENOSYS);
    }
  }

  const args = o.options.length ? ['-o', o.options.join(',')] : [];
  const [ctx, mounted] = addon.mount(o.mountpoint, args, handler, o.native ?? {});
  await mounted;
  let unmounting: Promise<void> | undefined;

  return {
    inodes,
    unmount() {
      clearInterval(sweep);
      unmounting ??= addon.unmount(ctx);
      return unmounting;
    },
    async refresh(changed) {
      const stat = (p: string): Promise<FuseStat | null> =>
        new Promise((resolve) => ops.getattr(p, (code: number, st?: FuseStat) => resolve(code < 0 ? null : st!)));
      const paths = new Set<string>(changed ?? [...[...inodes.entries()].map(([p]) => p), ...negatives]);
      paths.delete('/');
      const parents: number[] = [];
      const names: string[] = [];
      const inos = new Set<number>();
      const entry = (p: string): void => {
        const parent = inodes.peek(parentOf(p));
        if (parent === undefined) return; // the kernel cannot have a name under an unknown directory
        parents.push(parent);
        names.push(p.slice(p.lastIndexOf('/') + 1));
      };
      for (const p of paths) {
        const ino = inodes.peek(p);
        const st = await stat(p);
        if (ino === undefined) {
          if (st && negatives.delete(p)) entry(p);
          else if (st && changed) entry(p);
          continue;
        }
        if (!st || (st.mode & 0o170000) !== inodes.type(ino)) {
          entry(p);
          for (const i of inodes.subtree(p)) inos.add(i);
          inodes.detach(p);
        } else {
          inos.add(ino);
        }
      }
      if (!changed) negatives.clear();
      if (unmounting || (!parents.length && !inos.size)) return { entries: 0, inodes: 0 };
      await new Promise<void>((resolve) => addon.invalidate(ctx, parents, names, [...inos], () => resolve()));
      return { entries: parents.length, inodes: inos.size };
    },
  };
}
