/**
 * Where Cairn keeps its local state, from the environment: `$CAIRN_HOME` (default `~/.cairn`)
 * holds the embedded file store, the host-wide chunk cache and session directories.
 */
import os from 'node:os';
import path from 'node:path';

export function cairnHome(): string {
  return path.resolve(process.env.CAIRN_HOME || path.join(os.homedir(), '.cairn'));
}

/** The store URL used when none is given: `$CAIRN_STORE`, else the embedded file store. */
export function defaultStoreUrl(): string {
  return process.env.CAIRN_STORE || `file://${path.join(cairnHome(), 'store')}`;
}

/** Host-wide chunk cache directory. */
export function cacheDir(): string {
  return process.env.CAIRN_CACHE_DIR || path.join(cairnHome(), 'cache');
}

/** Default bound of the host-wide chunk cache, in bytes (`$CAIRN_CACHE_BYTES`, default 4 GiB). */
export function cacheBytes(): number {
  const v = Number(process.env.CAIRN_CACHE_BYTES);
  return Number.isFinite(v) && v > 0 ? v : 4 * 1024 ** 3;
}

/** Directory of local session state (journals, staging files). */
export function sessionsDir(): string {
  return path.join(cairnHome(), 'sessions');
}
