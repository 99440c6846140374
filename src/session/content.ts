/**
 * The one encoder of file bytes into an entry's content, used by commit (staged files, sync.ts)
 * and batch upload (local files and buffers, ../volume/batch.ts): files up to INLINE_MAX are
 * inlined in the entry, files up to WHOLE_READ_MAX are read whole (up to READ_AHEAD files ahead
 * of the chunker: one by one, the reads of many small files would dominate), bigger ones stream
 * through the chunker.
 *
 * Invariants: files are encoded in the order asked, each exactly once into the given pack
 * writer; a read made ahead is used only when its source still has the same key (a staged file
 * restaged meanwhile is read again); a failed read ahead surfaces only when its file is encoded.
 */
import type { ChunkRef, PackWriter } from '../chunks/index.js';

/** Files up to this size are stored inside their entry instead of in a pack. */
export const INLINE_MAX = 4096;
/** Files up to this size are read whole (and ahead); bigger ones stream. */
export const WHOLE_READ_MAX = 1 << 20;
/** How many files ahead of the chunker whole reads run. */
export const READ_AHEAD = 16;

/** Where one file's bytes come from. */
export interface ContentSource {
  /** Names the bytes: a read made ahead is used only while the key is the same. */
  readonly key: string;
  /** The bytes, when the file is small enough to read whole (≤ WHOLE_READ_MAX); else undefined. */
  readWhole(): Promise<Uint8Array | undefined>;
  /** The bytes of a big file: a local path for the chunker to read, or the pieces. */
  streamed(): string | AsyncIterable<Uint8Array>;
}

/** A file's content as an entry holds it. */
export interface EncodedContent {
  size: number;
  inline?: Buffer;
  chunks?: ChunkRef[];
}

/**
 * An encoder of files into `writer`, in index order: `encode(i, source)` encodes file i (its
 * source as it is now) and reads ahead the files `sourceAt(i+1 …)` (undefined: no file there)
 * of the `count`.
 *
 * @example
 * const encode = contentEncoder(writer, files.length, (i) => sourceOf(files[i]));
 * for (const [i, f] of files.entries()) entries.push({ ...meta, ...(await encode(i, sourceOf(f))) });
 */
export function contentEncoder(
  writer: PackWriter,
  count: number,
  sourceAt: (i: number) => ContentSource | undefined,
): (i: number, source: ContentSource) => Promise<EncodedContent> {
  const ahead = new Map<number, { key: string; read: Promise<Uint8Array | undefined> }>();
  const readAhead = (from: number): void => {
    for (let j = from; j < Math.min(count, from + READ_AHEAD); j++) {
      if (ahead.has(j)) continue;
      const s = sourceAt(j);
      if (!s) continue;
      const read = s.readWhole();
      read.catch(() => {}); // awaited (and thrown) in order, by encode
      ahead.set(j, { key: s.key, read });
    }
  };
  return async (i, source) => {
    readAhead(i);
    const pre = ahead.get(i);
    ahead.delete(i);
    const bytes = await (pre?.key === source.key ? pre.read : source.readWhole());
    if (bytes) {
      if (bytes.length <= INLINE_MAX) return { size: bytes.length, inline: Buffer.from(bytes) };
      return { size: bytes.length, chunks: await writer.write(bytes) };
    }
    const s = source.streamed();
    const chunks = typeof s === 'string' ? await writer.writeFile(s) : await writer.write(s);
    return { size: chunks.reduce((n, r) => n + r.length, 0), chunks };
  };
}
