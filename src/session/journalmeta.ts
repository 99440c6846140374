/**
 * The typed metadata of a session's journal (the `meta` table): the volume it holds a view of,
 * the session id, the view's seq and the log head it knows, the last checkpoint, and the commit in
 * flight. The journal (./journal.ts) extends it and sets seq and log head inside its transactions.
 *
 * Invariant: a missing key reads as its default (0, undefined); `volumeId` is set last by a bootstrap.
 */
import type BetterSqlite3 from 'better-sqlite3';

/** A commit noted before its record is appended, so that a restarted session recognises it. */
export interface Inflight {
  commitId: string;
  /** The last pending op the commit publishes. */
  fence: number;
  /** The view's seq when the commit started. */
  from?: number;
}

function prepare(db: BetterSqlite3.Database) {
  return {
    metaGet: db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
    metaSet: db.prepare<[string, string]>('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)'),
    metaDel: db.prepare<[string]>('DELETE FROM meta WHERE key = ?'),
  };
}

export class JournalMeta {
  private readonly meta: ReturnType<typeof prepare>;

  /** @example class Journal extends JournalMeta { constructor(db) { super(db); } } */
  constructor(protected readonly db: BetterSqlite3.Database) {
    this.meta = prepare(db);
  }

  protected getMeta(key: string): string | undefined {
    return this.meta.metaGet.get(key)?.value;
  }

  protected setMeta(key: string, value: string | undefined): void {
    if (value === undefined) this.meta.metaDel.run(key);
    else this.meta.metaSet.run(key, value);
  }

  /** The volume this journal holds a view of; undefined until a bootstrap completed. */
  /** Makes every transaction so far durable against a machine crash (one fsync of the WAL; NORMAL leaves it to checkpoints). */
  sync(): void {
    this.db.pragma('synchronous = FULL');
    try {
      this.setMeta('synced', String(Date.now()));
    } finally {
      this.db.pragma('synchronous = NORMAL');
    }
  }

  get volumeId(): string | undefined {
    return this.getMeta('volumeId');
  }

  /** Marks the journal complete (a bootstrap sets it last) and owned by `volumeId`. */
  claim(volumeId: string): void {
    this.setMeta('volumeId', volumeId);
  }

  /** This session's id (prefix of its commit ids), created on first use. */
  sessionId(make: () => string): string {
    let id = this.getMeta('sessionId');
    if (!id) this.setMeta('sessionId', (id = make()));
    return id;
  }

  /** The session id when one was made, without making one. */
  get knownSessionId(): string | undefined {
    return this.getMeta('sessionId');
  }

  /** The snapshot the view is based on. */
  get seq(): number {
    return Number(this.getMeta('seq') ?? 0);
  }

  /** The newest log seq this session has seen (≥ seq). */
  get logHead(): number {
    return Math.max(this.seq, Number(this.getMeta('logHead') ?? 0));
  }

  /** The newest checkpoint written or loaded by this session (0: none). */
  get checkpoint(): number {
    return Number(this.getMeta('checkpoint') ?? 0);
  }

  set checkpoint(seq: number) {
    this.setMeta('checkpoint', String(seq));
  }

  /** The commit in flight, if one was started and not finished. */
  get inflight(): Inflight | undefined {
    const raw = this.getMeta('inflight');
    return raw ? (JSON.parse(raw) as Inflight) : undefined;
  }

  set inflight(value: Inflight | undefined) {
    this.setMeta('inflight', value && JSON.stringify(value));
  }
}
