/**
 * The journal's chunk index (table `chunks`): where each chunk the session knows of lives (pack
 * and offset), for dedup at commit and in batch uploads. Written inside the journal's transactions.
 */
import type BetterSqlite3 from 'better-sqlite3';
import type { ChunkRef } from '../chunks/index.js';

export class ChunkIndex {
  private readonly getRow: BetterSqlite3.Statement<[string], { hash: string; pack: string; off: number; len: number }>;
  private readonly putRow: BetterSqlite3.Statement<[string, string, number, number]>;

  /** @example const index = new ChunkIndex(db); index.add(refs); index.known(refs[0].hash); */
  constructor(db: BetterSqlite3.Database) {
    this.getRow = db.prepare('SELECT * FROM chunks WHERE hash = ?');
    this.putRow = db.prepare('INSERT OR IGNORE INTO chunks (hash, pack, off, len) VALUES (?, ?, ?, ?)');
  }

  /** Where chunk `hash` lives, or undefined. */
  known(hash: string): ChunkRef | undefined {
    const r = this.getRow.get(hash);
    return r ? { hash: r.hash, pack: r.pack, offset: r.off, length: r.len } : undefined;
  }

  /** Adds chunk locations (a chunk already known keeps its first). */
  add(refs: readonly ChunkRef[]): void {
    for (const r of refs) this.putRow.run(r.hash, r.pack, r.offset, r.length);
  }
}
