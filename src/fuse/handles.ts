/**
 * The FUSE file-handle table, and finding which processes hold files of a mount open.
 *
 * A FUSE handle (the `fh` the kernel passes back on read/write/release) maps to the session's
 * open-file handle and the path the file has *now*: rename of an open file updates the entry, so
 * the daemon always knows the current name of every open file.
 *
 * Invariants: handle numbers are positive 32-bit integers, never reused while open; every entry
 * made by `add` is removed by exactly one `remove`.
 */
import { promises as fsp } from 'node:fs';

export interface HandleEntry {
  fh: number;
  /** Current FUSE path of the file (`/a/b`). */
  path: string;
  /** open(2) flags. */
  flags: number;
  /** The session's open-file handle (from `FsSession.open`). */
  session: number;
  /** Opener, when known. */
  pid?: number;
  /** Written since the last flush/fsync. */
  dirty?: boolean;
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

/** Handle table of one mount. */
export class HandleTable {
  private readonly entries = new Map<number, HandleEntry>();
  private next = 1;

  /** Records an open file and returns its FUSE handle. */
  add(path: string, flags: number, session: number, pid?: number): number {
    while (this.entries.has(this.next) || this.next === 0) this.next = (this.next + 1) >>> 0;
    const fh = this.next;
    this.next = (this.next + 1) >>> 0;
    this.entries.set(fh, { fh, path, flags, session, ...(pid !== undefined ? { pid } : {}) });
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
    return this.entries.size;
  }

  /** Every open handle, oldest first. */
  list(): HandleEntry[] {
    return [...this.entries.values()];
  }

  /** Distinct open paths. */
  paths(): string[] {
    return [...new Set(this.list().map((e) => e.path))];
  }
}

/**
 * The processes holding `entries` open, from the opener's id the binding recorded (a thread id:
 * mapped to its process through /proc/ID/status). Openers that are gone are left out.
 *
 * @example
 *   await processesOfHandles('/mnt/vol', table.list()); // [{ pid: 4242, command: 'python', path: '/mnt/vol/w.bin' }]
 */
export async function processesOfHandles(mountpoint: string, entries: HandleEntry[]): Promise<OpenByProcess[]> {
  const seen = new Map<string, OpenByProcess>();
  await Promise.all(entries.map(async (e) => {
    const status = await fsp.readFile(`/proc/${e.pid}/status`, 'utf8').catch(() => '');
    const tgid = Number(/^Tgid:\s*(\d+)/m.exec(status)?.[1] ?? 0);
    if (!tgid) return;
    const command = (await fsp.readFile(`/proc/${tgid}/comm`, 'utf8').catch(() => '')).trim();
    const full = mountpoint.replace(/\/$/, '') + e.path;
    seen.set(`${tgid} ${full}`, { pid: tgid, command, path: full });
  }));
  return [...seen.values()].sort((a, b) => a.pid - b.pid || a.path.localeCompare(b.path));
}

export interface OpenByProcess {
  pid: number;
  /** Short command name (`/proc/PID/comm`). */
  command: string;
  /** Absolute path as the process sees it. */
  path: string;
}

/**
 * Processes that hold files under `mountpoint` open, found through `/proc/PID/fd` (fuse-native
 * does not pass the caller's pid to the adapter, so this is how an open file is tied to a pid).
 * Best effort: processes we may not inspect are skipped. Never touches the mount itself.
 *
 * @example
 *   await processesUsing('/mnt/vol'); // [{ pid: 4242, command: 'python', path: '/mnt/vol/w.bin' }]
 */
export async function processesUsing(mountpoint: string, exceptPid = process.pid): Promise<OpenByProcess[]> {
  const prefix = mountpoint.endsWith('/') ? mountpoint : `${mountpoint}/`;
  const out: OpenByProcess[] = [];
  let pids: string[];
  try {
    pids = (await fsp.readdir('/proc')).filter((n) => /^\d+$/.test(n));
  } catch {
    return out;
  }
  await Promise.all(
    pids.map(async (p) => {
      const pid = Number(p);
      if (pid === exceptPid) return;
      let fds: string[];
      try {
        fds = await fsp.readdir(`/proc/${p}/fd`);
      } catch {
        return;
      }
      const seen = new Set<string>();
      for (const fd of fds) {
        const target = await fsp.readlink(`/proc/${p}/fd/${fd}`).catch(() => '');
        const clean = target.replace(/ \(deleted\)$/, '');
        if (!clean.startsWith(prefix) || seen.has(clean)) continue;
        seen.add(clean);
        const command = (await fsp.readFile(`/proc/${p}/comm`, 'utf8').catch(() => '')).trim();
        out.push({ pid, command, path: clean });
      }
    }),
  );
  return out.sort((a, b) => a.pid - b.pid || a.path.localeCompare(b.path));
}
