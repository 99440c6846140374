/**
 * Which directories' names the addon answers LOOKUPs of itself (native/nattr.h, "Names"). A program
 * that opens files by name without listing their directory first (a model loader, a build) sends
 * one LOOKUP per file, each a trip through JavaScript; after a listing (readdirplus) the kernel
 * knows the names already. Once JavaScript has answered enough LOOKUPs of existing names in a
 * directory, its answer to the next one leaves every name of that directory with the addon — its
 * inode (made now when new) and its attributes — and the addon answers the following LOOKUPs there
 * on its worker threads for as long as nothing in the directory changes.
 *
 * Invariants:
 * - names are left with a LOOKUP's answer only, in the same synchronous turn as the answer, so the
 *   inodes made for them cannot be dropped in between; the addon keeps them only while nothing of
 *   the directory changed since the LOOKUP was received, and holds each such inode (the inode table
 *   may drop it only when the addon answered no lookup of it that the kernel still holds);
 * - the cost is amortised: a directory is listed again only after as many JavaScript LOOKUPs in it
 *   as a quarter of its size (at least MIN_LOOKUPS) since its last listing, so a directory that
 *   keeps changing costs O(1) per lookup;
 * - paths the kernel must not cache (`uncached`) are never left; nor directories over MAX_ENTRIES.
 */
import type { FuseOps } from './adapter.js';
import { attrArgs, type FuseStat, type NativeAddon, type Req } from './lowlevel-addon.js';
import { child, parentOf, type InodeTable } from './lowlevel-inodes.js';

/** JavaScript LOOKUPs of existing names in a directory before its names are left with the addon. */
const MIN_LOOKUPS = 8;
/** Directories listed for the addon at most this big. */
const MAX_ENTRIES = 100_000;
/** Directories whose lookups are counted (the counts start over past it). */
const MAX_DIRS = 4096;

export interface LookupOptions {
  /** Attribute and entry timeouts of the kernel's entries, seconds (names are left only when both are set). */
  attrTimeoutSec: number;
  entryTimeoutSec: number;
  /** Paths the kernel must not cache. */
  uncached: (path: string) => boolean;
  /** After the names of `dir` were left with an answer (native opens register its files again). */
  left?: (dir: string) => void;
}

/**
 * The LOOKUPs of one mount that leave names with the addon.
 *
 * @example
 *   const lookups = new NativeLookups(addon, ops, inodes, { attrTimeoutSec: 60, entryTimeoutSec: 60, uncached: () => false });
 *   lookups.answered(req, '/models/w.bin', () => addon.replyEntry(req, ...entry));
 */
export class NativeLookups {
  /** Per directory inode: JavaScript LOOKUPs since its last listing, and that listing's size. */
  private readonly dirs = new Map<number, { lookups: number; size: number }>();
  /** Whether any names were left with the addon (until then it holds no inode: nothing to ask it before a drop). */
  used = false;

  constructor(
    private readonly addon: NativeAddon,
    private readonly ops: FuseOps,
    private readonly inodes: InodeTable,
    private readonly o: LookupOptions,
  ) {}

  /** A LOOKUP found `path`: `reply` answers it, now or once the directory's names are left with it. */
  answered(req: Req, path: string, reply: () => void): void {
    const { attrTimeoutSec: at, entryTimeoutSec: et } = this.o;
    const dir = parentOf(path);
    const dino = this.inodes.peek(dir);
    if (dino === undefined || at <= 0 || et <= 0 || !this.addon.nameStage) return reply();
    let d = this.dirs.get(dino);
    if (!d) {
      if (this.dirs.size >= MAX_DIRS) this.dirs.clear();
      this.dirs.set(dino, (d = { lookups: 0, size: 0 }));
    }
    if (++d.lookups < Math.max(MIN_LOOKUPS, d.size / 4)) return reply();
    d.lookups = 0;
    const seen = d;
    this.ops.readdir(dir, (code: number, names?: string[], stats?: FuseStat[]) => {
      if (code < 0 || !names || !stats) return reply();
      seen.size = names.length;
      if (names.length <= MAX_ENTRIES) this.leave(req, dir, dino, names, stats);
      reply();
      if (names.length <= MAX_ENTRIES) this.o.left?.(dir);
    });
  }

  /** Leaves the names of `dir` (inode `dino`) with `req`'s answer, each with its inode and attributes. */
  private leave(req: Req, dir: string, dino: number, names: string[], stats: FuseStat[]): void {
    const { attrTimeoutSec: at, entryTimeoutSec: et, uncached } = this.o;
    this.used = true;
    for (let i = 0; i < names.length; i++) {
      const name = names[i]!;
      if (name === '.' || name === '..') continue;
      const p = child(dir, name);
      if (uncached(p)) continue;
      const st = stats[i]!;
      const ino = this.inodes.ensure(p, st.link);
      this.inodes.setType(ino, st.mode); // the type the addon will tell the kernel
      this.addon.attrStage(req, ...attrArgs(ino, st), at);
      this.addon.nameStage!(req, dino, name, ino, et);
    }
  }
}
