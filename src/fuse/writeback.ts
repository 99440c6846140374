/**
 * The kernel's writeback cache, an opt-in mode of the native binding (`MountConfig.writebackCache`,
 * `cairn mount --writeback-cache`): the kernel keeps written pages and sends them to the daemon
 * later, in big WRITEs (docs/SEMANTICS.md, "Writeback cache").
 *
 * Invariants: a commit and a reload of such a mount, and its final commit, start only after
 * `syncMount` has written the kernel's dirty pages of the mount back to the daemon, so a commit
 * holds everything written through the mount before it — closed or not — that the kernel could
 * write back (what it could not is reported to the writer, see `syncMount`). The sync is
 * syncfs(2) run by `sync -f` in a child process, then fdatasync(2) of each file still open for
 * writing (`sync -d`): the WRITEs they cause are answered by this process's event loop meanwhile
 * (a sync from the daemon's own thread would deadlock it).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { MountConfig } from './config.js';

const execFileAsync = promisify(execFile);

/** How long a write-back may take before the commit goes ahead without waiting more. */
export const SYNC_TIMEOUT_MS = 120_000;

/** Whether a mount asks for the writeback cache: its config, else `CAIRN_FUSE_WRITEBACK=1`. */
export function wantsWriteback(config: Pick<MountConfig, 'writebackCache'>, env: NodeJS.ProcessEnv = process.env): boolean {
  return config.writebackCache ?? env.CAIRN_FUSE_WRITEBACK === '1';
}

/** Files per `sync -d` (an argument list stays far below the kernel's limit). */
const SYNC_BATCH = 256;

/**
 * Writes the kernel's dirty pages of the mount at `mountpoint` back to its daemon (syncfs(2)), and
 * waits for the writes in flight of `openForWrite` (volume paths of files open for writing: a
 * closed file's writes were waited for at its close). syncfs alone does not wait for WRITEs
 * the kernel already sent to a FUSE daemon that has no FUSE_SYNCFS (libfuse 3.14 has none): a
 * commit started right after it missed bytes still being answered (a CI run of
 * test/fuse/writeback.test.ts); fdatasync of a file waits for all of them (the kernel's
 * fuse_sync_writes). Resolves with the error reported, if any, for the log: a page the kernel
 * could not write back (its file was removed meanwhile, the disk was full) is reported to the
 * file's writer at its own fsync or close, as on any file system, and is no reason to hold a
 * commit back.
 * @example const err = await syncMount('/mnt/data', ['/open.bin']); if (err) log('warn', err); // then commit
 */
export async function syncMount(mountpoint: string, openForWrite: string[] = [], timeoutMs = SYNC_TIMEOUT_MS): Promise<string | undefined> {
  const files = [...new Set(openForWrite)].map((p) => path.join(mountpoint, p));
  try {
    await execFileAsync('sync', ['-f', mountpoint], { timeout: timeoutMs });
    for (let i = 0; i < files.length; i += SYNC_BATCH) {
      await execFileAsync('sync', ['-d', '--', ...files.slice(i, i + SYNC_BATCH)], { timeout: timeoutMs });
    }
    return undefined;
  } catch (err) {
    const why = String((err as { stderr?: unknown }).stderr || (err as Error).message).trim();
    return `writing the kernel's cached writes of ${mountpoint} back: ${why}`;
  }
}
