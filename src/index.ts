/**
 * Cairn's library entry: `import { Volume, CairnError } from 'cairn'`.
 *
 * Wires the Volume API to FUSE mounts: `vol.commit()` / `vol.reload()` reach the daemon of every
 * writable mount of that volume visible in this process's mount namespace (none: a no-op, since
 * every Volume call already commits and reads the latest state).
 */
import { Volume } from './volume/index.js';
import { controlRequest, findMounts } from './fuse/control.js';

Volume.mountControl = async (volumeName, op) => {
  const mounts = (await findMounts(volumeName)).filter((m) => op === 'reload' || !m.readOnly);
  const results = [];
  for (const m of mounts) results.push(await controlRequest(m.mountpoint, op));
  return results.length ? results : undefined;
};

export { Volume, Batch, Session, openSession } from './volume/index.js';
export type { FileEntry, EntryType, Stat, CommitResult, ReloadResult, OpenFile, HistoryEntry, FsSession, MountSession } from './volume/index.js';
export type { VerifyReport, VerifyProblem, VerifyOrphan, VerifyOptions, VerifyKind } from './volume/index.js';
export type { GcOptions, GcReport, StoreGcReport, RetentionPolicy, VolumeUsage } from './volume/index.js';
export { CairnError, isCairnError, type ErrorCode } from './errors.js';
export { openStore } from './store/index.js';
export type { ObjectStore } from './store/index.js';
export { mount, unmount } from './fuse/mount.js';
export { controlRequest, findMounts } from './fuse/control.js';
