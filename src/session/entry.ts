/**
 * An entry as the session's journal stores it, and the comparisons the journal needs when a
 * record lands on the view.
 *
 * Invariant: a `JournalEntry` is the committed `EntryData` of a path plus, when the file was
 * written in this session, the name of its staging file (session-local: `entryData` strips it
 * before anything leaves the session).
 */
import { type EntryData, type FileEntry, type Stat, sameXattrs } from '../format/index.js';

/**
 * The owner and group reported for entries that store none (written by format 1 or 2, or by the
 * library without credentials): the user and group of this process, i.e. whoever mounts.
 */
export const DEFAULT_OWNER = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };

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
  if (e.uid !== undefined) d.uid = e.uid;
  if (e.gid !== undefined) d.gid = e.gid;
  if (e.atimeMs !== undefined) d.atimeMs = e.atimeMs;
  if (e.ctimeMs !== undefined) d.ctimeMs = e.ctimeMs;
  if (e.rdev !== undefined) d.rdev = e.rdev;
  if (e.xattrs && Object.keys(e.xattrs).length) d.xattrs = e.xattrs;
  if (e.ino !== undefined) d.ino = e.ino;
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
  if (cur.uid !== e.uid || cur.gid !== e.gid || cur.rdev !== e.rdev || !sameXattrs(cur.xattrs, e.xattrs)) return false;
  if (cur.ino !== e.ino) return false;
  const ms = (t: number | undefined) => (t === undefined ? undefined : Math.round(t));
  if (cur.atimeMs !== ms(e.atimeMs) || cur.ctimeMs !== ms(e.ctimeMs)) return false;
  const a = cur.chunks ?? [];
  const b = e.chunks ?? [];
  return (
    a.length === b.length &&
    a.every((r, i) => r.hash === b[i]!.hash && r.pack === b[i]!.pack && r.offset === b[i]!.offset && r.length === b[i]!.length)
  );
}

/**
 * What `stat` reports of an entry: stored fields, defaults for those it does not store (owner:
 * DEFAULT_OWNER; atime and ctime: its mtime), and `nlink` (directories: 2 + `subdirs`; others:
 * `names`, the names of a hard-linked file).
 * @example const st = toStat(journal.get('a.txt')!);
 */
export function toStat(e: JournalEntry, subdirs = 0, names = 1): Stat {
  const s: Stat = {
    path: e.path,
    type: e.type,
    mode: e.mode,
    size: e.size,
    mtimeMs: e.mtimeMs,
    atimeMs: e.atimeMs ?? e.mtimeMs,
    ctimeMs: e.ctimeMs ?? e.mtimeMs,
    uid: e.uid ?? DEFAULT_OWNER.uid,
    gid: e.gid ?? DEFAULT_OWNER.gid,
    nlink: e.type === 'directory' ? 2 + subdirs : names,
  };
  if (e.ino !== undefined) s.linkId = e.ino;
  if (e.rdev !== undefined) s.rdev = e.rdev;
  if (e.target !== undefined) s.target = e.target;
  return s;
}

/**
 * The library's FileEntry of a Stat (times in whole seconds, as Modal's).
 * @example const entries = (await s.readdir('/')).map(toFileEntry);
 */
export function toFileEntry(s: Stat): FileEntry {
  const sec = (ms: number) => Math.floor(ms / 1000);
  return {
    path: s.path,
    type: s.type,
    mtime: sec(s.mtimeMs),
    size: s.size,
    mode: s.mode,
    uid: s.uid,
    gid: s.gid,
    nlink: s.nlink,
    atime: sec(s.atimeMs),
    ctime: sec(s.ctimeMs),
  };
}
