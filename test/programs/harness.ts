/**
 * Shared set-up of the real-program suites (test/programs/): a real-session daemon on the
 * embedded file store, remounted at the same mount point with the same store (the unmount makes
 * the final commit), and the local scratch directory the suites compare against.
 *
 * Invariant (as test/helpers/mount.ts): the test process only touches a mount from child
 * processes (`sh`), never synchronously.
 */
import path from 'node:path';
import { startFileDaemon, tmpDir, type RunningDaemon } from '../helpers/mount.js';

const start = startFileDaemon();

export interface ProgramMount {
  /** The mount point. */
  dir: string;
  /** A local directory beside it (not a mount) for sources and comparisons. */
  local: string;
  daemon: RunningDaemon;
  /** Unmounts (the final commit) and mounts the same volume again at the same place. */
  remount(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Mounts a fresh volume under /tmp/programs-XXXX.
 *
 * @example
 *   const m = await programMount('git'); await shOk(`cd ${q(m.dir)} && git init`); await m.stop();
 */
export async function programMount(volume: string): Promise<ProgramMount> {
  const base = await tmpDir('programs-');
  const spec = { mountpoint: path.join(base, 'm'), volume, storeDir: path.join(base, 'store') };
  const m: ProgramMount = {
    dir: spec.mountpoint,
    local: path.join(base, 'local'),
    daemon: await start(spec),
    async remount() {
      const code = await m.daemon.stop();
      if (code !== 0) throw new Error(`daemon exited ${code} at unmount: ${m.daemon.logs()}`);
      m.daemon = await start(spec);
    },
    async stop() {
      await m.daemon.stop();
    },
  };
  return m;
}
