/**
 * The native FUSE binding: libfuse3's low-level (inode) API through the addon in `native/`
 * (cairn_fuse.node). Native threads read requests from /dev/fuse and hand each one to this module
 * through one thread-safe function; this module resolves inodes to paths, runs the adapter's path
 * operations (the same errno table and open-file table as the fuse-native binding) and answers
 * with the addon's reply functions.
 *
 * The parts: the addon's interface (lowlevel-addon.ts), the inode table (lowlevel-inodes.ts),
 * multi-step namespace requests — open files unlinked or replaced, renameat2, fallocate
 * (lowlevel-names.ts) — directory handles and their listings (lowlevel-dirs.ts), kernel cache
 * invalidation after a reload (lowlevel-refresh.ts), setattr's steps and the attributes answers
 * leave for the GETATTRs the addon answers itself (lowlevel-attrs.ts, native/nattr.h). This
 * module mounts, enforces the per-request time limit and dispatches.
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
import { Errno } from '../errors.js';
import type { FuseOps } from './adapter.js';
import type { HandleTable } from './handles.js';
import type { Credentials } from '../format/types.js';
import {
  attrArgs,
  OP,
  REPLIES,
  type FuseStat,
  type NativeAddon,
  type NativeHandler,
  type NativeMountOptions,
  type DispatchStats,
  type NreadStats,
  type Req,
} from './lowlevel-addon.js';
import { child, InodeTable } from './lowlevel-inodes.js';
import { Names } from './lowlevel-names.js';
import { DirHandles } from './lowlevel-dirs.js';
import { NativeLookups } from './lowlevel-lookups.js';
import { refreshKernel } from './lowlevel-refresh.js';
import { OpStats } from './lowlevel-stats.js';
import { RequestSpin, spinWindowUs } from './spin.js';
import { leaveAttrs, setattrSteps } from './lowlevel-attrs.js';
import { NativeReads, type ChunkSource } from './lowlevel-nread.js';

export { loadError, loadNative, type NativeAddon, type NativeMountOptions } from './lowlevel-addon.js';
export { InodeTable, parentOf } from './lowlevel-inodes.js';

const ETIMEDOUT = 110;

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
  /** Committed files' chunks for native cached reads (with `native.nreadBytes` > 0; lowlevel-nread.ts). */
  chunkSource?: ChunkSource;
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
  /** Figures of reads served natively (undefined when native cached reads are off). */
  nreadStats(): NreadStats | undefined;
  /** Figures of the addon's dispatch: worker wake-ups, GETATTRs answered natively. */
  dispatchStats(): DispatchStats;
  /**
   * The session's view changed outside a request (a commit or reload): attributes the addon keeps
   * for GETATTRs it answers itself (native/nattr.h) are dropped. Requests need no call: their answers do it.
   */
  attrsChanged(): void;
  /**
   * Whether no entry has `security.capability` nor `security.selinux` (`decide` gets the current answer:
   * false at the start and after a setxattr of either through the mount): while true, the addon answers
   * their getxattr (the kernel's before every write, `ls -l`'s per entry) with ENODATA itself.
   */
  capsAbsent(decide: (was: boolean) => boolean): void;
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
/** The addon's reply functions, by name (each answers one request). */
type Replies = Record<string, (req: Req, ...a: unknown[]) => number>;

export async function mountLowLevel(raw: NativeAddon, ops: FuseOps, o: LowLevelOptions): Promise<LowLevelMount> {
  // Per-request time limit: a request not answered within timeoutMs gets ETIMEDOUT, and its late
  // answer is dropped (the reply functions below answer only requests still waiting).
  const waiting = new Map<Req, number>();
  const addon: NativeAddon = { ...raw };
  const stats = OpStats.fromEnv();
  const spin = new RequestSpin(spinWindowUs());
  const reads = new WeakSet<Req>(); // READs in JavaScript: their answers do not extend a spin (./spin.ts)
  for (const k of REPLIES) {
    (addon as unknown as Replies)[k] = (req: Req, ...a: unknown[]) => {
      // A late answer (after ETIMEDOUT) is dropped, but what its request changed is not: the
      // addon's attributes from before it must go (native/nattr.h).
      if (!waiting.delete(req)) return (raw.attrBump(ctx), 0);
      stats?.end(req);
      if (!reads.delete(req)) spin.answered();
      return (raw as unknown as Replies)[k]!(req, ...a);
    };
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
  // An inode may go unless the addon holds native lookups of it (only once names were left with it).
  const inodes = new InodeTable((ino) => !lookups.used || (raw.inoRelease?.(ctx, ino) ?? true));
  /** Paths answered as absent with a cacheable negative entry. */
  const negatives = new Set<string>();
  /** Whether the addon answers getxattr of security.capability itself (capsAbsent). */
  let caps = false;
  const at = o.attrTimeoutSec;
  const uncached = o.uncached ?? ((): boolean => false);
  const et = o.entryTimeoutSec;

  const names = new Names(
    addon,
    ops,
    inodes,
    o.handles,
    () => addon.attrBump(ctx),
    (req, paths, next) =>
      withAttrs(
        req,
        paths.flatMap((p) => (inodes.peek(p) ? [[inodes.peek(p)!, p] as [number, string]] : [])),
        next,
      ),
  );
  const left = (dir: string): void => nread?.namesLeft(dir);
  const lookups = new NativeLookups(addon, ops, inodes, { attrTimeoutSec: at, entryTimeoutSec: et, uncached, left });
  const dirs = new DirHandles(addon, ops, inodes, { uid: o.uid, gid: o.gid, attrTimeoutSec: at, entryTimeoutSec: et });
  const fail = (req: Req, code: number): void => names.fail(req, code);
  const step = names.step.bind(names);

  /** Answers an entry for `path` (lookup, mkdir, symlink, mknod): stat, then one reference. */
  function replyEntryFor(req: Req, path: string, negativeOk: boolean): void {
    // A LOOKUP (negativeOk) is counted as `lookup` in the metrics; the others' stat as `getattr`.
    (negativeOk && ops.lookup ? ops.lookup : ops.getattr)(path, (code: number, st?: FuseStat) => {
      if (code < 0) {
        if (negativeOk && code === -Errno.ENOENT && et > 0 && negatives.size < MAX_NEGATIVE) {
          // A negative entry: the kernel remembers the name is absent for entry_timeout (and a
          // refresh drops it).
          negatives.add(path);
          return addon.replyEntry(req, 0, 0, 0, 0, 0, 0, 0, 0, et);
        }
        return fail(req, code);
      }
      const ino = inodes.ensure(path, st!.link);
      inodes.ref(ino);
      inodes.setType(ino, st!.mode);
      if (!negativeOk) addon.attrTouch?.(req, ino); // mknod, mkdir, symlink, link: the new name's inode changed
      const live = uncached(path);
      if (negativeOk && (st!.mode & 0o170000) === 0o100000) nread?.looked(path, ino); // before its OPEN can come
      const reply = (): void => addon.replyEntry(req, ...attrArgs(ino, st!), live ? 0 : at, live ? 0 : et);
      if (negativeOk && !live) lookups.answered(req, path, reply);
      else reply();
    });
  }

  /** An xattr value or name list: its size for a query (`size` 0), ERANGE when it does not fit. */
  function replySized(req: Req, v: Buffer, size: number): void {
    if (size === 0) return addon.replyXattr(req, v.length);
    if (v.length > size) return addon.replyErr(req, Errno.ERANGE);
    addon.replyBuf(req, v, v.length);
  }

  function replyAttrFor(req: Req, ino: number, path: string): void {
    ops.getattr(path, (code: number, st?: FuseStat) => {
      if (code < 0) return fail(req, code);
      addon.replyAttr(req, ...attrArgs(ino, st!), uncached(path) ? 0 : at);
    });
  }

  const withAttrs = (req: Req, items: [number, string][], next: () => void): void => leaveAttrs(addon, ops, uncached, at, req, items, next);

  /** The path of an inode for a request, or answers ENOENT (the name is gone) and returns null. */
  function pathOf(req: Req, ino: number): string | null {
    const p = inodes.path(ino);
    if (p === null) addon.replyErr(req, Errno.ENOENT);
    return p;
  }

  let nread: NativeReads | undefined; // native cached reads (lowlevel-nread.ts), once the mount context exists
  const handler: NativeHandler = (op, req, ino, ino2, n0, n1, n2, n3, s1, s2, data, pid, uid, gid) => {
    if (op === OP.FORGET) return inodes.forget(ino, n0);
    if (op === OP.NREAD_AHEAD) return nread?.ahead(ino, n0);
    if (op === OP.EXITED) return o.onExit?.();
    if (!req) return;
    if (op !== OP.READ) spin.arrived(waiting.size > 0);
    else reads.add(req);
    nread?.before(op, ino, n0, n1, n2, () => inodes.peek(child(inodes.path(ino) ?? '/', s1 ?? '')));
    const slow = op === OP.WRITE && uncached(inodes.path(ino) ?? '');
    stats?.start(req, op);
    waiting.set(req, limit > 0 ? Date.now() + (slow ? Math.max(limit, o.controlWriteTimeoutMs ?? 0) : limit) : Infinity);
    try {
      dispatch(req, op, ino, ino2, n0, n1, n2, n3, s1, s2, data, pid, { uid, gid });
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
    cred: Credentials,
  ): void {
    const path = pathOf(req, ino);
    if (path === null) return;
    switch (op) {
      case OP.LOOKUP:
        return replyEntryFor(req, child(path, s1!), true);
      case OP.GETATTR:
        return replyAttrFor(req, ino, path);
      case OP.SETATTR: {
        const steps = setattrSteps(ops, path, n0, n1, n2, n3, data as number[]);
        const runSteps = (i: number): void =>
          i === steps.length ? replyAttrFor(req, ino, path) : step(req, steps[i]!, () => runSteps(i + 1));
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
          (cb) => ops.mknod(p, n0, n1, cb, cred),
          () => replyEntryFor(req, p, false),
        );
      }
      case OP.MKDIR: {
        const p = child(path, s1!);
        return step(
          req,
          (cb) => ops.mkdir(p, n0, cb, cred),
          () => replyEntryFor(req, p, false),
        );
      }
      case OP.SYMLINK: {
        const p = child(path, s1!);
        return step(
          req,
          (cb) => ops.symlink(s2!, p, cb, cred),
          () => replyEntryFor(req, p, false),
        );
      }
      case OP.UNLINK:
      case OP.RMDIR:
        return names.remove(req, child(path, s1!), op === OP.RMDIR);
      case OP.RENAME: {
        const to = inodes.path(ino2);
        if (to === null) return addon.replyErr(req, Errno.ENOENT);
        return names.rename(req, child(path, s1!), child(to, s2!), n0);
      }
      case OP.LINK: {
        // A new name of inode `ino`, answered with that inode (every name of a file is one inode).
        const p = child(inodes.path(ino2) ?? '/', s1!);
        const linked = (): void => (inodes.alias(ino, p), replyEntryFor(req, p, false));
        return step(req, (cb) => ops.link(path, p, cb), linked);
      }
      case OP.OPEN:
        return step(
          req,
          (cb) => ops.open(path, n0, cb, pid, cred),
          (fh: number) =>
            uncached(path)
              ? addon.replyOpen(req, fh, 0, 1)
              : (nread?.open(fh, ino, path, n0, () => addon.replyOpen(req, fh, 1, 0)) ?? addon.replyOpen(req, fh, 1, 0)),
        );
      case OP.CREATE: {
        const p = child(path, s1!);
        return step(
          req,
          (cb) => ops.create(p, n0, cb, pid, cred),
          (fh: number) => {
            ops.getattr(p, (code: number, st?: FuseStat) => {
              if (code < 0) {
                ops.release(p, fh, () => undefined);
                return fail(req, code);
              }
              const cino = inodes.ensure(p);
              inodes.ref(cino);
              inodes.setType(cino, st!.mode);
              addon.attrTouch?.(req, cino); // the change: the new file and its directory
              const live = uncached(p);
              const [t1, t2, keep, direct] = live ? [0, 0, 0, 1] : [at, et, 1, 0];
              withAttrs(req, [[ino, path]], () => addon.replyCreate(req, ...attrArgs(cino, st!), t1, t2, fh, keep, direct));
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
      case OP.RELEASE:
        return names.release(req, path, n2);
      case OP.FALLOCATE:
        return names.fallocate(req, path, n2, n0, n1, n3);
      case OP.FSYNC:
        return ops.fsync(path, n0, n2, (code: number) => addon.replyErr(req, code < 0 ? -code : 0));
      case OP.OPENDIR:
        return step(
          req,
          (cb) => ops.getattr(path, cb),
          (st: FuseStat) => {
            if ((st.mode & 0o170000) !== 0o040000) return addon.replyErr(req, Errno.ENOTDIR);
            addon.replyOpen(req, dirs.open(path), 0, 0);
          },
        );
      case OP.READDIR:
      case OP.READDIRPLUS:
        return dirs.read(req, ino, n0, n1, n2, op === OP.READDIRPLUS, (code) => fail(req, code));
      case OP.RELEASEDIR:
        dirs.release(n2);
        return addon.replyErr(req, 0);
      case OP.SETXATTR:
        if (s1 === 'security.capability' || s1 === 'security.selinux') setCaps(false);
        return ops.setxattr(path, s1!, data as Buffer, 0, n0, (code: number) => addon.replyErr(req, code < 0 ? -code : 0), cred);
      case OP.GETXATTR:
        return ops.getxattr(path, s1!, 0, (code: number, v?: Buffer) => (code < 0 ? fail(req, code) : replySized(req, v!, n0)), cred);
      case OP.LISTXATTR:
        return ops.listxattr(
          path,
          (code: number, list?: string[]) =>
            code < 0 ? fail(req, code) : replySized(req, Buffer.from(list!.map((n) => `${n}\0`).join('')), n0),
          cred,
        );
      case OP.REMOVEXATTR:
        return ops.removexattr(path, s1!, (code: number) => addon.replyErr(req, code < 0 ? -code : 0), cred);
      case OP.ACCESS:
        return ops.access(path, n0, (code: number) => addon.replyErr(req, code < 0 ? -code : 0));
      default:
        return addon.replyErr(req, Errno.ENOSYS);
    }
  }

  const args = o.options.length ? ['-o', o.options.join(',')] : [];
  const [ctx, mounted] = addon.mount(o.mountpoint, args, handler, o.native ?? {});
  const setCaps = (absent: boolean): void => void ((caps = absent), addon.setCapsAbsent(ctx, absent));
  if (o.chunkSource && (o.native?.nreadBytes ?? 0) > 0) nread = new NativeReads(raw, ctx, o.chunkSource, o.handles, inodes);
  if (nread?.nativeOpens) names.onHide = (i) => nread!.drop(i);
  await mounted;
  let unmounting: Promise<void> | undefined;
  const dispatchStats = (): DispatchStats => ({ ...addon.dispatchStats(ctx), spins: spin.spins, spinHits: spin.hits });

  return {
    inodes,
    unmount() {
      clearInterval(sweep);
      if (!unmounting && stats) {
        process.stderr.write(`${JSON.stringify({ fuseOpStats: stats.summary(nread?.stats(), dispatchStats()) })}\n`);
      }
      unmounting ??= addon.unmount(ctx).then(() => nread?.close());
      return unmounting;
    },
    refresh: (changed) => (
      addon.attrBump(ctx),
      nread?.dropChanged(changed, (p) => inodes.peek(p)),
      refreshKernel({ addon, ctx, ops, inodes, negatives, live: () => !unmounting, renumberFiles: !!o.native?.writeback }, changed)
    ),
    nreadStats: () => nread?.stats(),
    dispatchStats,
    attrsChanged: () => addon.attrBump(ctx),
    capsAbsent: (decide) => setCaps(decide(caps)),
  };
}
