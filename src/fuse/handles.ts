/**
 * The open-file table of a mount: the one record of which files are open through it.
 *
 * A FUSE handle (the `fh` the kernel passes back on read/write/release) maps to the path the file
 * has *now* (rename of an open file updates the entry), its open flags, its opener and its read
 * state (`cursor`). The daemon refuses reload and unmount from it (`busy`, the one VOLUME_BUSY of
 * open files) and reports it in `status`; the session keeps no list of its own (only a mount has
 * open files; the Volume API has none).
 *
 * Invariants: handle numbers are positive 32-bit integers, never reused while open; every entry
 * made by `add` is removed by exactly one `remove`; the control file is never in the table.
 */
import type { ReadCursor } from '../chunks/index.js';
import { CairnError } from '../errors.js';

export interface HandleEntry {
  fh: number;
  /** Current FUSE path of the file (`/a/b`). */
  path: string;
  /** open(2) flags. */
  flags: number;
  /** Opener, when known. */
  pid?: number;
  /** Written since the last flush/fsync. */
  dirty?: boolean;
  /**
   * Read state of this handle (the chunk layer's read cursor: sequential detection and the
   * read-ahead window follow one reader, not one path), made at open; reads pass it along.
   */
  cursor?: ReadCursor;
}

/** O_ACCMODE bits of open(2) flags. */
export const O_ACCMODE = 0o3;
export const O_WRONLY = 0o1;
export const O_RDWR = 0o2;
export const O_CREAT = 0o100;
export const O_TRUNC = 0o1000;
export const O_APPEND = 0o2000;

/** True when open(2) flags ask for write access (or truncation). */
export function wantsWrite(flags: number): boolean {
  const acc = flags & O_ACCMODE;
  return acc === O_WRONLY || acc === O_RDWR || (flags & O_TRUNC) !== 0;
}

/** Bound of `HandleTable.settle`: a RELEASE in flight arrives within milliseconds. */
const SETTLE_MS = 1000;

/** Whether process `pid` exists (unknown: false). */
function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Handle table of one mount. */
export class HandleTable {
  private readonly entries = new Map<number, HandleEntry>();
  private next = 1;
  /** Handles opened outside this table, read when asked (the native binding's read-only opens, native/nopen.c). */
  private external?: () => HandleEntry[];

  /**
   * Counts the handles `list` returns (opened and released without this table: read-only opens
   * answered by the native binding) as open files too: size, list, busy, settle and status see them.
   * @example table.setExternal(() => [{ fh: 2 ** 32 + 1, path: '/a.bin', flags: 0, pid: 4242 }]);
   */
  setExternal(list: (() => HandleEntry[]) | undefined): void {
    this.external = list;
  }

  /**
   * Records an open file and returns its FUSE handle.
   * @example const fh = table.add('/a.bin', O_RDONLY, 4242);
   */
  add(path: string, flags: number, pid?: number): number {
    while (this.entries.has(this.next) || this.next === 0) this.next = (this.next + 1) >>> 0;
    const fh = this.next;
    this.next = (this.next + 1) >>> 0;
    this.entries.set(fh, { fh, path, flags, ...(pid !== undefined ? { pid } : {}) });
    return fh;
  }

  get(fh: number): HandleEntry | undefined {
    return this.entries.get(fh);
  }

  /** Removes and returns an entry (undefined when unknown). */
  remove(fh: number): HandleEntry | undefined {
    const e = this.entries.get(fh);
    if (e) this.entries.delete(fh);
    return e;
  }

  /** Follows a rename: entries at `from`, or under it when it is a directory, move to `to`. */
  rename(from: string, to: string): void {
    for (const e of this.entries.values()) {
      if (e.path === from) e.path = to;
      else if (e.path.startsWith(`${from}/`)) e.path = to + e.path.slice(from.length);
    }
  }

  /** Number of open handles. */
  get size(): number {
    return this.entries.size + (this.external?.().length ?? 0);
  }

  /** Every open handle, oldest first (then those opened natively). */
  list(): HandleEntry[] {
    const out = [...this.entries.values()];
    return this.external ? out.concat(this.external()) : out;
  }

  /**
   * The handles this table opened (not those opened natively: those are read-only, so this is
   * every handle that may be open for writing), without asking the addon for its list.
   */
  own(): HandleEntry[] {
    return [...this.entries.values()];
  }

  /** Distinct open paths. */
  paths(): string[] {
    return [...new Set(this.list().map((e) => e.path))];
  }

  /**
   * Waits, at most `ms`, while a handle is open whose opener has exited or is unknown: the kernel
   * sends RELEASE after close(2) has returned, so a reload or unmount asked for right after a
   * program closed its files (`cat f; cairn volume reload`) could otherwise see them still open.
   * Returns at once when nothing is open or every open handle's opener is alive (a file really
   * held open is refused without delay).
   *
   * @example await table.settle(); if (table.size) throw table.busy('reload', where, hint);
   */
  async settle(ms = SETTLE_MS): Promise<void> {
    const end = Date.now() + ms;
    while (this.size && Date.now() < end && this.list().some((e) => !alive(e.pid))) {
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** The open files as `status` and errors show them: path, and opener when known. */
  openFiles(): { path: string; pid?: number }[] {
    return this.list().map((e) => (e.pid === undefined ? { path: e.path } : { path: e.path, pid: e.pid }));
  }

  /**
   * The one VOLUME_BUSY of open files: `action` (reload, unmount) of the mount at `mountpoint` is
   * refused while any file is open; the error names them (`context.openFiles`).
   *
   * @example if (table.size) throw table.busy('reload', { volume: 'v', mountpoint: '/mnt/v' }, 'close these files, then reload again');
   */
  busy(action: string, where: { volume: string; mountpoint: string }, hint: string): CairnError {
    const open = this.openFiles();
    const named = open.map((o) => (o.pid ? `${o.path} (pid ${o.pid})` : o.path));
    const list = [...new Set(named)].join(', ');
    return new CairnError('VOLUME_BUSY', `cannot ${action} ${where.mountpoint}: ${open.length} file(s) open: ${list}`, {
      volume: where.volume,
      path: where.mountpoint,
      openFiles: open,
      hint,
    });
  }
}
