/**
 * The kernel's inodes of a native mount: number <-> paths, with lookup counts, and FUSE path
 * helpers.
 *
 * Invariants: inode numbers are never reused; an inode lives from its first lookup until the
 * kernel forgets it (lookup count 0); the root is inode 1 and never forgotten; a rename moves the
 * inodes of the renamed path and everything under it; unlink/rmdir detach the name. A hard-linked
 * file is one inode with several paths: the session's inode id (`link`, Stat.linkId) maps every
 * name of the file to the inode the first one got, and `link` adds the new name to it.
 *
 * Layout (the kernel may hold an inode for every file of a volume: with readdirplus, every entry
 * listed is one; ~135 bytes each here, ~360 with a path string and a Set of paths per inode): the
 * known paths are a tree of names, one `Node` per name, each holding its parent and its name (no
 * path strings), so a path is resolved by walking its components and built on demand from the
 * parents; a rename moves one node, not its subtree. A node is also the record of its inode (the
 * lookup count, type, inode id); a hard-linked file's other names are nodes of the same number,
 * listed in `extra` (rare). A name the kernel forgot stays in the tree as a bare directory
 * (number 0) while known names sit under it. Numbers find their records through pages of 256
 * (`Records`), 8 bytes an inode.
 */
import { ROOT } from './lowlevel-addon.js';

/**
 * A name as a string of its own: V8 keeps a slice of 13 or more characters as a view of the whole
 * string it came from (a path), which would keep that alive as long as the name.
 */
function own(name: string): string {
  return name.length >= 13 ? name.split('').join('') : name;
}

/** One name in the tree of known paths; the record of its inode when `byIno` points to it. */
class Node {
  /** Null for the root and for the record of an inode whose every name is gone. */
  parent: Node | null;
  name: string;
  /** 0: a directory the kernel holds no inode for, with known names under it. */
  ino: number;
  kids: Map<string, Node> | undefined = undefined;
  /** The kernel's lookup count × 16 + the file type last told to it (mode >> 12; 0: not yet), one small integer. */
  refs = 0;
  constructor(parent: Node | null, name: string, ino: number) {
    this.parent = parent;
    // Names come sliced from paths: keep a copy, not a view that holds the whole path.
    this.name = own(name);
    this.ino = ino;
  }
}

/** Numbers per page of `Records`. */
const PAGE = 256;

/**
 * Inode number -> record, in pages of PAGE numbers: 8 bytes an inode instead of a Map's 28-56
 * (and no table to double). Numbers are handed out in order, so the inodes of one listing share
 * pages; a page goes with its last inode.
 */
class Records {
  private readonly pages = new Map<number, { nodes: (Node | undefined)[]; live: number }>();
  size = 0;

  get(ino: number): Node | undefined {
    return this.pages.get(Math.floor(ino / PAGE))?.nodes[ino % PAGE];
  }

  has(ino: number): boolean {
    return this.get(ino) !== undefined;
  }

  set(ino: number, n: Node): void {
    const k = Math.floor(ino / PAGE);
    let pg = this.pages.get(k);
    if (!pg) this.pages.set(k, (pg = { nodes: new Array<Node | undefined>(PAGE).fill(undefined), live: 0 }));
    if (pg.nodes[ino % PAGE] === undefined) {
      pg.live++;
      this.size++;
    }
    pg.nodes[ino % PAGE] = n;
  }

  delete(ino: number): void {
    const k = Math.floor(ino / PAGE);
    const pg = this.pages.get(k);
    if (pg?.nodes[ino % PAGE] === undefined) return;
    pg.nodes[ino % PAGE] = undefined;
    this.size--;
    if (--pg.live === 0) this.pages.delete(k);
  }
}

/**
 * The kernel's inodes: number <-> path, with lookup counts. A lookup, rename or unlink walks the
 * components of its path; a rename moves one node, an unlink or refresh costs the subtree it
 * touches, never the number of inodes the kernel holds.
 *
 * @example
 *   const t = new InodeTable();
 *   const ino = t.ensure('/d/f');
 *   t.ref(ino);
 *   t.rename('/d', '/e'); // t.path(ino) === '/e/f'
 */
export class InodeTable {
  private readonly root = new Node(null, '', ROOT);
  /** Inode number -> its record (one of its names, or a nameless node). */
  private readonly byIno = new Records();
  /** Inode ids of hard-linked files -> their inode, and back (Stat.linkId; rare, so not in every node). */
  private readonly byLink = new Map<string, number>();
  private readonly links = new Map<number, string>();
  /** The other names of an inode with more than one (hard links). */
  private readonly extra = new Map<number, Set<Node>>();
  private next = ROOT + 1;

  /**
   * @param mayDrop whether an inode whose lookup count reached 0 may go (false: the addon still
   * holds lookups of it it answered itself: native/nattr.h; a FORGET of 0 comes when they are gone).
   */
  constructor(private readonly mayDrop: (ino: number) => boolean = () => true) {
    this.root.refs = 16 + (0o040000 >> 12);
    this.byIno.set(ROOT, this.root);
  }

  /** A current path of `ino` (any name of a hard-linked file), or null once none is left. */
  path(ino: number): string | null {
    const n = this.byIno.get(ino);
    return n && this.attached(n) ? pathOf(n) : null;
  }

  /**
   * The inode of `path` (made with lookup count 0 when new): for a name of a hard-linked file
   * (`link`, its Stat.linkId), the inode of the file's other names when the kernel knows one.
   */
  ensure(path: string, link?: string): number {
    const n = this.find(path, true)!;
    if (n.ino === 0) {
      const linked = link === undefined ? undefined : this.byLink.get(link);
      if (linked !== undefined) this.addName(linked, n);
      else {
        n.ino = this.next++;
        this.byIno.set(n.ino, n);
      }
    }
    if (link !== undefined && !this.links.has(n.ino) && !this.byLink.has(link)) {
      this.links.set(n.ino, link);
      this.byLink.set(link, n.ino);
    }
    return n.ino;
  }

  /** `path` is a new name of `ino` (link(2)). */
  alias(ino: number, path: string): void {
    if (!this.byIno.has(ino) || this.peek(path) !== undefined) return;
    this.addName(ino, this.find(path, true)!);
  }

  /** The session's inode id the kernel's inode `ino` stands for (a hard-linked file), if any. */
  linkOf(ino: number): string | undefined {
    return this.links.get(ino);
  }

  peek(path: string): number | undefined {
    return this.find(path, false)?.ino || undefined;
  }

  /** Records the file type (mode & S_IFMT) the kernel was told for `ino`. */
  setType(ino: number, mode: number): void {
    const n = this.byIno.get(ino);
    if (n) n.refs = n.refs - (n.refs % 16) + ((mode & 0o170000) >> 12);
  }

  type(ino: number): number {
    return ((this.byIno.get(ino)?.refs ?? 0) % 16) << 12;
  }

  /** Inodes of `path` and of every known path under it, parents first. */
  subtree(path: string): number[] {
    const out: number[] = [];
    const n = this.find(path, false);
    if (n) for (const x of walk(n)) if (x.ino) out.push(x.ino);
    return out;
  }

  /** One more kernel reference (a lookup, create, mkdir... answered with this inode). */
  ref(ino: number, n = 1): void {
    const r = this.byIno.get(ino);
    if (r) r.refs += 16 * n;
  }

  /** The kernel dropped `n` references; the inode goes at 0. */
  forget(ino: number, n: number): void {
    const r = this.byIno.get(ino);
    if (!r || ino === ROOT) return;
    r.refs -= 16 * n;
    if (r.refs < 16) this.drop(ino);
  }

  /** Drops an inode the kernel holds no reference to (an unsent readdirplus entry). */
  dropIfUnused(ino: number): void {
    const r = this.byIno.get(ino);
    if (r && r.refs < 16 && ino !== ROOT) this.drop(ino);
  }

  /** The name is gone: the inode (and those under it) keep living until forgotten, nameless (or under their other names). */
  detach(path: string): void {
    const n = this.find(path, false);
    if (!n || n === this.root) return;
    this.unhook(n);
    const nodes = [...walk(n)];
    // Names of linked files inside go first, so that no record moves to a name also going.
    for (const x of nodes) if (x.ino && this.byIno.get(x.ino) !== x) this.dropName(x);
    for (const x of nodes) {
      x.parent = null;
      x.kids = undefined;
      if (x.ino && this.byIno.get(x.ino) === x) this.orphan(x);
    }
  }

  /** Follows a rename of `from` (and everything under it) to `to`; whatever was at `to` is detached. */
  rename(from: string, to: string): void {
    if (from === to) return;
    const moved = this.find(from, false);
    this.detach(to);
    if (!moved || moved === this.root) return;
    this.unhook(moved);
    this.hook(moved, to);
  }

  /** Follows a RENAME_EXCHANGE: the inodes of `a` and everything under it trade places with `b`'s. */
  exchange(a: string, b: string): void {
    const na = this.find(a, false);
    const nb = this.find(b, false);
    if (na) this.unhook(na);
    if (nb) this.unhook(nb);
    if (na) this.hook(na, b);
    if (nb) this.hook(nb, a);
  }

  /** Every live (path, inode) pair. */
  *entries(): IterableIterator<[string, number]> {
    for (const n of walk(this.root)) if (n.ino) yield [pathOf(n), n.ino];
  }

  get size(): number {
    return this.byIno.size;
  }

  private attached(n: Node): boolean {
    return n.parent !== null || n === this.root;
  }

  /** The node of `path`; with `make`, made (with the bare directories above it) when missing. */
  private find(path: string, make: boolean): Node | undefined {
    let n = this.root;
    if (path === '/') return n;
    for (let i = 1; i <= path.length;) {
      let j = path.indexOf('/', i);
      if (j < 0) j = path.length;
      const name = path.slice(i, j);
      let k = n.kids?.get(name);
      if (!k) {
        if (!make) return undefined;
        k = new Node(n, name, 0);
        (n.kids ??= new Map()).set(k.name, k);
      }
      n = k;
      i = j + 1;
    }
    return n;
  }

  /** Takes `n` (and its subtree) out of its parent, dropping bare directories left empty. */
  private unhook(n: Node): void {
    let p = n.parent;
    n.parent = null;
    if (!p) return;
    let name = n.name;
    while (p) {
      p.kids?.delete(name);
      if (p.kids?.size === 0) p.kids = undefined;
      if (p.ino !== 0 || p.kids || p === this.root) return;
      const up: Node | null = p.parent;
      p.parent = null;
      name = p.name;
      p = up;
    }
  }

  /** Puts `n` (taken out of the tree) at `path`, whose node must not exist. */
  private hook(n: Node, path: string): void {
    const i = path.lastIndexOf('/');
    const parent = this.find(i <= 0 ? '/' : path.slice(0, i), true)!;
    const name = path.slice(i + 1);
    n.name = own(name);
    n.parent = parent;
    (parent.kids ??= new Map()).set(n.name, n);
  }

  /** Node `n` (no inode yet) becomes one more name of inode `ino`. */
  private addName(ino: number, n: Node): void {
    n.ino = ino;
    const r = this.byIno.get(ino)!;
    if (!this.attached(r)) {
      // Every other name is gone: this one becomes the record.
      n.refs = r.refs;
      this.byIno.set(ino, n);
      return;
    }
    let set = this.extra.get(ino);
    if (!set) this.extra.set(ino, (set = new Set()));
    set.add(n);
  }

  /** An extra name (not the record) of a linked file is gone. */
  private dropName(n: Node): void {
    const set = this.extra.get(n.ino);
    if (set?.delete(n) && set.size === 0) this.extra.delete(n.ino);
  }

  /** The record `r` lost its name (already out of the tree): another name takes over, or the inode lives on nameless. */
  private orphan(r: Node): void {
    const set = this.extra.get(r.ino);
    if (!set) return;
    const [heir] = set;
    set.delete(heir);
    if (set.size === 0) this.extra.delete(r.ino);
    heir.refs = r.refs;
    this.byIno.set(r.ino, heir);
  }

  /** The inode goes (forgotten): its names leave the tree, except those with known names under them (bare directories). */
  private drop(ino: number): void {
    if (!this.mayDrop(ino)) return;
    const r = this.byIno.get(ino)!;
    this.byIno.delete(ino);
    const link = this.links.get(ino);
    if (link !== undefined) {
      this.links.delete(ino);
      if (this.byLink.get(link) === ino) this.byLink.delete(link);
    }
    const names = [r, ...(this.extra.get(ino) ?? [])];
    this.extra.delete(ino);
    for (const n of names) {
      n.ino = 0;
      n.refs = 0;
      if (!n.kids && this.attached(n)) this.unhook(n);
    }
  }
}

/** The path of a node in the tree. */
function pathOf(n: Node): string {
  if (n.parent === null) return '/';
  let p = `/${n.name}`;
  for (let x = n.parent; x.parent !== null; x = x.parent) p = `/${x.name}${p}`;
  return p;
}

/** `n` and every node under it, parents first. */
function* walk(n: Node): Generator<Node> {
  const stack = [n];
  while (stack.length) {
    const x = stack.pop()!;
    yield x;
    if (x.kids) for (const k of x.kids.values()) stack.push(k);
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
