/**
 * The writer's side of GC (docs/ARCHITECTURE.md, "History retention and garbage collection"):
 * before a commit appends its record, no pack the record references may be condemned or gone.
 * Shared constants of the protocol live here (sync.ts and gc.ts both use them).
 *
 * Invariants: the check lists the condemnations first and HEADs the reused packs after, and the
 * append starts within APPEND_WINDOW_MS of the start of that LIST (sync.ts re-checks otherwise).
 */
import pLimit from 'p-limit';
import { isCairnError } from '../errors.js';
import type { ObjectStore } from '../store/index.js';
import { CONDEMNED_NAME_RE, type EntryData, type Op, decodeCondemnation, keys } from '../format/index.js';

/** Default grace: a pack (or condemnation) must be this old by the store's clock before it goes. */
export const DEFAULT_GRACE_MS = 3_600_000;
/** The shortest grace GC accepts (tests use a few seconds; production keeps the default). */
export const MIN_GRACE_MS = 2_000;
/**
 * A writer re-reads the condemnations when its last read started longer ago than this before
 * it appends its record (sync.ts). Safety needs this plus the append's transit time below the
 * grace of every condemnation: MIN_GRACE_MS is 4× it.
 */
export const APPEND_WINDOW_MS = 500;
export function putEntries(ops: readonly Op[]): EntryData[] {
  const out: EntryData[] = [];
  for (const op of ops) if (op.op === 'put') out.push(op.entry);
  return out;
}

/**
 * The writer's side of the protocol (sync.ts): right before appending a record, the packs it
 * references must be neither condemned nor gone. `check` lists the volume's condemnations (GETs
 * only the ones it has not seen: they are immutable) and HEADs every referenced pack the commit
 * did not upload itself; it returns the start time of its LIST (performance.now()), from which
 * the append must begin within APPEND_WINDOW_MS, and the packs that are bad.
 */
export class CommitGuard {
  private readonly seen = new Map<string, string[]>();

  constructor(
    private readonly store: ObjectStore,
    private readonly volumeId: string,
  ) {}

  /** Pack ids listed by a condemnation now. CORRUPT when one is damaged (no commit can be proven safe). */
  async condemned(): Promise<Set<string>> {
    const prefix = keys.condemnedPrefix(this.volumeId);
    const found = await this.store.list(prefix);
    const out = new Set<string>();
    const live = new Set<string>();
    for (const o of found) {
      if (!CONDEMNED_NAME_RE.test(o.key.slice(prefix.length))) continue;
      live.add(o.key);
      let packs = this.seen.get(o.key);
      if (!packs) {
        try {
          packs = decodeCondemnation(await this.store.get(o.key), o.key, this.volumeId).packs;
        } catch (err) {
          if (isCairnError(err, 'NOT_FOUND')) continue; // its packs are gone: the HEADs see that
          throw err;
        }
        this.seen.set(o.key, packs);
      }
      for (const p of packs) out.add(p);
    }
    for (const k of this.seen.keys()) if (!live.has(k)) this.seen.delete(k);
    return out;
  }

  /**
   * See the class comment. `uploaded`: packs this commit attempt wrote, whose upload began at
   * `uploadStart` (performance.now()); they count as fresh (cannot have been condemned: younger
   * than any grace) only while that is less than MIN_GRACE_MS / 2 ago, and are HEADed otherwise.
   */
  async check(ops: readonly Op[], uploaded: ReadonlySet<string>, uploadStart: number): Promise<{ at: number; bad: Set<string> }> {
    const at = performance.now();
    if (at - uploadStart >= MIN_GRACE_MS / 2) uploaded = new Set();
    const condemned = await this.condemned();
    const bad = new Set<string>();
    const reused = new Set<string>();
    for (const e of putEntries(ops)) {
      for (const r of e.chunks ?? []) {
        if (condemned.has(r.pack)) bad.add(r.pack);
        else if (!uploaded.has(r.pack)) reused.add(r.pack);
      }
    }
    // After the LIST: a pack deleted before it was listed was deleted before its condemnation went.
    const limit = pLimit(16);
    await Promise.all(
      [...reused].map((p) =>
        limit(async () => {
          if (!(await this.store.head(keys.packPrefix(this.volumeId) + p))) bad.add(p);
        }),
      ),
    );
    return { at, bad };
  }
}
