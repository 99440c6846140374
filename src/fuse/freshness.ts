/**
 * Keeps the kernel from serving a file's old pages after a reload changed its content.
 *
 * The mount uses libfuse's `auto_cache`: the kernel keeps a file's cached pages across opens
 * while the size and mtime it is told stay the same, and fuse-native cannot invalidate them. A
 * reload that brings another writer's version of a file with the same size and mtime (a batch
 * upload of files whose mtimes were preserved or normalised, e.g. from a tarball) would then
 * read stale bytes. So a file that such a reload changed is reported `nudge` ms newer than its
 * entry for as long as its entry keeps that size and mtime: libfuse sees a new mtime and drops
 * the cache at the next open.
 *
 * Invariant: the reported mtime of a file changes whenever a reload changed its content after
 * the kernel was last told its attributes; otherwise it is the entry's mtime plus a constant.
 */

interface Shown {
  /** The entry's mtime and size when last reported. */
  mtimeMs: number;
  size: number;
  /** Added to the entry's mtime while it stays the same. */
  nudge: number;
  /** The mtime last reported. */
  reported: number;
  /** A reload changed the content since the kernel was last told these attributes. */
  changed: boolean;
}

/**
 * At most this many files remembered (oldest first forgotten: tens of MB at most). A forgotten
 * file is treated as never shown, so the rare case above could again show old pages for it; the
 * native binding's inode invalidation (design.md) is the complete answer.
 */
const MAX_SHOWN = 1 << 18;

export class Freshness {
  private readonly shown = new Map<string, Shown>();
  private stopped = false;

  /**
   * Not needed (the native binding invalidates the kernel's pages itself): remembers nothing from
   * now on and reports entries' own mtimes (at 262,144 files the map held ~58 MB).
   * @example if (binding.native) freshness.stop();
   */
  stop(): void {
    this.stopped = true;
    this.shown.clear();
  }

  /**
   * Notes the files (normalised paths) whose content a reload may have changed.
   * @example freshness.changed(reloadResult.paths ?? []);
   */
  changed(paths: Iterable<string>): void {
    for (const p of paths) {
      const s = this.shown.get(p);
      if (s) s.changed = true;
    }
  }

  /**
   * Forgets the oldest quarter in one pass. Deleting the first key one at a time was quadratic: a
   * Map keeps deleted slots until it rehashes, and each `keys().next()` walked over all of them
   * (118 µs per new file past the bound; `ls -R` of 1,000,000 files spent 65 s here).
   */
  private evict(): void {
    let n = MAX_SHOWN >> 2;
    for (const k of this.shown.keys()) {
      if (n-- <= 0) break;
      this.shown.delete(k);
    }
  }

  /**
   * The mtime to report for a regular file (normalised path) with these entry attributes.
   * @example const mtimeMs = freshness.mtimeOf(st.path, st.mtimeMs, st.size);
   */
  mtimeOf(path: string, mtimeMs: number, size: number): number {
    if (this.stopped) return mtimeMs;
    let s = this.shown.get(path);
    if (!s) {
      if (this.shown.size >= MAX_SHOWN) this.evict();
      s = { mtimeMs, size, nudge: 0, reported: mtimeMs, changed: false };
      this.shown.set(path, s);
      return mtimeMs;
    }
    if (s.mtimeMs !== mtimeMs) {
      s.mtimeMs = mtimeMs;
      s.nudge = 0;
    }
    // Changed, but what the kernel would be told is what it was told: tell it something new.
    if (s.changed && s.size === size && mtimeMs + s.nudge === s.reported) s.nudge++;
    s.changed = false;
    s.size = size;
    s.reported = mtimeMs + s.nudge;
    return s.reported;
  }
}
