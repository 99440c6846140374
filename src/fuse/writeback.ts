/**
 * The kernel's writeback cache, an opt-in mode of the native binding (`MountConfig.writebackCache`,
 * `cairn mount --writeback-cache`): the kernel keeps written pages and sends them to the daemon
 * later, in big WRITEs (docs/SEMANTICS.md, "Writeback cache").
 *
 * Invariants: a commit and a reload of such a mount, and its final commit, start only after
 * `syncMount` has written the kernel's dirty pages of the mount back to the daemon, so a commit
 * holds everything written through the mount before it — closed or not — that the kernel could
 * write back (what it could not is reported to the writer, see `syncMount`). The sync is
 * syncfs(2) run by `sync -f` in a child process: the WRITEs it causes are answered by this
 * process's event loop meanwhile (a syncfs from the daemon's own thread would deadlock it).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { MountConfig } from './config.js';

const execFileAsync = promisify(execFile);

/** How long a write-back may take before the commit goes ahead without waiting more. */
export const SYNC_TIMEOUT_MS = 120_000;

/** Whether a mount asks for the writeback cache: its config, else `CAIRN_FUSE_WRITEBACK=1`. */
export function wantsWriteback(config: Pick<MountConfig, 'writebackCache'>, env: NodeJS.ProcessEnv = process.env): boolean {
  return config.writebackCache ?? env.CAIRN_FUSE_WRITEBACK === '1';
}

/**
 * Writes the kernel's dirty pages of the mount at `mountpoint` back to its daemon (syncfs(2)).
 * Resolves with the error syncfs reported, if any, for the log: a page the kernel could not write
 * back (its file was removed meanwhile, the disk was full) is reported to the file's writer at its
 * own fsync or close, as on any file system, and is no reason to hold a commit back.
 * @example const err = await syncMount('/mnt/data'); if (err) log('warn', err); // then commit
 */
export async function syncMount(mountpoint: string, timeoutMs = SYNC_TIMEOUT_MS): Promise<string | undefined> {
  try {
    await execFileAsync('sync', ['-f', mountpoint], { timeout: timeoutMs });
    return undefined;
  } catch (err) {
    const why = String((err as { stderr?: unknown }).stderr || (err as Error).message).trim();
    return `writing the kernel's cached writes of ${mountpoint} back: ${why}`;
  }
}
