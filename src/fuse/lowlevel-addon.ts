/**
 * The native addon's interface (native/cairn_fuse.c, its export table; native/ll.h, the request
 * codes; native/ll_post.c, the argument layout it hands to JavaScript), and loading it once.
 */
import { addonError, loadAddon } from '../util/addon.js';

/** The addon's exports (see native/cairn_fuse.c; native reads: native/nread.c). */
export interface NativeAddon extends NreadAddon {
  mount(mountpoint: string, args: string[], handler: NativeHandler, opts: NativeMountOptions): [unknown, Promise<void>];
  unmount(ctx: unknown): Promise<void>;
  invalidate(ctx: unknown, parents: number[], names: string[], inodes: number[], done: (failed: number) => void): void;
  /** Whether the addon may answer getxattr of security.capability itself, with ENODATA. */
  setCapsAbsent(ctx: unknown, absent: boolean): void;
  /**
   * Attributes `req`'s answer leaves for GETATTRs the addon answers itself (native/nattr.h), besides
   * the attributes the answer carries (which replyAttr, replyEntry and replyCreate leave anyway).
   */
  attrStage(req: Req, ...a: [...AttrArgs, number]): void;
  /**
   * An inode whose attributes `req`'s answer, a change of the namespace, changed besides the
   * request's own directories (a created, unlinked or renamed inode, one a rename replaced): a
   * request that names every such inode keeps the addon's attributes of all the others current
   * (native/nattr.h); one that names none changed anything's.
   */
  attrTouch?(req: Req, ino: number): void;
  /**
   * A name of directory `parent` a LOOKUP's answer leaves for LOOKUPs the addon answers itself
   * (native/nattr.h, "Names"; with the attributes of `ino` staged by attrStage).
   */
  nameStage?(req: Req, parent: number, name: string, ino: number, entryTimeout: number): void;
  /** Whether JavaScript may drop inode `ino`: false while the kernel holds lookups of it the addon answered. */
  inoRelease?(ctx: unknown, ino: number): boolean;
  /** A change made outside any request (a reload): no attributes from before it are answered natively. */
  attrBump(ctx: unknown): void;
  /** Workers woken with a request and with none; GETATTRs and LOOKUPs the addon answered itself and not. */
  dispatchStats(ctx: unknown): DispatchStats;
  replyErr(req: Req, errno: number): void;
  replyEntry(req: Req, ...a: [...AttrArgs, number, number]): void;
  replyCreate(req: Req, ...a: [...AttrArgs, number, number, number, number, number]): void;
  replyAttr(req: Req, ...a: [...AttrArgs, number]): void;
  replyOpen(req: Req, fh: number, keepCache: number, directIo: number): void;
  replyBuf(req: Req, buf: Buffer | null, len: number): void;
  replyWrite(req: Req, count: number): void;
  replyReadlink(req: Req, target: string): void;
  /** The size an xattr value or name list needs (answer to a query of size 0). */
  replyXattr(req: Req, size: number): void;
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
/** The addon's figures of its request dispatch (native/cairn_fuse.c, nattr.c). */
export interface DispatchStats {
  wakeups: number;
  idleWakeups: number;
  attrHits: number;
  attrMisses: number;
  attrKept: number;
  attrBumps: number;
  /** LOOKUPs the addon answered itself and not; names it keeps; inodes it may answer with. */
  lookupHits: number;
  lookupMisses: number;
  namesKept: number;
  inodesHeld: number;
  /** Not the addon's: the event loop's spins after bursts of requests, and requests that came during one (./spin.ts). */
  spins?: number;
  spinHits?: number;
}

/** The addon's figures of native reads. */
export interface NreadStats {
  served: number;
  servedBytes: number;
  servedNs: number;
  misses: number;
  puts: number;
  putBytes: number;
  evictions: number;
  bytes: number;
  chunks: number;
  files: number;
  budget: number;
  /** READs answered (in part) from blocks verified against a chunk's outboard (random readers); bytes of the verified outboards kept. */
  partServed?: number;
  outboardBytes?: number;
  /** Chunks kept from native fetches (native/nfetch.c offers each chunk it verified). */
  offered?: number;
  /** READs that waited in the addon for a native fetch's chunk (instead of in JavaScript). */
  awaited?: number;
  /** Of those, READs that gave up waiting (the fetch neither brought the chunk nor ended within 10 s). */
  awaitTimeouts?: number;
  /** Host cache reads on the addon's threads (native/ncache.c): on, chunks loaded and verified, bytes, time, absent, damaged (removed), mtime touches. */
  cacheOn?: boolean;
  cacheLoads?: number;
  cacheLoadBytes?: number;
  cacheLoadNs?: number;
  cacheMisses?: number;
  cacheCorrupt?: number;
  cacheTouches?: number;
  /** Bytes hashed to verify host cache reads; partial loads (blocks); outboards read (`<hash>.ob`, verified) and written. */
  cacheHashed?: number;
  cachePartLoads?: number;
  cacheOutboardLoads?: number;
  cacheOutboardPuts?: number;
  /** Native opens (native/nopen.c): answered, their releases, open now, bytes of registered layouts. */
  nativeOpens?: number;
  nativeReleases?: number;
  nativeOpen?: number;
  layoutBytes?: number;
}

/** The nread* exports of the addon. */
export interface NreadAddon {
  nreadOpen(ctx: unknown, fh: number, ino: number, size: number, offsets: Float64Array, names: Buffer): void;
  nreadClose(ctx: unknown, fh: number): void;
  nreadDrop(ctx: unknown, ino: number): number;
  nreadHas(ctx: unknown, name: Buffer): boolean;
  nreadPut(ctx: unknown, name: Buffer, bytes: Buffer): boolean;
  nreadStats(ctx: unknown): NreadStats;
  /**
   * Lets the addon's threads read chunks from the host cache at `dir`, each verified with the
   * addon's C BLAKE3 before use; false when they may not (its BLAKE3 missing or failing its self-test).
   */
  nreadCache?(ctx: unknown, dir: string): boolean;
  /**
   * Native opens (native/nopen.c): an OPEN for reading only of inode `ino` may be answered on the
   * addon's threads with this layout (false: not kept); `nreadForget` drops every such layout;
   * `nreadOpened` lists the handles open natively now as [fh, ino, pid, ...].
   */
  nreadLayout?(ctx: unknown, ino: number, size: number, offsets: Float64Array, names: Buffer): boolean;
  nreadForget?(ctx: unknown): void;
  nreadOpened?(ctx: unknown): Float64Array;
  /** Computes a resident chunk's outboard off the JavaScript thread, kept and written as `<hash>.ob` (random readers). */
  nreadOutboard?(ctx: unknown, name: Buffer): boolean;
}

export type Req = object;
/** ino, mode, nlink, uid, gid, size, times ([mtimeMs, atimeMs, ctimeMs, rdev]) */
export type AttrArgs = [number, number, number, number, number, number, Float64Array | number];
export type NativeHandler = (
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
  uid: number,
  gid: number,
) => void;

export interface NativeMountOptions {
  workers?: number;
  maxWrite?: number;
  maxReadahead?: number;
  /** 1: ask for the kernel's writeback cache (./writeback.ts). */
  writeback?: number;
  /** Budget in bytes of native cached reads (lowlevel-nread.ts; 0 or absent: off). */
  nreadBytes?: number;
}

/** Request codes (native/ll.h). */
export const OP = {
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
  FALLOCATE: 27,
  SETXATTR: 28,
  GETXATTR: 29,
  LISTXATTR: 30,
  REMOVEXATTR: 31,
  EXITED: 91,
  /** Not a request: a natively served reader (handle in `ino`) entered chunk n0 (lowlevel-nread.ts). */
  NREAD_AHEAD: 92,
} as const;

export const SET_ATTR = { MODE: 1, UID: 2, GID: 4, SIZE: 8, ATIME: 16, MTIME: 32, ATIME_NOW: 128, MTIME_NOW: 256 } as const;
export const REPLIES = [
  'replyErr',
  'replyEntry',
  'replyCreate',
  'replyAttr',
  'replyOpen',
  'replyBuf',
  'replyWrite',
  'replyReadlink',
  'replyDir',
  'replyXattr',
] as const;
/** The root's inode number. */
export const ROOT = 1;

/**
 * Loads the addon once (src/util/addon.ts); undefined (with `loadError()` saying why) when it is
 * not built or libfuse3 is missing.
 *
 * @example
 *   const addon = loadNative(); if (!addon) console.log(loadError());
 */
export function loadNative(): NativeAddon | undefined {
  return loadAddon() as NativeAddon | undefined;
}

/** Why the addon did not load (undefined when it did, or was not tried). */
export const loadError = addonError;

/** A stat as the adapter answers it. */
export type FuseStat = {
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  mtime: Date;
  atime?: Date;
  ctime?: Date;
  rdev?: number;
  /** The session's inode id of a hard-linked file (Stat.linkId): its names share one inode. */
  link?: string;
};

/** The reply arguments of a stat (ino first). */
export function attrArgs(ino: number, st: FuseStat): AttrArgs {
  return [ino, st.mode, st.nlink, st.uid, st.gid, st.size, timesOf(st)];
}

/** [mtimeMs, atimeMs, ctimeMs, rdev] of a stat (atime and ctime default to the mtime). */
export function timesOf(st: FuseStat): Float64Array {
  const m = st.mtime.getTime();
  return Float64Array.of(m, st.atime?.getTime() ?? m, st.ctime?.getTime() ?? m, st.rdev ?? 0);
}

/** Numbers per entry of replyDir's list: ino, mode, nlink, size, mtimeMs, uid, gid, atimeMs, ctimeMs, rdev. */
export const DIR_STRIDE = 10;

/** One entry of replyDir's list. */
export function dirNums(ino: number, st: FuseStat): number[] {
  const t = timesOf(st);
  return [ino, st.mode, st.nlink, st.size, t[0]!, st.uid, st.gid, t[1]!, t[2]!, t[3]!];
}
