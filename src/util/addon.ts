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
