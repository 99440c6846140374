/**
 * The session layer's public surface: a session (one snapshot of a volume plus its own
 * uncommitted changes, in a SQLite journal), its directory, the bytes->entry encoder shared by
 * commit and batch upload, and whole-snapshot reads. Layers above import from here only; none of
 * them reaches the journal.
 */
export { Session, OFFLOAD_MIN_BYTES, type SessionOptions } from './session.js';
export { type JournalEntry, DEFAULT_OWNER, entryData, toFileEntry, toStat } from './entry.js';
export { contentEncoder, INLINE_MAX, WHOLE_READ_MAX, READ_AHEAD, type ContentSource, type EncodedContent } from './content.js';
export { CHECKPOINT_EVERY } from './checkpoints.js';
export { checkpointOf, readSnapshot } from './snapshot.js';
export { mountSessionDir, privateSessionDir } from './sessiondir.js';
export { putEntries, DEFAULT_GRACE_MS, MIN_GRACE_MS, APPEND_WINDOW_MS } from './gcguard.js';
