/**
 * Cairn's library entry: `import { Volume, CairnError } from 'cairn'`.
 */
export { Volume, Batch, Session, openSession } from './volume/index.js';
export type { FileEntry, EntryType, Stat, CommitResult, ReloadResult, OpenFile, HistoryEntry, FsSession, MountSession } from './volume/index.js';
export { CairnError, isCairnError, type ErrorCode } from './errors.js';
export { openStore } from './store/index.js';
export type { ObjectStore } from './store/index.js';
