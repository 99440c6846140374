/**
 * Hard links in a session's view: one file under several names.
 *
 * A file with more than one name carries an inode id (`ino`, format 4: docs/FORMAT.md), a random
 * 128-bit hex string given when its second name is made; every entry with that id is a name of
 * the one file. The view keeps every name holding the same entry (../session/view.ts copies an
 * entry set through one name to the others) and the journal records a pending put of every name
 * with each change (../session/journal.ts), so a commit record holds the whole file and applying
 * a record keeps the names equal: the last put of any name sets the file for all of them (the
 * last-writer-wins rule of links, docs/SEMANTICS.md).
 *
 * Invariants: directories never have an inode id; an id, once given, stays with the file (a
 * rename keeps it, the last name keeps it at a link count of 1); the link count is the number of
 * names but those libfuse hides open unlinked files under (`.fuse_hidden*`, never committed).
 */
import crypto from 'node:crypto';
import { CairnError } from '../errors.js';
import { isHiddenName } from '../format/index.js';
import type { JournalEntry } from './entry.js';
import type { Journal } from './journal.js';
import type { EntryIn } from './view.js';

/** A new inode id: 128 random bits in lowercase hex. */
export function newInodeId(): string {
  return crypto.randomBytes(16).toString('hex');
}

/**
 * The link count of a file: its names, `.fuse_hidden*` ones aside (at least 1).
 * @example const n = linkCount(journal, journal.get('a')!);
 */
export function linkCount(journal: Journal, e: JournalEntry): number {
  if (e.ino === undefined) return 1;
  return Math.max(1, journal.names(e.ino).filter((p) => !isHiddenName(p)).length);
}

/**
 * The journal items that make `dst` a new name of `e` (at `src`): both names with the same inode
 * id (a new one when `e` had none) and a ctime of `now`. NOT_PERMITTED for a directory (link(2)'s
 * EPERM), ALREADY_EXISTS when `dst` exists (`existing`).
 * @example journal.putAll(planLink(e, 'a', 'b', journal.get('b'), Date.now()), touch);
 */
export function planLink(e: JournalEntry, src: string, dst: string, existing: JournalEntry | undefined, now: number): [string, EntryIn][] {
  if (e.type === 'directory') {
    throw new CairnError('NOT_PERMITTED', `/${src} is a directory: directories cannot be hard-linked`, {
      path: `/${src}`,
      hint: 'link the files inside it, or use a symlink',
    });
  }
  if (existing) throw new CairnError('ALREADY_EXISTS', `/${dst} already exists`, { path: `/${dst}` });
  const { path: _path, ...data } = e;
  const entry: EntryIn = { ...data, ino: e.ino ?? newInodeId(), ctimeMs: now };
  return [
    [src, entry],
    [dst, entry],
  ];
}
