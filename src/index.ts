/**
 * Cairn's library entry: `import { Volume, CairnError } from 'cairn'`.
 *
 * Wires the Volume API to FUSE mounts: the Volume exported here passes `mountControl` below by
 * default, so `vol.commit()` / `vol.reload()` reach the daemon of every writable mount of that
 * volume visible in this process's mount namespace (none: a no-op, since every Volume call
 * already commits and reads the latest state). Nothing is set as a side effect of importing.
 */
import { Volume as VolumeApi, type MountControl } from './volume/index.js';
import { controlRequest, findMounts } from './fuse/control.js';

/**
 * Commit or reload every mount of a volume on this host (reload: read-only ones too).
 * @example await Volume.fromName('data', { mountControl });
 */
export const mountControl: MountControl = async (volumeName, op) => {
  const mounts = (await findMounts(volumeName)).filter((m) => op === 'reload' || !m.readOnly);
  const results = [];
  for (const m of mounts) results.push(await controlRequest(m.mountpoint, op));
  return results.length ? results : undefined;
};

/** The Volume API whose commit/reload reach this host's mounts unless told otherwise (`mountControl` option). */
export class Volume extends VolumeApi {
  protected static override readonly defaultMountControl: MountControl | undefined = mountControl;
}

export { Batch, Session, openSession } from './volume/index.js';
export type { MountControl, VolumeOptions, StoreOption } from './volume/index.js';
export type {
  FileEntry,
  EntryType,
  Stat,
  CommitResult,
  ReloadResult,
  OpenFile,
  HistoryEntry,
  FsSession,
  MountSession,
} from './volume/index.js';
export type { VerifyReport, VerifyProblem, VerifyOrphan, VerifyOptions, VerifyKind } from './volume/index.js';
export type { GcOptions, GcReport, StoreGcReport, RetentionPolicy, VolumeUsage } from './volume/index.js';
export { CairnError, isCairnError, type ErrorCode } from './errors.js';
export { openStore } from './store/index.js';
export type { ObjectStore } from './store/index.js';
export { mount, unmount } from './fuse/mount.js';
export { controlRequest, findMounts } from './fuse/control.js';
