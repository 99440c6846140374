/**
 * A file's bytes in a session: read from its staging file (written here), its inline bytes or
 * its chunks (with fetching hints: the reader's cursor for sequential read-ahead, pack
 * neighbours for small files), and copied into a staging file on its first write (copy-on-write).
 *
 * Invariants: callers pass entries of regular files and checked numbers; a committed file is
 * copied into staging at most once at a time (concurrent first writes share one copy), and the
 * copy is attached to the path only if it still has no staging file.
 */
import type { ChunkStore, ReadCursor, ReadHints } from '../chunks/index.js';
import type { JournalEntry } from './entry.js';
import type { Journal } from './journal.js';
import type { Staging } from './staging.js';

/** Files up to this size also prefetch their pack neighbours (siblings uploaded with them). */
const SMALL_FILE_BYTES = 1024 * 1024;

export class FileData {
  private readonly copying = new Map<string, Promise<string>>();
  /** Read state per path, for callers that pass no cursor of their own (see `read`). */
  private readonly pathCursors = new Map<string, ReadCursor>();

  /** @example const data = new FileData(journal, staging, chunks); await data.read(e, 0, 4096); */
  constructor(
    private readonly journal: Journal,
    private readonly staging: Staging,
    private readonly chunks: ChunkStore,
  ) {}

  /**
   * Up to `length` bytes at `offset` of the file `e` (fewer at its end). `cursor` is the reader's
   * own read state (one per open file handle: `chunks.cursor()`); without one, readers of a path
   * share one.
   */
  async read(e: JournalEntry, offset: number, length: number, cursor?: ReadCursor): Promise<Buffer> {
    const n = Math.max(0, Math.min(length, e.size - offset));
    if (n === 0) return Buffer.alloc(0);
    if (e.staged) return this.staging.read(e.staged, offset, n);
    if (e.inline) return Buffer.from(e.inline.subarray(offset, offset + n));
    return this.chunks.read(e.chunks ?? [], offset, n, this.readOptions(e, cursor));
  }

  /** A read of a committed file served from memory into `into` (byte count), or undefined. */
  readCached(e: JournalEntry, offset: number, length: number, into: Buffer, cursor?: ReadCursor): number | undefined {
    const n = Math.max(0, Math.min(length, e.size - offset, into.length));
    if (n === 0) return 0;
    if (e.inline) return e.inline.copy(into, 0, offset, offset + n);
    return this.chunks.readCached(e.chunks ?? [], offset, n, into, this.readOptions(e, cursor));
  }

  /**
   * Fetching hints for a read of a committed file: the reader's cursor (else the path's) for
   * sequential read-ahead, pack neighbours for small files.
   */
  private readOptions(e: JournalEntry, cursor: ReadCursor | undefined): ReadHints {
    let c = cursor ?? this.pathCursors.get(e.path);
    if (!c) {
      c = this.chunks.cursor();
      this.pathCursors.set(e.path, c);
      if (this.pathCursors.size > 1024) this.pathCursors.delete(this.pathCursors.keys().next().value!);
    }
    return { cursor: c, ...(e.size <= SMALL_FILE_BYTES ? { neighbours: true } : {}) };
  }

  /** Whether `p`'s content is being copied into a new staging file now (its first staged write). */
  materializing(p: string): boolean {
    return this.copying.has(p);
  }

  /**
   * The staging file of the file `e` at `p`, copying its committed content (unless
   * `keepContent` is false: a truncate to 0) into a new one on first write.
   */
  async staged(p: string, e: JournalEntry, keepContent = true): Promise<string> {
    if (e.staged) return e.staged;
    let pending = this.copying.get(p);
    if (!pending) {
      pending = (async () => {
        let name = '';
        await this.staging.create((n) => (name = n));
        if (keepContent && e.size > 0) {
          let off = 0;
          if (e.inline) await this.staging.write(name, 0, e.inline);
          else
            for await (const buf of this.chunks.stream(e.chunks ?? [])) {
              await this.staging.write(name, off, buf);
              off += buf.length;
            }
          // Only a file whose content ends short of its size (none should) needs the trip to truncate.
          if ((e.inline ? e.inline.length : off) !== e.size) await this.staging.truncate(name, e.size);
        }
        return this.journal.attachStaged(p, name);
      })().finally(() => this.copying.delete(p));
      this.copying.set(p, pending);
    }
    return pending;
  }
}
