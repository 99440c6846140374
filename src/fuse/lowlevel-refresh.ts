/**
 * Kernel cache invalidation of a native mount after the session's view changed under the kernel
 * (a reload). The invalidations run on the addon's notifier thread, never on a worker or on the
 * JavaScript thread (they can wait on inode locks held by a process waiting for one of our
 * answers).
 */
import type { FuseOps } from './adapter.js';
import type { FuseStat, NativeAddon } from './lowlevel-addon.js';
import { parentOf, type InodeTable } from './lowlevel-inodes.js';

export interface RefreshTarget {
  addon: NativeAddon;
  /** The addon's mount context. */
  ctx: unknown;
  ops: FuseOps;
  inodes: InodeTable;
  /** Paths answered as absent with a cacheable negative entry (emptied on a full refresh). */
  negatives: Set<string>;
  /** False once unmounting: nothing is sent to the kernel. */
  live: () => boolean;
  /**
   * Every changed regular file gets a new inode too (the writeback cache: the kernel then keeps
   * its own size and mtime of a cached inode whatever the daemon answers, ./writeback.ts).
   */
  renumberFiles?: boolean;
}

/**
 * Drops from the kernel's caches exactly what changed among `changed` (FUSE paths; undefined:
 * anything the kernel knows may have changed). A path now absent, of another type, a name of
 * another hard-linked file (inode id), or with `renumberFiles` any changed regular file, loses
 * its name and inode (a later lookup gets a new inode); another changed path loses its attributes
 * and pages; a new path loses a cached "absent" answer. Resolves once the kernel has done it.
 *
 * @example
 *   await refreshKernel({ addon, ctx, ops, inodes, negatives, live: () => true }, ['/a', '/b']);
 */
export async function refreshKernel(t: RefreshTarget, changed?: Iterable<string>): Promise<{ entries: number; inodes: number }> {
  const { inodes, negatives } = t;
  const stat = (p: string): Promise<FuseStat | null> =>
    new Promise((resolve) => t.ops.getattr(p, (code: number, st?: FuseStat) => resolve(code < 0 ? null : st!)));
  const paths = new Set<string>(changed ?? [...[...inodes.entries()].map(([p]) => p), ...negatives]);
  paths.delete('/');
  const parents: number[] = [];
  const names: string[] = [];
  const inos = new Set<number>();
  const entry = (p: string): void => {
    const parent = inodes.peek(parentOf(p));
    if (parent === undefined) return; // the kernel cannot have a name under an unknown directory
    parents.push(parent);
    names.push(p.slice(p.lastIndexOf('/') + 1));
  };
  for (const p of paths) {
    const ino = inodes.peek(p);
    const st = await stat(p);
    if (ino === undefined) {
      if (st && negatives.delete(p)) entry(p);
      else if (st && changed) entry(p);
      continue;
    }
    // A name now of another file (linked or unlinked by the reload: another inode id) is replaced too.
    const renumber = !!t.renumberFiles && !!st && (st.mode & 0o170000) === 0o100000;
    if (!st || (st.mode & 0o170000) !== inodes.type(ino) || st.link !== inodes.linkOf(ino) || renumber) {
      entry(p);
      for (const i of inodes.subtree(p)) inos.add(i);
      inodes.detach(p);
    } else {
      inos.add(ino);
    }
  }
  if (!changed) negatives.clear();
  if (!t.live() || (!parents.length && !inos.size)) return { entries: 0, inodes: 0 };
  await new Promise<void>((resolve) => t.addon.invalidate(t.ctx, parents, names, [...inos], () => resolve()));
  return { entries: parents.length, inodes: inos.size };
}
