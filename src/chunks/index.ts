/**
 * The chunk layer's public surface: content-defined chunking, BLAKE3 naming, packs, the
 * host-wide chunk cache and the ChunkStore that reads and writes file content as ChunkRefs.
 * Layers above import from here only (never from the modules directly).
 */
export type { ChunkRef, KnownChunks } from './types.js';
export { Chunker, chunkBuffer, cutPoints, DEFAULT_CHUNKER, type ChunkerParams } from './chunker.js';
export {
  hashChunk,
  hashChunkAsync,
  isChunkHash,
  verifyChunk,
  verifyChunkAsync,
  outboardAsync,
  hashPoolStats,
  hashImplementation,
  HASH_HEX_LENGTH,
} from './hash.js';
export { ChunkCache, type ChunkCacheOptions, type ChunkCacheStats } from './cache.js';
export {
  PackWriter,
  PackBuilder,
  parsePack,
  readPackIndex,
  readPackTrailer,
  newPackId,
  DEFAULT_BLOCK_BYTES,
  DEFAULT_PACK_BYTES,
  PACK_MAGIC,
  PACK_VERSION,
  type PackEntry,
  type PackTrailer,
  type PackWriterOptions,
} from './pack.js';
export { verifyOutboard, chunkOutboard, blockCount } from './outboard.js';
export type { PartialStats } from './partial.js';
export { ChunkStore, ReadCursor, type ChunkStoreOptions, type ReadHints, type LeaseStats } from './chunkstore.js';
export type { LeaseOptions } from './lease.js';
export { nativeFetchStats } from './nativefetch.js';
export { Forwarder, encodeForward, decodeForward, forwardKey, type Forward } from './forward.js';
