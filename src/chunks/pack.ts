/**
 * Packs: immutable objects holding many chunks, so ten thousand small files cost a few PUTs.
 *
 * Format v2 (docs/CHUNKS.md, docs/FORMAT.md), written since 2026-11-30:
 *
 *   [chunk 0 bytes][chunk 1 bytes]…[index][outboards][footer]
 *   index     = count:u32le, blockBytes:u32le, then per chunk: hash:32 bytes (BLAKE3), offset:u64le, length:u32le
 *   outboards = per chunk in index order, its block CVs (./outboard.ts): blockCount(length) × 32 bytes
 *   footer    = trailerLength:u32le (index + outboards), version:u32le (2), magic "CAIRNPK1" — 16 bytes
 *
 * Format v1 (still read): `[chunks][index][footer]`, the index without blockBytes, no outboards,
 * version 1. A chunk of a v1 pack is always read whole.
 *
 * Invariants: chunks sit back to back from offset 0 in the order they were added, so a ChunkRef
 * `(pack, offset, length)` is a plain range GET; the trailer makes a pack self-describing (GC and
 * repair can list its chunks without any other record); pack ids are 128 random bits (hex), so
 * two writers never produce the same key and a pack object is written once, never changed.
 * Nothing in the trailer is trusted: an outboard is used only once it merges to the chunk's name.
 * `PackWriter` keeps at most `maxInFlight` sealed packs in memory (~packBytes each).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import pLimit from 'p-limit';
import { CairnError, asCairnError } from '../errors.js';
import type { ObjectStore } from '../store/types.js';
import { Chunker, DEFAULT_CHUNKER, type ChunkerParams } from './chunker.js';
import { packBlockBytes } from '../config.js';
import { hashChunkAsync, outboardAsync } from './hash.js';
import { blockCount, chunkOutboard, CV_BYTES, isBlockSize } from './outboard.js';
import type { ChunkRef, KnownChunks } from './types.js';

export const PACK_MAGIC = 'CAIRNPK1';
export const PACK_FOOTER_BYTES = 16;
/** Pack format version written by this code; readers refuse newer ones (UNSUPPORTED). */
export const PACK_VERSION = 2;
const ENTRY_BYTES = 32 + 8 + 4;
/** Block size of the outboards this code writes: partial reads fetch and verify whole blocks of this size. */
export const DEFAULT_BLOCK_BYTES = 32 * 1024;
/** Chunks of one file being hashed ahead of the one being added (bounds memory to ~this × max chunk). */
const HASH_AHEAD = 4;
/** Bytes at the end of a pack read by one GET to find its footer and, usually, its whole trailer. */
const TAIL_BYTES = 64 * 1024;
/** Default size at which a pack is sealed and uploaded. */
export const DEFAULT_PACK_BYTES = 32 * 1024 * 1024;

export interface PackEntry {
  hash: string;
  offset: number;
  length: number;
}

/** A fresh pack id: 32 hex characters of crypto randomness. */
export function newPackId(): string {
  return crypto.randomBytes(16).toString('hex');
}

/** Accumulates chunks for one pack in memory, then seals them into the v2 byte layout. */
export class PackBuilder {
  readonly id = newPackId();
  readonly entries: PackEntry[] = [];
  private readonly parts: Uint8Array[] = [];
  private readonly outboards: (Uint8Array | Promise<Uint8Array> | undefined)[] = [];
  /** Bytes of chunk data so far (= offset of the next chunk). */
  size = 0;

  constructor(readonly blockBytes: number = packBlockBytes()) {
    if (blockBytes !== 0 && !isBlockSize(blockBytes)) {
      throw new CairnError('INVALID_ARGUMENT', `invalid blockBytes ${blockBytes}`, { hint: 'use a power of two from 1024, e.g. 65536' });
    }
  }

  /**
   * Appends a chunk; returns its offset in the pack. `outboard` (its block CVs for this block size,
   * or their promise: `outboardAsync`) saves computing them at `seal` — e.g. a chunk copied from a
   * pack with the same block size, whose outboard was checked against the chunk's name.
   */
  add(hash: string, data: Uint8Array, outboard?: Uint8Array | Promise<Uint8Array>): number {
    const offset = this.size;
    this.parts.push(data);
    this.outboards.push(outboard);
    this.entries.push({ hash, offset, length: data.length });
    this.size += data.length;
    return offset;
  }

  /** `seal` once the outboards given as promises are in. */
  async sealed(): Promise<Buffer> {
    for (let i = 0; i < this.outboards.length; i++) this.outboards[i] = await this.outboards[i];
    return this.seal();
  }

  /**
   * The complete pack object: data, index, outboards, footer (outboards not given, or still
   * pending, are computed here). The builder must not be used afterwards.
   */
  seal(): Buffer {
    const index = encodeIndex(this.entries, this.blockBytes);
    const outboards = this.parts.map((p, i) => {
      if (this.blockBytes === 0) return new Uint8Array(0);
      const given = this.outboards[i];
      const ok = given instanceof Uint8Array && given.length === blockCount(p.length, this.blockBytes) * CV_BYTES;
      return ok ? given : chunkOutboard(p, this.blockBytes);
    });
    const outBytes = outboards.reduce((n, o) => n + o.length, 0);
    const footer = Buffer.alloc(PACK_FOOTER_BYTES);
    footer.writeUInt32LE(index.length + outBytes, 0);
    footer.writeUInt32LE(PACK_VERSION, 4);
    footer.write(PACK_MAGIC, 8, 'latin1');
    const body = Buffer.concat([...this.parts, index, ...outboards, footer], this.size + index.length + outBytes + PACK_FOOTER_BYTES);
    this.parts.length = 0;
    this.outboards.length = 0;
    return body;
  }
}

function encodeIndex(entries: PackEntry[], blockBytes: number): Buffer {
  const buf = Buffer.alloc(8 + entries.length * ENTRY_BYTES);
  buf.writeUInt32LE(entries.length, 0);
  buf.writeUInt32LE(blockBytes, 4);
  let o = 8;
  for (const e of entries) {
    buf.write(e.hash, o, 32, 'hex');
    buf.writeBigUInt64LE(BigInt(e.offset), o + 32);
    buf.writeUInt32LE(e.length, o + 40);
    o += ENTRY_BYTES;
  }
  return buf;
}

function corrupt(what: string, key?: string): CairnError {
  return new CairnError('CORRUPT', `pack ${key ?? ''} is malformed: ${what}`, {
    key,
    hint: 'the pack object is damaged or not a Cairn pack; restore it from a replica',
  });
}

/** What a pack's trailer says: its chunks, and (v2) where each chunk's outboard is. */
export interface PackTrailer {
  version: number;
  /** Block size of the outboards (0 in a v1 pack: none). */
  blockBytes: number;
  entries: PackEntry[];
  /** Per entry, its outboard (block CVs; empty for a chunk of one block or a v1 pack). Untrusted. */
  outboards: Uint8Array[];
}

/** Parses a pack's footer (its last 16 bytes); returns the trailer length (index + outboards) and the version. */
export function parseFooter(footer: Uint8Array, key?: string): { trailerLength: number; version: number } {
  const b = Buffer.from(footer.buffer, footer.byteOffset, footer.length);
  if (b.length !== PACK_FOOTER_BYTES || b.toString('latin1', 8, 16) !== PACK_MAGIC) throw corrupt('bad footer magic', key);
  const version = b.readUInt32LE(4);
  if (version > PACK_VERSION) {
    throw new CairnError('UNSUPPORTED', `pack ${key ?? ''} has format version ${version}; this Cairn reads up to ${PACK_VERSION}`, {
      key,
      hint: 'upgrade Cairn to read this volume',
    });
  }
  if (version < 1) throw corrupt(`bad format version ${version}`, key);
  return { trailerLength: b.readUInt32LE(0), version };
}

/** Parses an encoded trailer (the bytes between the chunks and the footer); `dataBytes` (when known) bounds every entry. */
export function parseTrailer(trailer: Uint8Array, version: number, dataBytes?: number, key?: string): PackTrailer {
  const b = Buffer.from(trailer.buffer, trailer.byteOffset, trailer.length);
  const head = version >= 2 ? 8 : 4;
  if (b.length < head) throw corrupt('index too short', key);
  const count = b.readUInt32LE(0);
  const blockBytes = version >= 2 ? b.readUInt32LE(4) : 0;
  if (version >= 2 && blockBytes !== 0 && !isBlockSize(blockBytes)) throw corrupt(`bad block size ${blockBytes}`, key);
  const indexEnd = head + count * ENTRY_BYTES;
  if (b.length < indexEnd || (version < 2 && b.length !== indexEnd)) throw corrupt('index length does not match its count', key);
  const entries: PackEntry[] = [];
  const outboards: Uint8Array[] = [];
  let ob = indexEnd;
  for (let o = head; o < indexEnd; o += ENTRY_BYTES) {
    const offset = Number(b.readBigUInt64LE(o + 32));
    const length = b.readUInt32LE(o + 40);
    if (dataBytes !== undefined && offset + length > dataBytes) throw corrupt('index entry beyond the data', key);
    entries.push({ hash: b.toString('hex', o, o + 32), offset, length });
    const n = version >= 2 && blockBytes > 0 ? blockCount(length, blockBytes) * CV_BYTES : 0;
    outboards.push(trailer.subarray(ob, ob + n));
    ob += n;
  }
  if (ob !== b.length) throw corrupt('trailer length does not match its index', key);
  return { version, blockBytes, entries, outboards };
}

/** Parses a whole pack object held in memory. */
export function parsePack(pack: Uint8Array, key?: string): PackEntry[] {
  if (pack.length < PACK_FOOTER_BYTES) throw corrupt('shorter than its footer', key);
  const { trailerLength, version } = parseFooter(pack.subarray(pack.length - PACK_FOOTER_BYTES), key);
  const dataBytes = pack.length - PACK_FOOTER_BYTES - trailerLength;
  if (dataBytes < 0) throw corrupt('index longer than the pack', key);
  return parseTrailer(pack.subarray(dataBytes, dataBytes + trailerLength), version, dataBytes, key).entries;
}

/**
 * Reads a stored pack's trailer with a HEAD and a range GET of its last 64 KiB (a second GET when the
 * trailer is longer), without its data: its
 * chunks and, in a v2 pack, their outboards (untrusted: see ./outboard.ts `verifyOutboard`).
 *
 * @example const { entries, outboards, blockBytes } = await readPackTrailer(store, 'volumes/v1/packs/' + id);
 */
export async function readPackTrailer(store: ObjectStore, key: string): Promise<PackTrailer> {
  const info = await store.head(key);
  if (!info) throw new CairnError('NOT_FOUND', `no pack ${key}`, { key, store: store.url });
  if (info.size < PACK_FOOTER_BYTES) throw corrupt('shorter than its footer', key);
  // One GET for the tail usually holds footer and trailer (a 32 MiB pack's: ~34 KiB); else a second.
  const tailBytes = Math.min(info.size, TAIL_BYTES);
  const tail = (await store.get(key, { offset: info.size - tailBytes, length: tailBytes })).subarray(0, tailBytes);
  const { trailerLength, version } = parseFooter(tail.subarray(tailBytes - PACK_FOOTER_BYTES), key);
  const dataBytes = info.size - PACK_FOOTER_BYTES - trailerLength;
  if (dataBytes < 0) throw corrupt('index longer than the pack', key);
  const trailer =
    trailerLength + PACK_FOOTER_BYTES <= tailBytes
      ? tail.subarray(tailBytes - PACK_FOOTER_BYTES - trailerLength, tailBytes - PACK_FOOTER_BYTES)
      : await store.get(key, { offset: dataBytes, length: trailerLength });
  return parseTrailer(trailer, version, dataBytes, key);
}

/**
 * Reads a stored pack's index (HEAD and one or two range GETs: `readPackTrailer`), without its data.
 *
 * @example for (const e of await readPackIndex(store, 'volumes/v1/packs/' + id)) live.has(e.hash) || …
 */
export async function readPackIndex(store: ObjectStore, key: string): Promise<PackEntry[]> {
  return (await readPackTrailer(store, key)).entries;
}

export interface PackWriterOptions {
  store: ObjectStore;
  packPrefix: string;
  known?: KnownChunks;
  packBytes?: number;
  chunker?: ChunkerParams;
  /** Sealed packs uploading (or waiting to) at once; bounds memory to ~packBytes × this. */
  maxInFlight?: number;
  /** Block size of the outboards written (default `packBlockBytes()`, `$CAIRN_PACK_OUTBOARDS`: 0, none, unless asked): the unit of partial reads. */
  blockBytes?: number;
}

/**
 * Writes the new chunks of one commit into packs. Create it with `ChunkStore.writer()`.
 * Several `write` calls may run concurrently (chunks of different files share packs).
 *
 * @example
 * const w = chunks.writer({ known: (h) => journal.findChunk(h) });
 * const refs = await w.writeFile('/tmp/staging/3');
 * const { packs } = await w.finish(); // refs are durable now; record them in the commit
 */
export class PackWriter {
  private readonly store: ObjectStore;
  private readonly prefix: string;
  private readonly known?: KnownChunks;
  private readonly packBytes: number;
  private readonly chunkerParams: ChunkerParams;
  private readonly maxInFlight: number;
  private readonly blockBytes: number;
  private readonly limit;
  private readonly seen = new Map<string, ChunkRef>();
  private readonly uploads = new Set<Promise<void>>();
  private readonly uploaded: string[] = [];
  private readonly newChunks: ChunkRef[] = [];
  private current: PackBuilder | undefined;
  private bytesUploaded = 0;
  private failure: unknown;
  private state: 'open' | 'finishing' | 'finished' | 'aborted' = 'open';

  constructor(opts: PackWriterOptions) {
    const packBytes = opts.packBytes ?? DEFAULT_PACK_BYTES;
    if (!Number.isSafeInteger(packBytes) || packBytes < 1) {
      throw new CairnError('INVALID_ARGUMENT', `invalid packBytes ${packBytes}`, { hint: 'use a positive byte count, e.g. 33554432' });
    }
    this.store = opts.store;
    this.prefix = opts.packPrefix;
    this.known = opts.known;
    this.packBytes = packBytes;
    this.chunkerParams = opts.chunker ?? DEFAULT_CHUNKER;
    this.maxInFlight = Math.max(1, opts.maxInFlight ?? 3);
    this.blockBytes = opts.blockBytes ?? packBlockBytes();
    if (this.blockBytes !== 0 && !isBlockSize(this.blockBytes)) {
      throw new CairnError('INVALID_ARGUMENT', `invalid blockBytes ${this.blockBytes}`, {
        hint: 'use a power of two from 1024, e.g. 65536',
      });
    }
    this.limit = pLimit(this.maxInFlight);
  }

  /**
   * Chunks and hashes one file's content (a buffer or a stream of pieces) and returns its refs
   * in file order. New chunks go into the open pack; refs are durable only after `finish()`.
   */
  async write(data: Uint8Array | AsyncIterable<Uint8Array>): Promise<ChunkRef[]> {
    this.checkOpen();
    const refs: ChunkRef[] = [];
    const chunker = new Chunker(this.chunkerParams);
    // Chunks are hashed ahead (on the hash worker pool) and added in file order.
    const window: { chunk: Uint8Array; hash: Promise<string> }[] = [];
    const enqueue = async (chunks: Uint8Array[], keep: number): Promise<void> => {
      for (const chunk of chunks) {
        const hash = hashChunkAsync(chunk);
        hash.catch(() => {});
        window.push({ chunk, hash });
      }
      while (window.length > keep) {
        const next = window.shift()!;
        await this.add(next.chunk, await next.hash, refs);
      }
    };
    if (data instanceof Uint8Array) {
      await enqueue(chunker.push(data), 0);
    } else {
      for await (const piece of data) {
        this.checkOpen();
        await enqueue(chunker.push(piece), HASH_AHEAD);
      }
    }
    await enqueue(chunker.finish(), 0);
    return refs;
  }

  /**
   * Appends one chunk as it is (no chunking), e.g. a chunk copied out of another pack by
   * compaction: `hash` must be its BLAKE3 (the caller verified it). `outboard`, its block CVs when
   * the caller has them for this writer's block size (checked with `verifyOutboard`), saves
   * computing them; without, they are computed. Deduped like `write` (a hash already in this writer,
   * or `known`, is not uploaded again). Returns the chunk's ref (durable after `finish()`).
   *
   * @example const ref = await w.addChunk(old.hash, await chunks.readChunk(old));
   */
  async addChunk(hash: string, data: Uint8Array, outboard?: Uint8Array): Promise<ChunkRef> {
    this.checkOpen();
    const refs: ChunkRef[] = [];
    await this.add(data, hash, refs, outboard);
    return refs[0];
  }

  /** Block size of the outboards this writer writes. */
  get outboardBlockBytes(): number {
    return this.blockBytes;
  }

  /** Like `write`, streaming a local file (never loaded whole). Missing file -> NOT_FOUND. */
  async writeFile(localPath: string): Promise<ChunkRef[]> {
    this.checkOpen();
    const stream = fs.createReadStream(localPath, { highWaterMark: 1024 * 1024 });
    try {
      return await this.write(stream);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new CairnError('NOT_FOUND', `no file ${localPath}`, { path: localPath }, { cause: err });
      if (code === 'EISDIR') throw new CairnError('IS_A_DIRECTORY', `${localPath} is a directory`, { path: localPath }, { cause: err });
      throw asCairnError(err, 'IO', `cannot read ${localPath}`, { path: localPath });
    } finally {
      stream.destroy();
    }
  }

  /**
   * Seals and uploads the last pack, waits for every upload, and closes the writer.
   * Rejects with the first upload error (the store's CairnError as is).
   */
  async finish(): Promise<{ bytesUploaded: number; packs: string[]; newChunks: ChunkRef[] }> {
    this.checkOpen();
    this.state = 'finishing';
    try {
      if (this.current && this.current.entries.length > 0) this.startUpload(this.current);
      this.current = undefined;
      while (this.uploads.size > 0) await Promise.allSettled([...this.uploads]);
      if (this.failure !== undefined) throw this.failure;
      this.state = 'finished';
      return { bytesUploaded: this.bytesUploaded, packs: [...this.uploaded], newChunks: [...this.newChunks] };
    } catch (err) {
      this.abort();
      throw err;
    }
  }

  /**
   * Abandons the commit: drops buffered chunks, and deletes (best effort, in the background)
   * any pack already uploaded — nothing can reference them, since refs are durable only after
   * `finish()` and pack ids are never reused.
   */
  abort(): void {
    if (this.state === 'aborted' || this.state === 'finished') return;
    this.state = 'aborted';
    this.current = undefined;
    const cleanup = async (): Promise<void> => {
      while (this.uploads.size > 0) await Promise.allSettled([...this.uploads]);
      await Promise.allSettled(this.uploaded.map((id) => this.store.delete(this.prefix + id)));
    };
    void cleanup().catch(() => {});
  }

  private checkOpen(): void {
    if (this.failure !== undefined) throw this.failure;
    if (this.state !== 'open') {
      throw new CairnError('CLOSED', `pack writer is ${this.state}`, { hint: 'create a new writer for the next commit' });
    }
  }

  /** Hashes one chunk, dedupes it, appends it to the open pack when new; pushes its ref. */
  private async add(chunk: Uint8Array, hash: string, refs: ChunkRef[], outboard?: Uint8Array): Promise<void> {
    this.checkOpen();
    let ref = this.seen.get(hash) ?? this.known?.(hash);
    if (!ref) {
      const pack = (this.current ??= new PackBuilder(this.blockBytes));
      ref = {
        hash,
        pack: pack.id,
        offset: pack.add(hash, chunk, this.blockBytes ? (outboard ?? outboardAsync(chunk, this.blockBytes)) : undefined),
        length: chunk.length,
      };
      this.newChunks.push(ref);
      this.seen.set(hash, ref);
      refs.push(ref);
      if (pack.size >= this.packBytes) {
        this.current = undefined;
        this.startUpload(pack);
        await this.backpressure();
      }
      return;
    }
    this.seen.set(hash, ref);
    refs.push(ref);
  }

  private startUpload(pack: PackBuilder): void {
    const p = this.limit(async () => {
      const body = await pack.sealed();
      await this.store.put(this.prefix + pack.id, body);
      this.bytesUploaded += body.length;
      this.uploaded.push(pack.id);
    }).catch((err: unknown) => {
      this.failure ??= err;
    });
    const tracked = p.finally(() => this.uploads.delete(tracked));
    this.uploads.add(tracked);
  }

  /** Waits while `maxInFlight` sealed packs are already uploading or queued. */
  private async backpressure(): Promise<void> {
    while (this.uploads.size >= this.maxInFlight) await Promise.race(this.uploads);
    if (this.failure !== undefined) throw this.failure;
  }
}
