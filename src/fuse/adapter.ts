/**
 * The FUSE adapter: fuse-native callbacks -> FsSession calls -> errno. It only translates; all
 * file-system semantics live in the session.
 *
 * Invariants:
 * - every callback is answered exactly once, with 0, a byte count, or a negative errno from the
 *   one table (`errnoFor`); errors that are not CairnErrors become EIO and are reported to `onError`;
 * - nothing here blocks the event loop (the same loop serves the kernel);
 * - the handle table always holds the current path of every open file (rename follows it);
 * - on a read-only mount every write, and every open for writing, fails with EROFS before the
 *   session is asked.
 * Unsupported operations and their errno are listed in docs/SEMANTICS.md.
 */
import { CairnError, Errno, errnoFor } from '../errors.js';
import type { ReadCursor } from '../chunks/index.js';
import type { Credentials, FsSession, Stat } from '../format/types.js';
import { metadataOps, TYPE_BITS } from './adapter-meta.js';
import { HandleTable, O_TRUNC, wantsWrite, type HandleEntry } from './handles.js';
import type { Freshness } from './freshness.js';
import type { MountConfig } from './config.js';

type Cb = (code: number, ...result: unknown[]) => void;
/** fuse-native's op table. */
export type FuseOps = Record<string, (...args: any[]) => void>;

/**
 * What the adapter reads of the mount's config (a MountConfig is passed as it is): `readOnly`
 * (writes answer EROFS before the session is asked; a read-only session counts too) and
 * `fsyncOnClose` (see config.ts; default false).
 */
export type AdapterConfig = Pick<MountConfig, 'readOnly' | 'fsyncOnClose'>;

/** What the daemon gives the adapter besides the config. */
export interface AdapterRuntime {
  /** Owner reported for stats that carry none (default: the daemon's uid/gid); entries report their own. */
  uid?: number;
  gid?: number;
  /** The mount's open-file table (the daemon reads it for status and busy errors). */
  handles?: HandleTable;
  /** Reported mtimes that change when a reload changed a file (see ./freshness.ts). */
  freshness?: Freshness;
  /** Called for failures that are not CairnErrors (they reach the kernel as EIO). */
  onError?: (op: string, path: string, err: unknown) => void;
  /** True when the kernel's writeback cache is on: it sets a written file's times itself (./writeback.ts). */
  writeback?: () => boolean;
}

/** `UTIME_NOW`/`UTIME_OMIT` arrive from fuse-native as 1073 ms (tv_sec 0, tv_nsec ~2^30). */
const UTIME_SPECIAL_MS = Math.floor(((1 << 30) - 1) / 1e6);

/** fuse-native stat object for a session Stat. */
export function toFuseStat(st: Stat, uid: number, gid: number): Record<string, number | Date> {
  const time = new Date(st.mtimeMs);
  const size = st.type === 'symlink' ? Buffer.byteLength(st.target ?? '') : st.size;
  return {
    mode: TYPE_BITS[st.type] | (st.mode & 0o7777),
    // The stored owner; `uid`/`gid` for stats without one (the control file).
    uid: st.uid ?? uid,
    gid: st.gid ?? gid,
    size,
    nlink: st.nlink ?? (st.type === 'directory' ? 2 : 1),
    rdev: st.rdev ?? 0,
    blksize: 4096,
    blocks: Math.ceil(size / 512),
    atime: st.atimeMs === undefined ? time : new Date(st.atimeMs),
    mtime: time,
    ctime: st.ctimeMs === undefined ? time : new Date(st.ctimeMs),
  };
}

/** fuse-native statfs object: large, fixed figures (the store has no meaningful capacity). */
export function statfsResult(): Record<string, number> {
  const big = 0x7fffffff;
  return {
    bsize: 4096,
    frsize: 4096,
    blocks: big,
    bfree: big,
    bavail: big,
    files: big,
    ffree: big,
    favail: big,
    fsid: 0,
    flag: 0,
    namemax: 255,
  };
}

/**
 * Builds the fuse-native operations of a mount of `session`.
 *
 * @example
 *   const ops = createOps(session, { readOnly: false }, { handles });
 *   const fuse = new Fuse('/mnt/vol', ops, { fsname: 'cairn:vol' });
 */
export function createOps(session: FsSession, config: AdapterConfig, opts: AdapterRuntime = {}): FuseOps {
  const uid = opts.uid ?? process.getuid?.() ?? 0;
  const gid = opts.gid ?? process.getgid?.() ?? 0;
  const handles = opts.handles ?? new HandleTable();
  const readOnly = !!config.readOnly || session.readOnly;
  const keepTimes = opts.writeback ?? (() => false);
  const fsyncOnClose = !!config.fsyncOnClose;
  const fresh = opts.freshness;
  const fuseStat = (st: Stat) => {
    const shown = fresh && st.type === 'file' ? { ...st, mtimeMs: fresh.mtimeOf(st.path, st.mtimeMs, st.size) } : st;
    // The inode id of a hard-linked file: the native binding gives its names one inode number.
    return st.linkId === undefined ? toFuseStat(shown, uid, gid) : { ...toFuseStat(shown, uid, gid), link: st.linkId };
  };

  /** `stat` without a promise: the entry, or undefined when absent (what stat answers with NOT_FOUND). */
  const lookup = session.lookup?.bind(session);

  let spare = Buffer.alloc(0); // the native binding's fast-path answers (see read)

  /** Answers cb from a promise: `ok(value)` on success, the errno of the error otherwise. */
  function run<T>(op: string, path: string, cb: Cb, work: () => Promise<T>, ok: (v: T) => void = () => cb(0)): void {
    let p: Promise<T>;
    try {
      p = work();
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(ok, (err: unknown) => {
      if (!(err instanceof CairnError) && opts.onError) opts.onError(op, path, err);
      cb(-errnoFor(err));
    });
  }

  function rofs(cb: Cb): boolean {
    if (readOnly) cb(-Errno.EROFS);
    return readOnly;
  }

  /** Records an open file in the mount's table; returns the FUSE handle. */
  function openHandle(path: string, flags: number, pid?: number): number {
    return handles.add(path, flags, pid);
  }

  /**
   * Reads go by handle: the handle's current path (renames followed) and its read state (the
   * chunk layer's per-reader cursor, made on the handle's first read).
   */
  function cursorOf(h: HandleEntry | undefined): ReadCursor | undefined {
    if (h && !h.cursor) h.cursor = session.cursor?.();
    return h?.cursor;
  }
  function readCached(h: HandleEntry | undefined, path: string, pos: number, len: number, into: Buffer): number | undefined {
    return session.readCached?.(h?.path ?? path, pos, len, into, cursorOf(h));
  }
  function readAt(h: HandleEntry | undefined, path: string, pos: number, len: number): Promise<Buffer> {
    return session.read(h?.path ?? path, pos, len, cursorOf(h));
  }

  /** Sets the modification and access times: a time in ms, 'now', or null (leave it). */
  function setTimes(path: string, mtime: number | 'now' | null, cb: Cb, atime: number | 'now' | null = null): void {
    if (rofs(cb)) return;
    const ms = (t: number | 'now' | null) => (t === 'now' ? Date.now() : (t ?? undefined));
    if (mtime === null && atime === null) {
      run('utimens', path, cb, () => session.stat(path));
      return;
    }
    if (session.setTimes) {
      const set = session.setTimes.bind(session);
      run('utimens', path, cb, () => set(path, { mtimeMs: ms(mtime), atimeMs: ms(atime) }));
      return;
    }
    if (mtime === null) return run('utimens', path, cb, () => session.stat(path));
    run('utimens', path, cb, () => session.utimes(path, ms(mtime)!));
  }

  const ops: FuseOps = {
    // chown, mknod and extended attributes (./adapter-meta.ts).
    ...metadataOps(session, { run, rofs, uid, gid, onError: opts.onError }),
    init(cb: Cb) {
      cb(0);
    },

    statfs(_path: string, cb: Cb) {
      cb(0, statfsResult());
    },

    access(path: string, mode: number, cb: Cb) {
      run(
        'access',
        path,
        cb,
        () => session.stat(path),
        () => cb(readOnly && mode & 2 ? -Errno.EROFS : 0),
      );
    },

    getattr(path: string, cb: Cb) {
      // A session that can look a path up without throwing answers at once: no promise, and no
      // error object for an absent name (a LOOKUP per file created by tar, cp and rsync).
      if (lookup) {
        let st: Stat | undefined;
        try {
          st = lookup(path);
        } catch (err) {
          if (!(err instanceof CairnError) && opts.onError) opts.onError('getattr', path, err);
          return cb(-errnoFor(err));
        }
        return st ? cb(0, fuseStat(st)) : cb(-Errno.ENOENT);
      }
      run(
        'getattr',
        path,
        cb,
        () => session.stat(path),
        (st) => cb(0, fuseStat(st)),
      );
    },

    fgetattr(path: string, _fh: number, cb: Cb) {
      ops.getattr(path, cb);
    },

    /** A name's lookup (the native binding's LOOKUP): getattr's answer, counted as its own operation in the metrics. */
    lookup(path: string, cb: Cb) {
      ops.getattr(path, cb);
    },

    readdir(path: string, cb: Cb) {
      run(
        'readdir',
        path,
        cb,
        async () => {
          const [self, children] = await Promise.all([session.stat(path), session.readdir(path)]);
          const dot = fuseStat(self);
          const names = ['.', '..'];
          const stats = [dot, dot];
          for (const c of children) {
            names.push(c.path.slice(c.path.lastIndexOf('/') + 1));
            stats.push(fuseStat(c));
          }
          return { names, stats };
        },
        (r) => cb(0, r.names, r.stats),
      );
    },

    /**
     * `pid`, `cred`: the opener, when the binding knows it (the native binding does). O_TRUNC
     * truncates even an empty file (mtime and ctime become now, as on a local disk); by a caller
     * other than root it clears setuid/setgid, which the kernel leaves to the file system here.
     */
    open(path: string, flags: number, cb: Cb, pid?: number, cred?: Credentials) {
      if (wantsWrite(flags) && rofs(cb)) return;
      run(
        'open',
        path,
        cb,
        async () => {
          const st = await session.stat(path);
          if (st.type === 'directory' && wantsWrite(flags)) {
            throw new CairnError('IS_A_DIRECTORY', `${path} is a directory`, { path });
          }
          if (flags & O_TRUNC && st.type === 'file') await session.truncate(path, 0, cred);
          return openHandle(path, flags, pid);
        },
        (fh) => cb(0, fh),
      );
    },

    /** `cred`: the caller (native binding), owner of the new file. */
    create(path: string, mode: number, cb: Cb, pid?: number, cred?: Credentials) {
      if (rofs(cb)) return;
      run(
        'create',
        path,
        cb,
        async () => {
          await session.create(path, mode & 0o7777, cred);
          return openHandle(path, 0o2 /* O_RDWR */, pid);
        },
        (fh) => cb(0, fh),
      );
    },

    /** `buf` null (native binding): `cb(n, bytes)`'s buffer is valid during the call only (answered at once): the fast path reuses `spare`. */
    read(path: string, fh: number, buf: Buffer | null, len: number, pos: number, cb: Cb) {
      const h = handles.get(fh);
      // Fast path: bytes already in memory are copied into the kernel's buffer synchronously.
      const into = buf ?? (spare.length >= len ? spare : (spare = Buffer.allocUnsafeSlow(len)));
      const n = readCached(h, path, pos, len, into.length >= len ? into.subarray(0, len) : into);
      if (n !== undefined) return cb(n, into);
      run(
        'read',
        path,
        cb,
        () => readAt(h, path, pos, len),
        (data) => {
          const n = Math.min(data.length, len);
          if (!buf) return cb(n, data);
          data.copy(buf, 0, 0, n);
          cb(n);
        },
      );
    },

    /** `owned`: the buffer is the caller's to give (native binding), so it is not copied. */
    write(path: string, fh: number, buf: Buffer, len: number, pos: number, cb: Cb, owned = false) {
      if (rofs(cb)) return;
      const h = handles.get(fh);
      // Copy: fuse-native's buffer is kernel memory that is detached once we answer.
      const data = owned ? buf.subarray(0, len) : Buffer.from(buf.subarray(0, len));
      run(
        'write',
        path,
        cb,
        () => session.write(h?.path ?? path, pos, data, undefined, keepTimes()),
        () => {
          if (h) h.dirty = true;
          cb(len);
        },
      );
    },

    truncate(path: string, size: number, cb: Cb) {
      if (rofs(cb)) return;
      run('truncate', path, cb, () => session.truncate(path, size));
    },

    ftruncate(path: string, fh: number, size: number, cb: Cb) {
      if (rofs(cb)) return;
      const h = handles.get(fh);
      run(
        'ftruncate',
        path,
        cb,
        () => session.truncate(h?.path ?? path, size),
        () => {
          if (h) h.dirty = true;
          cb(0);
        },
      );
    },

    flush(path: string, fh: number, cb: Cb) {
      // close(2): with fsyncOnClose, make written data durable locally (not committed). Without
      // it a flush has nothing to do: ENOSYS tells the kernel to send no more (a round trip per
      // close(2) saved; the close still returns 0).
      if (!fsyncOnClose) return cb(-Errno.ENOSYS);
      const h = handles.get(fh);
      if (!h || !h.dirty || readOnly || !fsyncOnClose) return cb(0);
      run(
        'flush',
        path,
        cb,
        () => session.fsync(h.path),
        () => {
          h.dirty = false;
          cb(0);
        },
      );
    },

    fsync(path: string, _datasync: number, fh: number, cb: Cb) {
      if (readOnly) return cb(0);
      const h = handles.get(fh);
      run(
        'fsync',
        path,
        cb,
        () => session.fsync(h?.path ?? path),
        () => {
          if (h) h.dirty = false;
          cb(0);
        },
      );
    },

    release(path: string, fh: number, cb: Cb) {
      handles.remove(fh);
      cb(0);
    },

    mkdir(path: string, mode: number, cb: Cb, cred?: Credentials) {
      if (rofs(cb)) return;
      run('mkdir', path, cb, () => session.mkdir(path, mode & 0o7777, cred));
    },

    rmdir(path: string, cb: Cb) {
      if (rofs(cb)) return;
      run('rmdir', path, cb, () => session.rmdir(path));
    },

    unlink(path: string, cb: Cb) {
      if (rofs(cb)) return;
      run('unlink', path, cb, () => session.unlink(path));
    },

    rename(from: string, to: string, cb: Cb) {
      if (rofs(cb)) return;
      run(
        'rename',
        from,
        cb,
        () => session.rename(from, to),
        () => {
          handles.rename(from, to);
          cb(0);
        },
      );
    },

    symlink(target: string, path: string, cb: Cb, cred?: Credentials) {
      if (rofs(cb)) return;
      run('symlink', path, cb, () => session.symlink(target, path, cred));
    },

    readlink(path: string, cb: Cb) {
      run(
        'readlink',
        path,
        cb,
        () => session.readlink(path),
        (t) => cb(0, t),
      );
    },

    chmod(path: string, mode: number, cb: Cb) {
      if (rofs(cb)) return;
      run('chmod', path, cb, () => session.chmod(path, mode & 0o7777));
    },

    utimens(path: string, atime: number, mtime: number, cb: Cb) {
      if (rofs(cb)) return;
      // fuse-native: UTIME_NOW and UTIME_OMIT are indistinguishable here; both mean "now" for
      // mtime unless only atime was given a real time (touch -a -d ...), which leaves mtime alone.
      const special = mtime === UTIME_SPECIAL_MS;
      if (special && atime !== UTIME_SPECIAL_MS) return cb(0);
      setTimes(path, special ? 'now' : mtime, cb);
    },

    /** utimens with UTIME_NOW / UTIME_OMIT told apart (the native binding's setattr). */
    setTimes,

    /** link(2): `to` becomes another name of the file at `from` (src/session/links.ts). */
    link(from: string, to: string, cb: Cb) {
      if (rofs(cb)) return;
      if (!session.link) return cb(-Errno.EPERM);
      const link = session.link.bind(session);
      run('link', to, cb, () => link(from, to));
    },
  };
  return ops;
}
