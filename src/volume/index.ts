/**
 * The volume layer's public surface: the Volume API, sessions, and what a mount needs.
 * Layers above import from here only.
 */
export { Volume, type StoreOption, type MountControl, type VolumeOptions } from './volume.js';
export { Batch, type BatchResult } from './batch.js';
export type { VerifyReport, VerifyProblem, VerifyOrphan, VerifyOptions, VerifyKind } from './verify.js';
export type { GcOptions, GcReport } from './gc.js';
export type { StoreGcReport } from './gcstore.js';
export type { RetentionPolicy } from '../format/index.js';
export type { VolumeUsage } from './usage.js';
export { Session, type SessionOptions } from '../session/index.js';
export { openSession, type OpenSessionOptions, type MountSession } from './open.js';
export { Catalog } from '../format/index.js';
export { normalizePath, checkVolumeName } from '../format/index.js';
export type { FileEntry, EntryType, Stat, CommitResult, ReloadResult, OpenFile, HistoryEntry, FsSession } from '../format/index.js';
