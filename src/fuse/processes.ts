/**
 * Finding which processes hold files of a mount open: from the openers the binding recorded in
 * the open-file table, or by scanning /proc (fuse-native does not report openers).
 *
 * Invariants: never touches the mount itself (the daemon serving it would wait on itself);
 * best effort: processes that are gone or may not be inspected are left out.
 */
import { promises as fsp } from 'node:fs';
import type { HandleEntry } from './handles.js';

/**
 * The processes holding `entries` open, from the opener's id the binding recorded (a thread id:
 * mapped to its process through /proc/ID/status). Openers that are gone are left out.
 *
 * @example
 *   await processesOfHandles('/mnt/vol', table.list()); // [{ pid: 4242, command: 'python', path: '/mnt/vol/w.bin' }]
 */
export async function processesOfHandles(mountpoint: string, entries: HandleEntry[]): Promise<OpenByProcess[]> {
  const seen = new Map<string, OpenByProcess>();
  await Promise.all(
    entries.map(async (e) => {
      const status = await fsp.readFile(`/proc/${e.pid}/status`, 'utf8').catch(() => '');
      const tgid = Number(/^Tgid:\s*(\d+)/m.exec(status)?.[1] ?? 0);
      if (!tgid) return;
      const command = (await fsp.readFile(`/proc/${tgid}/comm`, 'utf8').catch(() => '')).trim();
      const full = mountpoint.replace(/\/$/, '') + e.path;
      seen.set(`${tgid} ${full}`, { pid: tgid, command, path: full });
    }),
  );
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
