/**
 * Directory handles of a native mount: the listing taken at offset 0 (first read, or rewinddir)
 * and its entries sent by offset, with their inodes (readdirplus: each entry sent is a lookup).
 *
 * Invariants: an entry sent with readdirplus holds one kernel reference to its inode; an inode
 * made for an entry that did not fit in the reply is dropped again; a continuation at offset N
 * costs the entries it sends (the listing is an array, indexed by the offset).
 */
import { Errno } from '../errors.js';
import type { FuseOps } from './adapter.js';
import { dirNums, DIR_STRIDE, ROOT, type FuseStat, type NativeAddon, type Req } from './lowlevel-addon.js';
import { child, parentOf, type InodeTable } from './lowlevel-inodes.js';

/**
 * An open directory: its listing as replyDir's numbers (DIR_STRIDE per entry; the inode number is
 * filled in when the entry is sent). Not FuseStat objects: a listing lives across several
 * READDIRPLUS requests, so its objects outlived the young generation, and at 1,000,000 files their
 * garbage grew the old generation (and the daemon's peak RSS) by hundreds of MB.
 */
interface DirHandle {
  path: string;
  names: string[];
  /** The listing's numbers: the start of `buf`. */
  nums: Float64Array;
  buf: Float64Array;
  /** Inode ids (Stat.linkId) of hard-linked entries, by index. */
  links: Map<number, string> | undefined;
}

export interface DirOptions {
  uid: number;
  gid: number;
  /** Attribute and entry timeouts of readdirplus entries, seconds. */
  attrTimeoutSec: number;
  entryTimeoutSec: number;
}

/**
 * The open directories of one mount.
 *
 * @example
 *   const dirs = new DirHandles(addon, ops, inodes, { uid: 0, gid: 0, attrTimeoutSec: 1, entryTimeoutSec: 1 });
 *   const fh = dirs.open('/d');
 *   dirs.read(req, ino, 4096, 0, fh, true, (code) => addon.replyErr(req, -code));
 *   dirs.release(fh);
 */
export class DirHandles {
  private readonly dirs = new Map<number, DirHandle>();
  private next = 1;
  /**
   * The biggest buffer of a released handle, for the next listing: a listing's buffer lives outside
   * V8's heap, which collects it late (~50 MB of them were waiting at the end of `ls -R` of
   * 1,000,000 files, one 80 KB buffer per directory of 1,000).
   */
  private spare: Float64Array | undefined;

  constructor(
    private readonly addon: NativeAddon,
    private readonly ops: FuseOps,
    private readonly inodes: InodeTable,
    private readonly o: DirOptions,
  ) {}

  open(path: string): number {
    const fh = this.next++;
    const none = new Float64Array(0);
    this.dirs.set(fh, { path, names: [], nums: none, buf: none, links: undefined });
    return fh;
  }

  release(fh: number): void {
    const d = this.dirs.get(fh);
    if (d && d.buf.length > (this.spare?.length ?? 0)) this.spare = d.buf;
    this.dirs.delete(fh);
  }

  /** A buffer of at least `n` numbers: the handle's own, the spare, or a new one. */
  private buffer(d: DirHandle, n: number): Float64Array {
    if (d.buf.length >= n) return d.buf;
    const spare = this.spare;
    if (spare && spare.length >= n) {
      this.spare = undefined;
      return spare;
    }
    return new Float64Array(n);
  }

  /** READDIR / READDIRPLUS of handle `fh` (inode `ino`) at `off`; `fail` answers an adapter error. */
  read(req: Req, ino: number, size: number, off: number, fh: number, plus: boolean, fail: (code: number) => void): void {
    const d = this.dirs.get(fh);
    if (!d) return this.addon.replyErr(req, Errno.EBADF);
    if (off !== 0) return this.send(req, d, ino, size, off, plus);
    // From the start (first call, or rewinddir): take a fresh listing.
    this.ops.readdir(d.path, (code: number, names?: string[], stats?: FuseStat[]) => {
      if (code < 0) return fail(code);
      d.names = names!;
      d.buf = this.buffer(d, stats!.length * DIR_STRIDE);
      d.nums = d.buf.subarray(0, stats!.length * DIR_STRIDE);
      d.links = undefined;
      for (let i = 0; i < stats!.length; i++) {
        const st = stats![i]!;
        d.nums.set(dirNums(0, st), i * DIR_STRIDE);
        if (st.link !== undefined) (d.links ??= new Map()).set(i, st.link);
      }
      this.send(req, d, ino, size, 0, plus);
    });
  }

  private send(req: Req, d: DirHandle, ino: number, size: number, off: number, plus: boolean): void {
    const inodes = this.inodes;
    // Offer what fits: an entry takes 24 bytes (readdir) or 152 (readdirplus) and its name, to 8.
    // (An estimate of 136 made ~20% more inodes than were sent, dropped at once: numbers spent and
    // deleted slots that made the map of inodes double its table past ~500,000.)
    let end = off;
    for (let used = 0; end < d.names.length; end++) {
      used += ((plus ? 152 : 24) + Buffer.byteLength(d.names[end]!) + 7) & ~7;
      if (used > size) break;
    }
    const names = d.names.slice(off, end);
    const nums = d.nums.subarray(off * DIR_STRIDE, (off + names.length) * DIR_STRIDE);
    const made: number[] = [];
    for (let i = 0; i < names.length; i++) {
      const name = names[i];
      let eino: number;
      if (name === '.') eino = ino;
      else if (name === '..') eino = inodes.peek(parentOf(d.path)) ?? ROOT;
      else {
        const p = child(d.path, name!);
        const known = inodes.peek(p);
        eino = known ?? inodes.ensure(p, d.links?.get(off + i));
        if (known === undefined) made.push(eino);
      }
      nums[i * DIR_STRIDE] = eino;
    }
    const { uid, gid, attrTimeoutSec: at, entryTimeoutSec: et } = this.o;
    const packed = this.addon.replyDir(req, plus, size, off, names, nums, uid, gid, at, et);
    if (plus) {
      for (let i = 0; i < packed; i++) {
        if (names[i] === '.' || names[i] === '..') continue;
        inodes.ref(nums[i * DIR_STRIDE]!);
        inodes.setType(nums[i * DIR_STRIDE]!, nums[i * DIR_STRIDE + 1]!);
      }
    }
    for (const m of made) inodes.dropIfUnused(m);
  }
}
