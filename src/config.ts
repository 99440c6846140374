/**
 * Where Cairn keeps its local state, from the environment: `$CAIRN_HOME` (default `~/.cairn`)
 * holds the embedded file store, the host-wide chunk cache and session directories.
 */
import os from 'node:os';
import path from 'node:path';
import { CairnError } from './errors.js';

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

/**
 * Block size of the chunk outboards new packs carry (`$CAIRN_PACK_OUTBOARDS`): `0` (the default)
 * writes none, so every chunk is read whole; `on` or `1` gives 32 KiB blocks; a power of two from
 * 1024 gives that. Outboards let random readers fetch only the blocks they need (docs/CHUNKS.md,
 * "Partial-chunk reads") at the cost of a BLAKE3 tree pass over every byte the writer stores (with
 * the addon ~5-8 % of a 1 GiB put here; 0.65x the throughput in JavaScript, without it). They are
 * opt-in: on this host cold random reads of blocks through the SDK were slower than fetching
 * whole chunks on the addon's threads (docs/CHUNKS.md, "Native fetches").
 *
 * @example process.env.CAIRN_PACK_OUTBOARDS = 'on'; packBlockBytes(); // 32768
 */
export function packBlockBytes(): number {
  const v = (process.env.CAIRN_PACK_OUTBOARDS ?? '').trim().toLowerCase();
  if (v === '' || v === '0' || v === 'off' || v === 'false') return 0;
  if (v === '1' || v === 'on' || v === 'true') return 32 * 1024;
  const n = Number(v);
  const ok = Number.isInteger(n) && n >= 1024 && n <= 1 << 24 && (n & (n - 1)) === 0;
  if (!ok) {
    throw new CairnError('INVALID_ARGUMENT', `CAIRN_PACK_OUTBOARDS=${v} is not a block size`, {
      hint: 'use 0 (off), on (32 KiB blocks) or a power of two from 1024 to 16777216',
    });
  }
  return n;
}
