/**
 * The files a session has open (a mount's handles): reload is refused while any is open, with
 * VOLUME_BUSY naming them and their processes.
 *
 * Invariants: handles are unique for the session's life; an open file follows renames of its
 * path or of a directory above it; paths are kept normalised (no leading '/') and reported with one.
 */
import { CairnError } from '../errors.js';
import { type OpenFile, isWithin } from '../format/index.js';

export class OpenFiles {
  private readonly handles = new Map<number, OpenFile>();
  private next = 1;

  /** A new handle for the normalised path `p`. @example const h = files.open('a.txt', 42); */
  open(p: string, pid?: number): number {
    const h = this.next++;
    this.handles.set(h, pid === undefined ? { path: p } : { path: p, pid });
    return h;
  }

  release(handle: number): void {
    this.handles.delete(handle);
  }

  /** Open files, with their paths as the user sees them ('/…'). */
  list(): OpenFile[] {
    return [...this.handles.values()].map((h) => ({ ...h, path: `/${h.path}` }));
  }

  /** Moves the open files at or under `src` to `dst` (a rename). */
  follow(src: string, dst: string): void {
    for (const h of this.handles.values()) if (isWithin(h.path, src)) h.path = dst + h.path.slice(src.length);
  }

  /** VOLUME_BUSY naming the open files, or undefined when none is open. */
  busyError(volume: string): CairnError | undefined {
    const open = this.list();
    if (open.length === 0) return undefined;
    const list = open.map((o) => (o.pid ? `${o.path} (pid ${o.pid})` : o.path)).join(', ');
    return new CairnError('VOLUME_BUSY', `cannot reload while files are open: ${list}`, {
      volume,
      path: open[0]!.path,
      openFiles: open,
      hint: 'close these files, then reload again',
    });
  }
}
