/**
 * The in-process memory LRU of verified chunks, keyed by hash, bounded in bytes.
 *
 * Invariants: it only ever holds chunks already verified against their hash (the fetcher and the
 * host cache put them in); chunks may be views into one fetched run of a pack, and the bound
 * counts the memory really held: each backing ArrayBuffer once while any chunk still views it;
 * a chunk whose backing buffer is over half the bound is never held. Map order = recency.
 */

/**
 * A byte-bounded LRU of verified chunks.
 *
 * @example
 * const mem = new ChunkLru(64 * 1024 * 1024);
 * mem.set(ref.hash, bytes);
 * const again = mem.get(ref.hash); // bytes, now the most recent
 */
export class ChunkLru {
  private readonly map = new Map<string, Buffer>();
  /** Chunks held per backing ArrayBuffer. */
  private readonly backing = new Map<ArrayBufferLike, number>();
  private bytes = 0;
  constructor(private readonly max: number) {}

  private hold(b: Buffer): void {
    const n = this.backing.get(b.buffer) ?? 0;
    if (n === 0) this.bytes += b.buffer.byteLength;
    this.backing.set(b.buffer, n + 1);
  }

  private release(b: Buffer): void {
    const n = this.backing.get(b.buffer) ?? 1;
    if (n > 1) this.backing.set(b.buffer, n - 1);
    else {
      this.backing.delete(b.buffer);
      this.bytes -= b.buffer.byteLength;
    }
  }

  /**
   * The chunk named `hash`, made the most recent; undefined when not held.
   *
   * @example const hit = mem.get(ref.hash);
   */
  get(hash: string): Buffer | undefined {
    const b = this.map.get(hash);
    if (b) {
      this.map.delete(hash);
      this.map.set(hash, b);
    }
    return b;
  }

  /**
   * Whether `hash` is held, without touching its recency.
   *
   * @example if (!mem.has(ref.hash)) start(ref);
   */
  has(hash: string): boolean {
    return this.map.has(hash);
  }

  /**
   * Holds a verified chunk, evicting the least recent ones past the bound.
   *
   * @example mem.set(ref.hash, verifiedBytes);
   */
  set(hash: string, b: Buffer): void {
    if (b.buffer.byteLength > this.max / 2 || this.map.has(hash)) return;
    this.map.set(hash, b);
    this.hold(b);
    for (const [h, old] of this.map) {
      if (this.bytes <= this.max) break;
      this.map.delete(h);
      this.release(old);
    }
  }

  /** Bytes of memory the held chunks keep alive (for tests and stats). */
  get heldBytes(): number {
    return this.bytes;
  }
}
