/**
 * The kernel's inodes of a native mount: number <-> path, with lookup counts, and FUSE path
 * helpers.
 *
 * Invariants: inode numbers are never reused; an inode lives from its first lookup until the
 * kernel forgets it (lookup count 0); the root is inode 1 and never forgotten; a rename moves the
 * inodes of the renamed path and everything under it; unlink/rmdir detach the name.
 */
import { ROOT } from './lowlevel-addon.js';

interface Inode {
  /** Current path, or null once the name is gone (unlinked, replaced). */
  path: string | null;
  nlookup: number;
  /** File-type bits last told to the kernel (0: not yet). */
  type: number;
}

/**
 * The kernel's inodes: number <-> path, with lookup counts. Known paths are also indexed by their
 * parent, so a rename, unlink or refresh costs the size of the subtree it touches, not the number
 * of inodes the kernel holds.
 */
export class InodeTable {
  private readonly byIno = new Map<number, Inode>([[ROOT, { path: '/', nlookup: 1, type: 0o040000 }]]);
  private readonly byPath = new Map<string, number>([['/', ROOT]]);
  /**
   * The paths under each directory path that lead to a known path (known paths, and directories
   * without an inode that have known paths under them).
   */
  private readonly kids = new Map<string, Set<string>>();
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
      this.setPath(path, ino);
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
    this.byIno.delete(ino);
    if (e.path !== null && this.byPath.get(e.path) === ino) this.deletePath(e.path);
  }

  private setPath(path: string, ino: number): void {
    this.byPath.set(path, ino);
    this.link(path);
  }

  private deletePath(path: string): void {
    this.byPath.delete(path);
    this.prune(path);
  }

  /** Enters `path` in its parent's set, and the parent in its own, up to the first one already entered. */
  private link(path: string): void {
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

  /** The name is gone: the inode (and those under it) keep living until forgotten, nameless. */
  detach(path: string): void {
    for (const [p, ino] of this.under(path)) {
      this.deletePath(p);
      const e = this.byIno.get(ino);
      if (e) e.path = null;
    }
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
      for (const [p, ino] of list) {
        const np = dst + p.slice(src.length);
        this.setPath(np, ino);
        const e = this.byIno.get(ino);
        if (e) e.path = np;
      }
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
