/**
 * The format layer's public surface: the vocabulary every layer above shares — paths, entries,
 * ops and commit records with their codecs, the store layout (keys), the log and the catalog of
 * names, retention, and the FsSession/Stat types. Layers above import from here only.
 */
export * from './paths.js';
export * from './keys.js';
export { changedPaths, encodeEntry, MAX_ID } from './entries.js';
export * from './xattrs.js';
export * from './records.js';
export * from './gcobjects.js';
export * from './types.js';
export { VolumeLog } from './log.js';
export { Catalog, currentAuthor } from './catalog.js';
export * from './retention.js';
