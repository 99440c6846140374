/**
 * Process entry of a mount daemon: `node dist/src/fuse/main.js '<json MountConfig>'` (or the
 * config in `$CAIRN_MOUNT_CONFIG`). Mounts with `startMount` (start.ts), then reports on stdout
 * with one line (the protocol of util/child.ts):
 *
 *   {"event":"ready","pid":..,"volume":..,"mountpoint":..,"device":"0:55"}
 *   {"event":"error","error":{"code":..,"message":..,"context":{..}}}
 *
 * and nothing more on stdout afterwards (the parent may close the pipe); logs go to stderr.
 * The process exits when the mount is gone: 0 after a clean shutdown, 1 if the final commit failed.
 */
import { describeError, isCairnError } from '../errors.js';
import { childInput, isEntry, reportError, reportReady } from '../util/child.js';
import { checkMountConfig } from './config.js';
import { stderrLogger, type MountHandle } from './daemon.js';
import { startMount } from './start.js';

/**
 * Runs a daemon process until its mount is gone; resolves with its exit code.
 *
 * @example process.exit(await main());
 */
export async function main(argv: readonly string[] = process.argv): Promise<number> {
  let handle: MountHandle;
  try {
    const env = process.env.CAIRN_MOUNT_CONFIG;
    const cfg = checkMountConfig(childInput<unknown>(argv, env === undefined ? undefined : childInput<unknown>(['', '', env])));
    handle = await startMount(cfg);
  } catch (err) {
    stderrLogger('error', `mount failed: ${describeError(err)}`, { code: isCairnError(err) ? err.code : 'IO' });
    reportError(err, 'the mount failed');
    return 1;
  }
  reportReady({ pid: process.pid, volume: handle.volumeName, mountpoint: handle.mountpoint, device: handle.device });
  const result = await handle.closed;
  return result.error ? 1 : 0;
}

if (isEntry(import.meta.url)) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      stderrLogger('error', `daemon crashed: ${err instanceof Error ? err.stack : String(err)}`);
      process.exit(2);
    },
  );
}
