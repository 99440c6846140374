/**
 * The attribute side of a native mount's requests: setattr as the adapter's steps (chmod,
 * truncate, chown, times), and the attributes an answer leaves for the GETATTRs the addon answers
 * itself (native/nattr.h: the kernel drops a directory's attributes when an entry in it is made,
 * removed or renamed, and a renamed inode's, and asks for them at once).
 *
 * Invariants: what is left with an answer is read after the request's change and before its
 * answer, so the addon keeps it only while nothing that may change it was answered in between
 * (it checks); nothing is left for paths the kernel must not cache (`uncached`).
 */
import type { FuseOps } from './adapter.js';
import { attrArgs, SET_ATTR, type FuseStat, type NativeAddon, type Req } from './lowlevel-addon.js';

type Step = (cb: (code: number) => void) => void;

/**
 * setattr's changes as adapter steps, in the order they apply (`set`: the FATTR bits; `n1` the
 * mode, `n2` the size, `fh` the handle or -1; `data` [atimeMs, mtimeMs, uid, gid]).
 *
 * @example for (const s of setattrSteps(ops, '/a', SET_ATTR.MODE, 0o600, 0, -1, [0, 0, 0, 0])) s(cb);
 */
export function setattrSteps(ops: FuseOps, path: string, set: number, n1: number, n2: number, fh: number, data: number[]): Step[] {
  // atime is not stored: only mtime (a time, UTIME_NOW, or UTIME_OMIT when unset) changes.
  const [atimeMs, mtimeMs, newUid, newGid] = data as [number, number, number, number];
  const NO_ID = 0xffffffff;
  const steps: Step[] = [];
  if (set & SET_ATTR.MODE) steps.push((cb) => ops.chmod(path, n1 & 0o7777, cb));
  if (set & SET_ATTR.SIZE) steps.push((cb) => (fh >= 0 ? ops.ftruncate(path, fh, n2, cb) : ops.truncate(path, n2, cb)));
  if (set & (SET_ATTR.UID | SET_ATTR.GID)) {
    const u = set & SET_ATTR.UID ? newUid : NO_ID;
    const g = set & SET_ATTR.GID ? newGid : NO_ID;
    steps.push((cb) => ops.chown(path, u, g, cb));
  }
  if (set & (SET_ATTR.MTIME | SET_ATTR.MTIME_NOW | SET_ATTR.ATIME | SET_ATTR.ATIME_NOW)) {
    // Cut to whole ms toward the past, as the kernel cuts times to a file system's
    // granularity: rounding could move a time into the next second (rsync compares seconds).
    const m = set & SET_ATTR.MTIME_NOW ? 'now' : set & SET_ATTR.MTIME ? Math.floor(mtimeMs) : null;
    const a = set & SET_ATTR.ATIME_NOW ? 'now' : set & SET_ATTR.ATIME ? Math.floor(atimeMs) : null;
    steps.push((cb) => ops.setTimes(path, m, cb, a));
  }
  return steps;
}

/**
 * Leaves the current attributes of `items` ([inode, path]) with `req`'s answer for the addon's own
 * GETATTRs (with attribute timeout `at`; none when 0), then runs `next`, which answers `req`.
 *
 * @example leaveAttrs(addon, ops, () => false, 3600, req, [[dirIno, '/d']], () => addon.replyErr(req, 0));
 */
export function leaveAttrs(
  addon: NativeAddon,
  ops: FuseOps,
  uncached: (path: string) => boolean,
  at: number,
  req: Req,
  items: [number, string][],
  next: () => void,
): void {
  let i = 0;
  const one = (): void => {
    if (at <= 0 || i === items.length) return next();
    const [ino, path] = items[i++]!;
    if (uncached(path)) return one();
    ops.getattr(path, (code: number, st?: FuseStat) => {
      if (code === 0) addon.attrStage(req, ...attrArgs(ino, st!), at);
      one();
    });
  };
  one();
}
