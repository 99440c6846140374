/**
 * An entry as the session's journal stores it, and the comparisons the journal needs when a
 * record lands on the view.
 *
 * Invariant: a `JournalEntry` is the committed `EntryData` of a path plus, when the file was
 * written in this session, the name of its staging file (session-local: `entryData` strips it
 * before anything leaves the session).
 */
import type { EntryData, Stat } from '../format/index.js';

/** An entry as the journal stores it: the committed data, or a staging file for written data. */
export interface JournalEntry extends EntryData {
  path: string;
  /** Name of the staging file holding this file's data, when it was written in this session. */
  staged?: string;
}

/**
 * Strips session-local fields: what a record or checkpoint stores of an entry.
 * @example const data = entryData(journal.get('a.txt')!);
 */
export function entryData(e: JournalEntry): EntryData {
  const d: EntryData = { type: e.type, mode: e.mode, mtimeMs: e.mtimeMs, size: e.size };
  if (e.chunks) d.chunks = e.chunks;
  if (e.inline) d.inline = e.inline;
  if (e.target !== undefined) d.target = e.target;
  return d;
}

/** Whether two entries hold the same bytes (type, size, and inline data or chunk hashes). */
export function sameContent(a: EntryData, b: EntryData): boolean {
  if (a.type !== b.type || a.size !== b.size) return false;
  if (a.inline || b.inline) return !!a.inline && !!b.inline && a.inline.equals(b.inline);
  const ca = a.chunks ?? [];
  const cb = b.chunks ?? [];
  return ca.length === cb.length && ca.every((r, i) => r.hash === cb[i]!.hash);
}

/** Whether the journal's entry `cur` already holds exactly `e` (as the journal stores it: whole ms). */
export function sameEntry(cur: JournalEntry, e: EntryData): boolean {
  if (cur.staged || cur.type !== e.type || cur.mode !== e.mode || cur.mtimeMs !== Math.round(e.mtimeMs) || cur.size !== e.size)
    return false;
  if (cur.target !== e.target || !cur.inline !== !e.inline || (cur.inline && !cur.inline.equals(e.inline!))) return false;
  const a = cur.chunks ?? [];
  const b = e.chunks ?? [];
  return (
    a.length === b.length &&
    a.every((r, i) => r.hash === b[i]!.hash && r.pack === b[i]!.pack && r.offset === b[i]!.offset && r.length === b[i]!.length)
  );
}

/**
 * What `stat` reports of an entry.
 * @example const st = toStat(journal.get('a.txt')!);
 */
export function toStat(e: JournalEntry): Stat {
  const s: Stat = { path: e.path, type: e.type, mode: e.mode, size: e.size, mtimeMs: e.mtimeMs };
  if (e.target !== undefined) s.target = e.target;
  return s;
}
