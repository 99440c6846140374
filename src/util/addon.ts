/**
 * Loading the project's native addon (native/: `cairn_fuse.node`, built by `npm run build:native`)
 * once per process. Its FUSE interface is typed in src/fuse/lowlevel-addon.ts, its fetch threads
 * in src/chunks/nativefetch.ts; both load it here.
 */
import { createRequire } from 'node:module';

let loaded: { addon?: object; error?: string } | undefined;

/**
 * The addon's exports, or undefined (with `addonError()` saying why) when it is not built or a
 * library it links (libfuse3, libcurl) is missing.
 *
 * @example const addon = loadAddon() as MyView | undefined;
 */
export function loadAddon(): object | undefined {
  if (!loaded) {
    try {
      const req = createRequire(import.meta.url);
      const file = new URL('../../../native/build/Release/cairn_fuse.node', import.meta.url);
      loaded = { addon: req(file.pathname) as object };
    } catch (err) {
      loaded = { error: err instanceof Error ? err.message.split('\n')[0] : String(err) };
    }
  }
  return loaded.addon;
}

/** Why the addon did not load (undefined when it did, or was not tried). */
export function addonError(): string | undefined {
  return loaded?.error;
}

/** glibc malloc keeps freed blocks below this size in its heaps (a fetch body is one range GET: 8 MiB by default, `$CAIRN_RANGE_MIB` up to 64). */
export const MALLOC_MMAP_THRESHOLD = 32 << 20;
/** …and keeps up to this much free memory at the top of a heap before handing it back. */
export const MALLOC_TRIM_THRESHOLD = 64 << 20;
let tuned: boolean | undefined;

/**
 * Tunes glibc's malloc for a process that brings chunks in (a mount daemon, native fetches): freed
 * fetch bodies and chunk buffers are kept for the next ones instead of being handed back to the
 * kernel and faulted in again (native/cairn_fuse.c, `mallocTune`). Measured on Ceph RGW here: a
 * cold read's daemon CPU about −20 %, up to ~40 MiB more resident afterwards. Once per process;
 * `CAIRN_MALLOC_TUNE=0` leaves malloc alone. Returns whether the tuning is in effect.
 *
 * @example tuneMalloc(); // before the first native fetch or mount
 */
export function tuneMalloc(env: NodeJS.ProcessEnv = process.env): boolean {
  if (tuned === undefined) {
    const a = env.CAIRN_MALLOC_TUNE === '0' ? undefined : (loadAddon() as { mallocTune?(m: number, t: number): boolean } | undefined);
    tuned = a?.mallocTune?.(MALLOC_MMAP_THRESHOLD, MALLOC_TRIM_THRESHOLD) === true;
  }
  return tuned;
}
