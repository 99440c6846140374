/**
 * The walk of references GC, verify and usage share: which chunks of which packs the records and
 * checkpoints reference (`PackRefs`), and, for packs compaction rewrote, where those chunks went
 * (the forwarding objects, chunks/forward.ts; docs/ARCHITECTURE.md, "Compaction").
 *
 * Invariants: a mark only grows; a chunk referenced in a forwarded pack marks its new place too,
 * to a fixpoint (chains of compactions); a forwarding object that cannot be read covers nothing.
 */
import { isCairnError } from '../errors.js';
import type { ObjectInfo, ObjectStore } from '../store/index.js';
import { type ChunkRef, type Forward, decodeForward } from '../chunks/index.js';
import { type EntryData, PACK_ID_RE, keys } from '../format/index.js';

/** Pack id -> the distinct chunk refs into it (by offset, length, hash) and the first object referencing it. */
export type PackRefs = Map<string, { by: string; chunks: Map<string, ChunkRef> }>;

/** The one walk of references (verify and gc): adds the chunk refs of `entries`, found in object `by`. */
export function addRefs(refs: PackRefs, by: string, entries: Iterable<EntryData>): void {
  for (const e of entries) for (const r of e.chunks ?? []) addRef(refs, by, r);
}

/** Adds one chunk ref (found in object `by`) to `refs`. */
export function addRef(refs: PackRefs, by: string, r: ChunkRef): void {
  let p = refs.get(r.pack);
  if (!p) refs.set(r.pack, (p = { by, chunks: new Map() }));
  const k = `${r.offset}+${r.length}:${r.hash}`;
  if (!p.chunks.has(k)) p.chunks.set(k, r);
}

/** What resolving the forwarding of one referenced pack found. */
export interface ForwardState {
  key: string;
  /** Its forwarding object, when it decoded. */
  forward?: Forward;
  /** Why it did not decode (CORRUPT, UNSUPPORTED, or NOT_FOUND: deleted since it was listed). */
  error?: unknown;
  /** Referenced chunks of the pack the forwarding object does not name (or names with another length). */
  missing: ChunkRef[];
}

/**
 * The volume's forwarding objects: old pack id -> its listing.
 * @example const forwards = await listForwards(store, id);
 */
export async function listForwards(store: ObjectStore, id: string): Promise<Map<string, ObjectInfo>> {
  const prefix = keys.forwardPrefix(id);
  const out = new Map<string, ObjectInfo>();
  for (const o of await store.list(prefix)) {
    const name = o.key.slice(prefix.length);
    if (PACK_ID_RE.test(name)) out.set(name, o);
  }
  return out;
}

/**
 * Follows forwarding in a mark: every referenced chunk of a pack with a forwarding object marks
 * its new place too (in `refs`, found "by" the forwarding object), to a fixpoint (chains of
 * compactions). Returns, per referenced pack that has a forwarding object, what was found; a
 * pack whose `missing` is empty and that has no `error` is covered (it may be deleted).
 *
 * @example
 * const states = await resolveForwards(store, id, refs, await listForwards(store, id));
 * const covered = (p: string) => { const s = states.get(p); return !!s && !s.error && s.missing.length === 0; };
 */
export async function resolveForwards(
  store: ObjectStore,
  id: string,
  refs: PackRefs,
  forwards: ReadonlyMap<string, ObjectInfo>,
): Promise<Map<string, ForwardState>> {
  const states = new Map<string, ForwardState>();
  const done = new Set<string>();
  for (let changed = true; changed;) {
    changed = false;
    for (const [pack, { chunks }] of [...refs]) {
      const info = forwards.get(pack);
      if (!info) continue;
      let state = states.get(pack);
      if (!state) {
        state = { key: info.key, missing: [] };
        try {
          state.forward = decodeForward(await store.get(info.key), info.key);
        } catch (err) {
          if (!isCairnError(err, 'CORRUPT') && !isCairnError(err, 'UNSUPPORTED') && !isCairnError(err, 'NOT_FOUND')) throw err;
          state.error = err;
        }
        states.set(pack, state);
      }
      if (!state.forward) continue;
      for (const c of chunks.values()) {
        const seen = `${pack}/${c.offset}+${c.length}:${c.hash}`;
        if (done.has(seen)) continue;
        done.add(seen);
        const to = state.forward.chunks.get(c.hash);
        if (!to || to.length !== c.length) {
          state.missing.push(c);
          continue;
        }
        addRef(refs, info.key, to);
        changed = true;
      }
    }
  }
  return states;
}

/** Whether a resolved forwarding state lets its pack be deleted although referenced. */
export function covers(state: ForwardState | undefined): boolean {
  return !!state?.forward && !state.error && state.missing.length === 0;
}
