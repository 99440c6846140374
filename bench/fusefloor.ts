/**
 * The FUSE floor: libfuse's own low-level passthrough file system (`passthrough_ll.c`, shipped
 * with libfuse3-dev's examples), built here and mounted over a directory on the same disk. It
 * answers every request in C, with the kernel caching entries and attributes as long as it
 * likes (`cache=always`), no writeback cache (as a default Cairn mount): what any FUSE file system
 * pays on this machine for the round trips a workload makes. A workload's Cairn / floor ratio is
 * Cairn's own cost; floor / local is the transport's.
 *
 * Invariants: `stop` unmounts and ends only the process `start` started; a machine without the
 * example source or a compiler gets `FuseFloor.build` → a reason, never a throw.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { terminate } from '../src/util/child.js';

const run = promisify(execFile);

/** Where Debian's libfuse3-dev puts the example (and the header it includes). */
export const FLOOR_SOURCE = '/usr/share/doc/libfuse3-dev/examples/passthrough_ll.c';

/**
 * Compiles passthrough_ll into `dir`: the binary's path, or why it cannot be built (no example
 * source, no compiler, no libfuse3 headers).
 *
 * @example const bin = await buildFloor(tmp); // then: bin -o source=DIR -o cache=always MOUNTPOINT
 */
export async function buildFloor(dir: string): Promise<string | { error: string }> {
  if (!existsSync(FLOOR_SOURCE)) return { error: `no ${FLOOR_SOURCE} (libfuse3-dev's examples)` };
  const binary = path.join(dir, 'passthrough_ll');
  try {
    const { stdout } = await run('pkg-config', ['--cflags', '--libs', 'fuse3']);
    const flags = stdout.trim().split(/\s+/).filter(Boolean);
    await run('cc', ['-O2', '-o', binary, FLOOR_SOURCE, `-I${path.dirname(FLOOR_SOURCE)}`, ...flags]);
  } catch (err) {
    return { error: `cannot build passthrough_ll: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}` };
  }
  return binary;
}

/**
 * The command that mounts the floor built at `binary` over `source` at `mountpoint` (`foreground`:
 * -f, else it forks into the background once mounted): the kernel caches entries, attributes and
 * pages as long as it likes. passthrough_ll holds a descriptor per inode the kernel knows (until
 * the kernel forgets it), so it starts with the most descriptors the host allows: an 18,000-entry
 * tar -x after 10,000 creates passed a limit of 20,000 ("Too many open files").
 *
 * @example const [cmd, args] = floorCommand(bin, '/data', '/mnt/floor', true); spawn(cmd, args);
 */
export function floorCommand(binary: string, source: string, mountpoint: string, foreground: boolean): [string, string[]] {
  const raise = 'ulimit -n "$(cat /proc/sys/fs/nr_open)" 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"';
  const args = [...(foreground ? ['-f'] : []), '-o', `source=${source}`, '-o', 'cache=always', mountpoint];
  return ['bash', ['-c', raise, 'floor', binary, ...args]];
}

export class FuseFloor {
  private child?: ChildProcess;

  private constructor(
    private readonly binary: string,
    /** The directory the floor serves (its files live here, on local disk). */
    readonly source: string,
    /** Where it is mounted. */
    readonly mountpoint: string,
  ) {}

  /**
   * The floor, built in `dir` (with its source and mount point directories), or why there is none.
   *
   * @example const f = await FuseFloor.build(tmp); if (f instanceof FuseFloor) await f.start();
   */
  static async build(dir: string): Promise<FuseFloor | { error: string }> {
    const binary = await buildFloor(dir);
    if (typeof binary !== 'string') return binary;
    const floor = new FuseFloor(binary, path.join(dir, 'floor-src'), path.join(dir, 'floor'));
    await Promise.all([floor.source, floor.mountpoint].map((d) => fsp.mkdir(d, { recursive: true })));
    return floor;
  }

  /** Mounts it (foreground, in a child process) and waits until the mount answers. */
  async start(): Promise<void> {
    let err = '';
    const [cmd, args] = floorCommand(this.binary, this.source, this.mountpoint, true);
    const child = spawn(cmd, args, {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.child = child;
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
    const mounted = (): Promise<boolean> =>
      run('mountpoint', ['-q', this.mountpoint]).then(
        () => true,
        () => false,
      );
    for (let i = 0; i < 100 && child.exitCode === null; i++) {
      if (await mounted()) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    await this.stop();
    throw new Error(`passthrough_ll did not mount ${this.mountpoint}: ${err.trim()}`);
  }

  /** Empties its source directory (unmounted), for the next workload. */
  async clear(): Promise<void> {
    await fsp.rm(this.source, { recursive: true, force: true });
    await fsp.mkdir(this.source, { recursive: true });
  }

  /** Unmounts it and ends its process. */
  async stop(): Promise<void> {
    const c = this.child;
    this.child = undefined;
    await run('umount', [this.mountpoint]).catch(() => run('umount', ['-l', this.mountpoint]).catch(() => undefined));
    if (c) await terminate(c, 10_000);
  }
}
