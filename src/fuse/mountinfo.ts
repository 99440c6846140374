/**
 * Finding Cairn mounts through `/proc/self/mountinfo`, and naming their control sockets.
 *
 * A Cairn mount is a FUSE mount (fstype `fuse` or `fuse.*`) whose source is `cairn:<volume>`.
 * Its control socket is the abstract unix socket `\0cairn-<major>:<minor>`, named after the
 * mount's device number, so that every process that can see the mount (in any mount namespace
 * that shares the network namespace) can find the daemon without a file on disk.
 *
 * Invariants: everything here is read-only and asynchronous (the daemon calls it on the same
 * event loop that serves the kernel); mount points are returned unescaped and absolute.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { CairnError } from '../errors.js';

/** One line of mountinfo. */
export interface MountEntry {
  id: number;
  parentId: number;
  /** `major:minor` of the mounted filesystem. */
  device: string;
  /** Root of the mount within its filesystem. */
  root: string;
  /** Absolute mount point, unescaped. */
  mountpoint: string;
  options: string[];
  fstype: string;
  source: string;
  superOptions: string[];
}

/** A Cairn mount visible in this mount namespace. */
export interface CairnMount {
  volume: string;
  mountpoint: string;
  device: string;
  readOnly: boolean;
  /** Abstract socket name (with the leading NUL) of the mount's daemon. */
  socket: string;
}

export const FSNAME_PREFIX = 'cairn:';
/**
 * The fstype of a read-only Cairn mount. Such a mount is not `ro` for the kernel (the adapter
 * answers EROFS to every write) so that its control file can still be opened to reload it.
 */
export const READ_ONLY_SUBTYPE = 'cairn-ro';
export const READ_ONLY_FSTYPE = `fuse.${READ_ONLY_SUBTYPE}`;

/** The `fsname` a daemon mounts a volume with. */
export function fsnameFor(volume: string): string {
  return `${FSNAME_PREFIX}${volume}`;
}

/** The abstract socket of the daemon serving the mount with device `major:minor`. */
export function socketNameFor(device: string): string {
  return `\0cairn-${device}`;
}

/**
 * The path the kernel will list for a mount at `p`: absolute, with symlinks resolved (as far as
 * the path exists). Call it before mounting: afterwards resolving would ask the mount itself.
 */
export async function canonicalPath(p: string): Promise<string> {
  const abs = path.resolve(p);
  try {
    return await fsp.realpath(abs);
  } catch (err) {
    const parent = path.dirname(abs);
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || parent === abs) return abs;
    return path.join(await canonicalPath(parent), path.basename(abs));
  }
}

/** Undoes mountinfo's octal escapes (`\040` for space, `\011`, `\012`, `\134`). */
export function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parses the text of a mountinfo file; malformed lines are skipped. */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const fields = line.split(' ');
    const sep = fields.indexOf('-', 6);
    if (fields.length < 10 || sep < 0 || fields.length < sep + 3) continue;
    out.push({
      id: Number(fields[0]),
      parentId: Number(fields[1]),
      device: fields[2],
      root: unescapeMountField(fields[3]),
      mountpoint: unescapeMountField(fields[4]),
      options: fields[5].split(','),
      fstype: fields[sep + 1],
      source: unescapeMountField(fields[sep + 2]),
      superOptions: (fields[sep + 3] ?? '').split(','),
    });
  }
  return out;
}

/** Every mount of this process's mount namespace, in mount order. */
export async function readMounts(file = '/proc/self/mountinfo'): Promise<MountEntry[]> {
  return parseMountinfo(await fsp.readFile(file, 'utf8'));
}

/** True when a mountinfo entry is a Cairn FUSE mount. */
export function isCairnEntry(e: MountEntry): boolean {
  return (e.fstype === 'fuse' || e.fstype.startsWith('fuse.')) && e.source.startsWith(FSNAME_PREFIX);
}

function toCairnMount(e: MountEntry): CairnMount {
  return {
    volume: e.source.slice(FSNAME_PREFIX.length),
    mountpoint: e.mountpoint,
    device: e.device,
    readOnly: e.options.includes('ro') || e.fstype === READ_ONLY_FSTYPE,
    socket: socketNameFor(e.device),
  };
}

/**
 * All Cairn mounts visible here, optionally only those of one volume. Where several mounts are
 * stacked on one directory only the topmost (the one a path lookup reaches) is listed.
 *
 * @example
 *   for (const m of await findMounts('weights')) console.log(m.mountpoint);
 */
export async function findMounts(volumeName?: string, entries?: MountEntry[]): Promise<CairnMount[]> {
  const all = entries ?? (await readMounts());
  const top = new Map<string, MountEntry>();
  for (const e of all) top.set(e.mountpoint, e); // later entries cover earlier ones
  return [...top.values()]
    .filter(isCairnEntry)
    .map(toCairnMount)
    .filter((m) => volumeName === undefined || m.volume === volumeName);
}

/** The mount a path lives on: the longest mount point that is a prefix of it (topmost wins). */
export function mountOf(absPath: string, entries: MountEntry[]): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const e of entries) {
    const mp = e.mountpoint;
    const inside = mp === '/' || absPath === mp || absPath.startsWith(`${mp}/`);
    if (inside && (!best || mp.length >= best.mountpoint.length)) best = e;
  }
  return best;
}

/**
 * The Cairn mount that `dir` (the mount point or any path inside it) belongs to. Throws NOT_FOUND
 * "DIR is not a cairn mount" when it is on another filesystem.
 *
 * @example
 *   const m = await cairnMountAt('/mnt/vol'); // { volume, device, socket, ... }
 */
export async function cairnMountAt(dir: string, entries?: MountEntry[]): Promise<CairnMount> {
  const all = entries ?? (await readMounts());
  const abs = path.resolve(dir);
  let e = mountOf(abs, all);
  if (!e || !isCairnEntry(e)) {
    // The caller may have used a symlinked path; resolve it (this does touch the mount).
    const real = await fsp.realpath(abs).catch(() => abs);
    if (real !== abs) e = mountOf(real, all);
  }
  if (!e || !isCairnEntry(e)) {
    throw new CairnError('NOT_FOUND', `${abs} is not a cairn mount`, {
      path: abs,
      hint: 'mount a volume there with `cairn mount VOLUME DIR`, or list mounts with `cairn status`',
    });
  }
  return toCairnMount(e);
}

/** The topmost Cairn mount of `volume` at exactly `mountpoint` (how a daemon finds its own device). */
export async function ownMount(mountpoint: string, volume: string): Promise<MountEntry | undefined> {
  const abs = path.resolve(mountpoint);
  const all = await readMounts();
  let found: MountEntry | undefined;
  for (const e of all) {
    if (e.mountpoint === abs && isCairnEntry(e) && e.source === fsnameFor(volume)) found = e;
  }
  return found;
}
