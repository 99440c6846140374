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
import { type Staging, SYNC_IO_MAX } from './staging.js';
import { INLINE_MAX } from './content.js';

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

  /**
   * A write or truncate of a file whose bytes stay in its entry (`inline`, in the journal: no
   * staging file): a file without a staging file, holding inline bytes (or nothing), that ends at
   * most at INLINE_MAX after the change (`end`: the furthest byte the change touches). `edit`
   * writes into the new bytes (`size` long, the old ones copied, zeros past them); `written` is
   * the entry with the change's metadata (times, mode). False, changing nothing, for any other
   * file (the caller stages it). No await: concurrent changes of the file see it whole.
   */
  inlineChange(p: string, e: JournalEntry, end: number, size: number, edit: (b: Buffer) => void, written: JournalEntry): boolean {
    if (e.type !== 'file' || e.staged || end > INLINE_MAX || size > INLINE_MAX || this.copying.has(p)) return false;
    const old = e.inline ?? (e.size === 0 && !e.chunks?.length ? Buffer.alloc(0) : undefined);
    if (!old) return false;
    const bytes = Buffer.alloc(size);
    old.copy(bytes, 0, 0, Math.min(old.length, size));
    edit(bytes);
    const out = { ...written, size, inline: bytes } as JournalEntry;
    delete out.chunks;
    this.journal.update(p, out);
    return true;
  }

  /**
   * The write that moves a file held inline into a new staging file (its bytes, then `data`),
   * when `data` is small enough to write synchronously: the file, its bytes and the entry naming
   * it (`written`, sized) in one journal transaction, no await between them. False, changing
   * nothing, otherwise (the caller stages the file the general way: `staged`).
   */
  stageNow(p: string, e: JournalEntry, offset: number, data: Uint8Array, written: JournalEntry): boolean {
    if (e.type !== 'file' || e.staged || !e.inline || data.length > SYNC_IO_MAX || this.copying.has(p)) return false;
    const name = this.staging.createNow();
    if (e.inline.length > 0) this.staging.writeNow(name, 0, e.inline);
    this.staging.writeNow(name, offset, data);
    const out = { ...written, size: Math.max(e.size, offset + data.length), staged: name } as JournalEntry;
    delete out.inline;
    this.journal.update(p, out);
    return true;
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
