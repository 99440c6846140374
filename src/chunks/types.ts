/**
 * The contract between the chunk layer and the layers above it.
 *
 * A file's content is a list of ChunkRefs in file order. A ChunkRef names a chunk by its BLAKE3
 * hash and says where its bytes live: `length` bytes at `offset` in pack object `pack` (the pack
 * id; its object key is derived by the ChunkStore). Refs are immutable and self-verifying.
 */

export interface ChunkRef {
  /** BLAKE3 hash of the chunk's bytes, lowercase hex (64 chars). */
  hash: string;
  /** Pack id (not the full object key). */
  pack: string;
  /** Byte offset of the chunk inside the pack object. */
  offset: number;
  /** Chunk length in bytes. */
  length: number;
}

/** Looks up an already-stored chunk by hash, so a writer never uploads it twice. */
export type KnownChunks = (hash: string) => ChunkRef | undefined;
