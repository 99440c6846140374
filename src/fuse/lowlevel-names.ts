/**
 * The namespace requests of a native mount that need more than one adapter step: unlink and
 * rename of open files (hidden until their last close, as libfuse 2 does), renameat2's
 * RENAME_NOREPLACE and RENAME_EXCHANGE, and fallocate.
 *
 * Invariants:
 * - an open file that loses its name (unlink, replaced by a rename) is moved to a hidden name
 *   `.fuse_hidden…` in its directory and removed at its last close; commits never publish it;
 *   hidden files never keep their directory from being removed (rmdir moves them to the root);
 * - RENAME_EXCHANGE is three renames through a hidden name (a → hidden, b → a, hidden → b), undone
 *   step by step when one fails; the inode table swaps the two subtrees, the open-file table
 *   follows each rename. Within the mount no request sees the middle state (the kernel holds both
 *   parents' locks); a commit that runs in between may publish it (docs/SEMANTICS.md);
 * - fallocate mode 0 grows the file (zeros) to offset + length; FALLOC_FL_KEEP_SIZE reserves
 *   nothing (there is no space to reserve) and succeeds; FALLOC_FL_PUNCH_HOLE (with KEEP_SIZE, as
 *   Linux requires) and FALLOC_FL_ZERO_RANGE write zeros over the range inside the file (a written
 *   file is a whole local copy: there is no hole to make, and a chunk of zeros is stored once), and
 *   ZERO_RANGE without KEEP_SIZE then grows the file to offset + length; other modes are EOPNOTSUPP.
 */
import { Errno } from '../errors.js';
import { HIDDEN_PREFIX } from '../format/paths.js';
import type { FuseOps } from './adapter.js';
import type { HandleTable } from './handles.js';
import type { FuseStat, NativeAddon, Req } from './lowlevel-addon.js';
import { child, parentOf, type InodeTable } from './lowlevel-inodes.js';

const RENAME_NOREPLACE = 1;
const RENAME_EXCHANGE = 2;
const FALLOC_FL_KEEP_SIZE = 1;
const FALLOC_FL_PUNCH_HOLE = 2;
const FALLOC_FL_ZERO_RANGE = 0x10;
/** Zeros written per step of a punch or zero range. */
const ZEROS_STEP = 1 << 20;
/** fallocate(2) on something that is not a regular file. */
const ENODEV = 19;

type Cb = (code: number, ...r: any[]) => void;
type Step = (cb: Cb) => void;

/**
 * The namespace requests of one mount.
 *
 * @example
 *   const names = new Names(addon, ops, inodes, handles);
 *   names.rename(req, '/a', '/b', 0);
 */
export class Names {
  /** Open files unlinked while open, under their hidden names. */
  private readonly hidden = new Set<string>();
  private hideSeq = 0;

  constructor(
    private readonly addon: NativeAddon,
    private readonly ops: FuseOps,
    private readonly inodes: InodeTable,
    private readonly handles: HandleTable,
    /** The view changed in a way the request's answer does not say (native/nattr.h: a hidden file removed at a release). */
    private readonly changed: () => void = () => undefined,
    /** Before a rename's answer: leaves current attributes of these paths with it (native/nattr.h), then `next`. */
    private readonly withAttrs: (req: Req, paths: string[], next: () => void) => void = (_r, _p, next) => next(),
  ) {}

  /** Answers an error (a negative adapter code) or EIO. */
  fail(req: Req, code: number): void {
    this.addon.replyErr(req, -code > 0 ? -code : Errno.EIO);
  }

  /** Runs the adapter step `f` and continues with `next` on success (answers the error otherwise). */
  step(req: Req, f: Step, next: (...r: any[]) => void): void {
    f((code, ...r) => (code < 0 ? this.fail(req, code) : next(...r)));
  }

  isOpen(p: string): boolean {
    return this.handles.list().some((h) => h.path === p);
  }

  /** A fresh hidden name for `p`, in directory `dir` (default: beside it). */
  private hiddenName(p: string, dir = parentOf(p)): string {
    const tag = `${(this.inodes.peek(p) ?? 0).toString(16)}${(++this.hideSeq).toString(16).padStart(8, '0')}`;
    return child(dir, `${HIDDEN_PREFIX}${tag}`);
  }

  /** Told the inode of a file being hidden (native opens: its handles' releases must reach JavaScript). */
  onHide?: (ino: number) => void;

  /** Moves an open file out of the way to a hidden name, removed at its last close. */
  private hide(req: Req, p: string, next: () => void): void {
    const h = this.hiddenName(p);
    const ino = this.inodes.peek(p);
    if (ino !== undefined) this.onHide?.(ino);
    this.step(
      req,
      (cb) => this.ops.rename(p, h, cb),
      () => {
        this.inodes.rename(p, h);
        this.hidden.add(h);
        next();
      },
    );
  }

  /** unlink / rmdir of `p`. */
  remove(req: Req, p: string, dir: boolean): void {
    if (!dir && this.isOpen(p)) return this.hide(req, p, () => this.addon.replyErr(req, 0));
    // Hidden files do not keep a directory from being removed (on a local disk an unlinked open
    // file is in no directory): they move to the root first. Often they are not even open: the
    // kernel sends RELEASE in the background, so `rm d/f; rmdir d` right after a close may reach
    // the daemon before the release that would have removed d/f's hidden copy.
    const held = dir ? [...this.hidden].filter((h) => parentOf(h) === p) : [];
    if (held.length) return this.moveToRoot(req, held, () => this.remove(req, p, dir));
    const f = dir ? this.ops.rmdir : this.ops.unlink;
    const gone = this.inodes.peek(p);
    this.step(
      req,
      (cb) => f(p, cb),
      () => {
        this.inodes.detach(p);
        // The change: the removed inode (its other names' link count) and the directory. Unknown here: anything.
        if (gone !== undefined) this.addon.attrTouch?.(req, gone);
        this.addon.replyErr(req, 0);
      },
    );
  }

  /** Moves hidden files `held` to hidden names in the root, then `next`. */
  private moveToRoot(req: Req, held: string[], next: () => void): void {
    const [h, ...rest] = held;
    if (h === undefined) {
      this.changed(); // the root's and the directory's times, which the request's answer does not name
      return next();
    }
    const to = this.hiddenName(h, '/');
    this.step(
      req,
      (cb) => this.ops.rename(h, to, cb),
      () => {
        this.inodes.rename(h, to);
        this.hidden.delete(h);
        this.hidden.add(to);
        this.moveToRoot(req, rest, next);
      },
    );
  }

  /** rename / renameat2 of `from` to `to` with `flags`. */
  rename(req: Req, from: string, to: string, flags: number): void {
    if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) return this.addon.replyErr(req, Errno.EINVAL);
    if (flags & RENAME_EXCHANGE) return this.exchange(req, from, to);
    // The change: the moved inode, the one it replaced (if any, hidden first when open) and the
    // directories. Unknown here: anything.
    const moved = this.inodes.peek(from);
    const replaced = this.inodes.peek(to);
    const move = (): void => {
      this.step(
        req,
        (cb) => this.ops.rename(from, to, cb),
        () => {
          this.inodes.rename(from, to);
          if (moved !== undefined) {
            this.addon.attrTouch?.(req, moved);
            if (replaced !== undefined && replaced !== moved) this.addon.attrTouch?.(req, replaced);
          }
          this.withAttrs(req, [parentOf(from), parentOf(to), to], () => this.addon.replyErr(req, 0));
        },
      );
    };
    // A replaced file that is open keeps its bytes for its readers: hide it first (as unlink does).
    const go = (): void => (from !== to && this.isOpen(to) ? this.hide(req, to, move) : move());
    if (!(flags & RENAME_NOREPLACE)) return go();
    // The kernel checked it too; within this session nothing can create `to` in between.
    this.ops.getattr(to, (code: number) => (code === 0 ? this.addon.replyErr(req, Errno.EEXIST) : go()));
  }

  /** RENAME_EXCHANGE: both must exist; a directory may be exchanged with a file. */
  private exchange(req: Req, a: string, b: string): void {
    if (a === b) return this.addon.replyErr(req, 0);
    if (b.startsWith(`${a}/`) || a.startsWith(`${b}/`)) return this.addon.replyErr(req, Errno.EINVAL);
    const rn =
      (x: string, y: string): Step =>
      (cb) =>
        this.ops.rename(x, y, cb);
    this.step(
      req,
      (cb) => this.ops.getattr(a, cb),
      () =>
        this.step(
          req,
          (cb) => this.ops.getattr(b, cb),
          () => {
            const tmp = this.hiddenName(a);
            this.step(req, rn(a, tmp), () => {
              this.ops.rename(b, a, (c2: number) => {
                if (c2 < 0) return this.ops.rename(tmp, a, () => this.fail(req, c2));
                this.ops.rename(tmp, b, (c3: number) => {
                  if (c3 < 0) return this.ops.rename(a, b, () => this.ops.rename(tmp, a, () => this.fail(req, c3)));
                  this.inodes.exchange(a, b);
                  this.addon.replyErr(req, 0);
                });
              });
            });
          },
        ),
    );
  }

  /** release of handle `fh` of `path`: removes a hidden file at its last close. */
  release(req: Req, path: string, fh: number): void {
    // A handle the addon opened (native/nopen.c, numbers from 2^32) is not in the table: its inode's path.
    const hp = this.handles.get(fh)?.path ?? (fh >= 2 ** 32 ? path : undefined);
    this.ops.release(path, fh, () => {
      if (hp === undefined || !this.hidden.has(hp) || this.isOpen(hp)) return this.addon.replyErr(req, 0);
      this.hidden.delete(hp);
      this.ops.unlink(hp, () => {
        this.inodes.detach(hp);
        this.changed();
        this.addon.replyErr(req, 0);
      });
    });
  }

  /** fallocate(fd, mode, offset, length) on open handle `fh` of `path`. */
  fallocate(req: Req, path: string, fh: number, mode: number, offset: number, length: number): void {
    const punch = (mode & FALLOC_FL_PUNCH_HOLE) !== 0;
    const zeroing = punch || (mode & FALLOC_FL_ZERO_RANGE) !== 0;
    const keep = (mode & FALLOC_FL_KEEP_SIZE) !== 0;
    if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE) || (punch && (!keep || mode & FALLOC_FL_ZERO_RANGE))) {
      return this.addon.replyErr(req, Errno.ENOTSUP);
    }
    if (offset < 0 || length <= 0) return this.addon.replyErr(req, Errno.EINVAL);
    this.step(
      req,
      (cb) => this.ops.getattr(path, cb),
      (st: FuseStat) => {
        if ((st.mode & 0o170000) !== 0o100000) return this.addon.replyErr(req, ENODEV);
        const end = offset + length;
        const grow = (): void => {
          if (keep || end <= st.size) return this.addon.replyErr(req, 0);
          const step: Step = (cb) => (fh >= 0 ? this.ops.ftruncate(path, fh, end, cb) : this.ops.truncate(path, end, cb));
          this.step(req, step, () => this.addon.replyErr(req, 0));
        };
        const zeroEnd = zeroing ? Math.min(end, st.size) : offset;
        if (zeroEnd <= offset) return grow();
        const zeros = Buffer.alloc(Math.min(ZEROS_STEP, zeroEnd - offset));
        const zero = (at: number): void => {
          if (at >= zeroEnd) return grow();
          const n = Math.min(zeros.length, zeroEnd - at);
          this.step(
            req,
            (cb) => this.ops.write(path, fh, zeros, n, at, cb, true),
            () => zero(at + n),
          );
        };
        zero(offset);
      },
    );
  }
}
