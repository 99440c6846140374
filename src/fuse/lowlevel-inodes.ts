/**
 * The kernel's inodes of a native mount: number <-> paths, with lookup counts, and FUSE path
 * helpers.
 *
 * Invariants: inode numbers are never reused; an inode lives from its first lookup until the
 * kernel forgets it (lookup count 0); the root is inode 1 and never forgotten; a rename moves the
 * inodes of the renamed path and everything under it; unlink/rmdir detach the name. A hard-linked
 * file is one inode with several paths: the session's inode id (`link`, Stat.linkId) maps every
 * name of the file to the inode the first one got, and `link` adds the new name to it.
 */
import { ROOT } from './lowlevel-addon.js';

interface Inode {
  /** Current paths (several for a hard-linked file); none once every name is gone (unlinked, replaced). */
  paths: Set<string>;
  nlookup: number;
  /** File-type bits last told to the kernel (0: not yet). */
  type: number;
  /** The session's inode id of a hard-linked file (Stat.linkId). */
  link?: string;
}

/**
 * The kernel's inodes: number <-> path, with lookup counts. Known paths are also indexed by their
 * parent, so a rename, unlink or refresh costs the size of the subtree it touches, not the number
 * of inodes the kernel holds.
 */
export class InodeTable {
  private readonly byIno = new Map<number, Inode>([[ROOT, { paths: new Set(['/']), nlookup: 1, type: 0o040000 }]]);
  private readonly byPath = new Map<string, number>([['/', ROOT]]);
  /** Inode ids of hard-linked files -> their inode. */
  private readonly byLink = new Map<string, number>();
  /**
   * The paths under each directory path that lead to a known path (known paths, and directories
   * without an inode that have known paths under them).
   */
  private readonly kids = new Map<string, Set<string>>();
  private next = ROOT + 1;

  /** A current path of `ino` (any name of a hard-linked file), or null once none is left. */
  path(ino: number): string | null {
    const e = this.byIno.get(ino);
    if (!e) return null;
    for (const p of e.paths) return p;
    return null;
  }

  /**
   * The inode of `path` (made with lookup count 0 when new): for a name of a hard-linked file
   * (`link`, its Stat.linkId), the inode of the file's other names when the kernel knows one.
   */
  ensure(path: string, link?: string): number {
    let ino = this.byPath.get(path);
    if (ino === undefined && link !== undefined) {
      ino = this.byLink.get(link);
      if (ino !== undefined) this.setPath(path, ino);
    }
    if (ino === undefined) {
      ino = this.next++;
      this.byIno.set(ino, { paths: new Set(), nlookup: 0, type: 0 });
      this.setPath(path, ino);
    }
    const e = this.byIno.get(ino)!;
    if (link !== undefined && e.link === undefined && !this.byLink.has(link)) {
      e.link = link;
      this.byLink.set(link, ino);
    }
    return ino;
  }

  /** `path` is a new name of `ino` (link(2)). */
  alias(ino: number, path: string): void {
    if (this.byIno.has(ino) && !this.byPath.has(path)) this.setPath(path, ino);
  }

  /** The session's inode id the kernel's inode `ino` stands for (a hard-linked file), if any. */
  linkOf(ino: number): string | undefined {
    return this.byIno.get(ino)?.link;
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
    return this.under(path).map(([, ino]) => ino);
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
    for (const p of [...e.paths]) if (this.byPath.get(p) === ino) this.deletePath(p);
    this.byIno.delete(ino);
    if (e.link !== undefined && this.byLink.get(e.link) === ino) this.byLink.delete(e.link);
  }

  private setPath(path: string, ino: number): void {
    this.byPath.set(path, ino);
    this.byIno.get(ino)?.paths.add(path);
    this.index(path);
  }

  private deletePath(path: string): void {
    const ino = this.byPath.get(path);
    this.byPath.delete(path);
    if (ino !== undefined) this.byIno.get(ino)?.paths.delete(path);
    this.prune(path);
  }

  /** Enters `path` in its parent's set, and the parent in its own, up to the first one already entered. */
  private index(path: string): void {
    for (let p = path; p !== '/';) {
      const parent = parentOf(p);
      let set = this.kids.get(parent);
      if (!set) this.kids.set(parent, (set = new Set()));
      if (set.has(p)) return;
      set.add(p);
      p = parent;
    }
  }

  /** Removes `path` from the index when it has no inode and nothing under it, then its parent likewise. */
  private prune(path: string): void {
    for (let p = path; p !== '/' && !this.byPath.has(p) && !this.kids.has(p);) {
      const parent = parentOf(p);
      const set = this.kids.get(parent);
      if (!set?.delete(p) || set.size > 0) return;
      this.kids.delete(parent);
      p = parent;
    }
  }

  /** (path, inode) of `path` and every known path under it, parents first. */
  private under(path: string): [string, number][] {
    const out: [string, number][] = [];
    const own = this.byPath.get(path);
    if (own !== undefined) out.push([path, own]);
    // Known paths may sit under a directory without an inode: the walk goes through those too.
    const stack = [path];
    while (stack.length) {
      const set = this.kids.get(stack.pop()!);
      if (!set) continue;
      for (const p of set) {
        const ino = this.byPath.get(p);
        if (ino !== undefined) out.push([p, ino]);
        stack.push(p);
      }
    }
    return out;
  }

  /** The name is gone: the inode (and those under it) keep living until forgotten, nameless (or under their other names). */
  detach(path: string): void {
    for (const [p] of this.under(path)) this.deletePath(p);
  }

  /** Follows a rename of `from` (and everything under it) to `to`; whatever was at `to` is detached. */
  rename(from: string, to: string): void {
    const moved = this.under(from);
    this.detach(to);
    this.place(moved, from, to);
  }

  /** Follows a RENAME_EXCHANGE: the inodes of `a` and everything under it trade places with `b`'s. */
  exchange(a: string, b: string): void {
    const fromA = this.under(a);
    const fromB = this.under(b);
    this.place(fromA, a, b, fromB);
  }

  /** Moves `moved` (taken from under `from`) to under `to`; `back` (from under `to`) goes the other way. */
  private place(moved: [string, number][], from: string, to: string, back: [string, number][] = []): void {
    for (const [p] of [...moved, ...back]) this.deletePath(p);
    const put = (list: [string, number][], src: string, dst: string): void => {
      for (const [p, ino] of list) this.setPath(dst + p.slice(src.length), ino);
    };
    put(moved, from, to);
    put(back, to, from);
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
export function child(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`;
}

/** The parent path of a FUSE path ('/' for top-level names). */
export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}
