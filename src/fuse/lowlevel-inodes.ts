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

  /** Follows a RENAME_EXCHANGE: the inodes of `a` and everything under it trade places with `b`'s. */
  exchange(a: string, b: string): void {
    const under = (root: string): [string, number][] =>
      [...this.byPath].filter(([p]) => p === root || p.startsWith(`${root}/`));
    const fromA = under(a);
    const fromB = under(b);
    for (const [p] of [...fromA, ...fromB]) this.byPath.delete(p);
    const place = (moved: [string, number][], from: string, to: string): void => {
      for (const [p, ino] of moved) {
        const np = to + p.slice(from.length);
        this.byPath.set(np, ino);
        const e = this.byIno.get(ino);
        if (e) e.path = np;
      }
    };
    place(fromA, a, b);
    place(fromB, b, a);
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
