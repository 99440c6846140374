/**
 * A file's bytes in a session: read from its staging file (written here), its inline bytes or
 * its chunks (with fetching hints: readahead for sequential readers, pack neighbours for small
 * files), and copied into a staging file on its first write (copy-on-write).
 *
 * Invariants: callers pass entries of regular files and checked numbers; a committed file is
 * copied into staging at most once at a time (concurrent first writes share one copy), and the
 * copy is attached to the path only if it still has no staging file.
 */
import type { ChunkStore, ReadHints } from '../chunks/index.js';
import type { JournalEntry } from './entry.js';
import type { Journal } from './journal.js';
import type { Staging } from './staging.js';

/**
 * Chunks kept in flight ahead of a sequential reader (about 1 MiB each; started 4 at a time, one
 * range GET per batch when cold: see ChunkStore.read).
 */
const READAHEAD_CHUNKS = 16;
/** Files up to this size also prefetch their pack neighbours (siblings uploaded with them). */
const SMALL_FILE_BYTES = 1024 * 1024;

export class FileData {
  private readonly materializing = new Map<string, Promise<string>>();
  private readonly lastReadEnd = new Map<string, number>();

  /** @example const data = new FileData(journal, staging, chunks); await data.read(e, 0, 4096); */
  constructor(
    private readonly journal: Journal,
    private readonly staging: Staging,
    private readonly chunks: ChunkStore,
  ) {}

  /** Up to `length` bytes at `offset` of the file `e` (fewer at its end). */
  async read(e: JournalEntry, offset: number, length: number): Promise<Buffer> {
    const n = Math.max(0, Math.min(length, e.size - offset));
    if (n === 0) return Buffer.alloc(0);
    if (e.staged) return this.staging.read(e.staged, offset, n);
    if (e.inline) return Buffer.from(e.inline.subarray(offset, offset + n));
    const opts = this.readOptions(e, offset);
    this.noteRead(e.path, offset + n);
    return this.chunks.read(e.chunks ?? [], offset, n, opts);
  }

  /** A read of a committed file served from memory into `into` (byte count), or undefined. */
  readCached(e: JournalEntry, offset: number, length: number, into: Buffer): number | undefined {
    const n = Math.max(0, Math.min(length, e.size - offset, into.length));
    if (n === 0) return 0;
    if (e.inline) return e.inline.copy(into, 0, offset, offset + n);
    const got = this.chunks.readCached(e.chunks ?? [], offset, n, into, this.readOptions(e, offset));
    if (got !== undefined) this.noteRead(e.path, offset + n);
    return got;
  }

  /**
   * Fetching hints for a read of a committed file at `offset`: readahead for sequential readers
   * (this read starts where the last one of the file ended), pack neighbours for small files.
   */
  private readOptions(e: JournalEntry, offset: number): ReadHints {
    const sequential = this.lastReadEnd.get(e.path) === offset || offset === 0;
    return {
      ...(sequential ? { readahead: READAHEAD_CHUNKS } : {}),
      ...(e.size <= SMALL_FILE_BYTES ? { neighbours: true } : {}),
    };
  }

  private noteRead(path: string, end: number): void {
    this.lastReadEnd.set(path, end);
    if (this.lastReadEnd.size > 1024) this.lastReadEnd.delete(this.lastReadEnd.keys().next().value!);
  }

  /**
   * The staging file of the file `e` at `p`, copying its committed content (unless
   * `keepContent` is false: a truncate to 0) into a new one on first write.
   */
  async staged(p: string, e: JournalEntry, keepContent = true): Promise<string> {
    if (e.staged) return e.staged;
    let pending = this.materializing.get(p);
    if (!pending) {
      pending = (async () => {
        let name = '';
        await this.staging.create((n) => (name = n));
        if (keepContent && e.size > 0) {
          let off = 0;
          if (e.inline) await this.staging.write(name, 0, e.inline);
          else for await (const buf of this.chunks.stream(e.chunks ?? [])) {
            await this.staging.write(name, off, buf);
            off += buf.length;
          }
          await this.staging.truncate(name, e.size);
        }
        return this.journal.attachStaged(p, name);
      })().finally(() => this.materializing.delete(p));
      this.materializing.set(p, pending);
    }
    return pending;
  }
}
