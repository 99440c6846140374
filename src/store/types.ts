/**
 * The object-store interface every backend implements.
 *
 * Invariants: keys are validated by `checkKey` before any backend touches them; `put` with
 * `ifAbsent` is atomic (exactly one of many concurrent callers succeeds, the others get
 * `ALREADY_EXISTS`) when `conditionalWrites` is true; `list` returns keys in byte order.
 * `put … ifAbsent` is the only coordination primitive in Cairn.
 */

export interface ByteRange {
  /** First byte, 0-based. */
  offset: number;
  /** Number of bytes; the result is shorter only when the object ends first. */
  length: number;
}

export interface GetOptions {
  /**
   * Called as a body arrives, with the buffer the result is being written into and how many of
   * its first bytes have arrived so far (only by stores that stream bodies: S3). Those bytes are
   * final for this attempt; a retried attempt starts again with a new buffer and `received` from 0.
   * The buffer becomes the result when the call succeeds. Lets a reader use the head of a long
   * range before its tail arrives.
   */
  onProgress?(body: Buffer, received: number): void;
}

export interface ObjectInfo {
  key: string;
  size: number;
  /**
   * When the object was written, in ms since the epoch, by the store's own clock (S3:
   * LastModified; file store: the file's mtime). `list` and `head` always set it; GC measures
   * ages only by it (docs/ARCHITECTURE.md, "Garbage collection"), never by a host's clock.
   */
  lastModified?: number;
}

export interface PutOptions {
  /** Create the key only if it does not exist; otherwise throw CairnError('ALREADY_EXISTS'). */
  ifAbsent?: boolean;
}

export interface ListOptions {
  /** Only keys strictly greater than this one (a full key, including the prefix). */
  startAfter?: string;
  /** At most this many keys. */
  limit?: number;
}

export interface ObjectStore {
  /** The URL this store was opened from (credentials never included). */
  readonly url: string;
  /**
   * Whether `put(…, { ifAbsent: true })` is really atomic on this store, as probed at open time.
   * When false, Cairn refuses to let more than one writer commit (see docs/FORMAT.md).
   */
  readonly conditionalWrites: boolean;
  /** Whole object, or a byte range of it. Missing key -> CairnError('NOT_FOUND'). */
  get(key: string, range?: ByteRange, options?: GetOptions): Promise<Buffer>;
  put(key: string, body: Uint8Array, options?: PutOptions): Promise<void>;
  /** Size of an object, or undefined when it does not exist. */
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Keys starting with `prefix`, in byte order. */
  list(prefix: string, options?: ListOptions): Promise<ObjectInfo[]>;
  /** Removes a key; removing a missing key is not an error. */
  delete(key: string): Promise<void>;
  close(): Promise<void>;
  /**
   * Stores that write through temporary files (the file store) remove those a crashed writer
   * left, when written before `before` (a store-clock time, ms); with `dryRun` they only count.
   */
  sweepTemporary?(before: number, options?: { dryRun?: boolean }): Promise<{ count: number; bytes: number }>;
}
