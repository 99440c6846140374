/**
 * Many entries landing at once (a batch upload, a copy): what to put, checked before anything
 * changes, so that the journal lands all of it in one operation or none of it.
 *
 * Invariants: directories are created as `mkdirp` creates them (missing ones only, mode 0o755;
 * NOT_A_DIRECTORY when a non-directory is in the way); every entry's numbers are checked as the
 * public API checks them (mode, mtime, size: INVALID_ARGUMENT / TOO_LARGE); copies never share a
 * staging file with their source.
 */
import fs from 'node:fs/promises';
import { CairnError } from '../errors.js';
import { type EntryData, ancestors, normalizePath, parentOf } from '../format/index.js';
import { checkFileEnd, checkInteger, checkMode, checkTimeMs } from '../util/limits.js';
import type { JournalEntry } from './entry.js';
import type { Journal } from './journal.js';
import type { Staging } from './staging.js';

/**
 * The items to put for `mkdirp` of every directory in `dirs`, then every entry (with its missing
 * parents), in order, over the view in `journal`.
 * @example journal.putAll(planPut(journal, ['/out'], [['/out/a.bin', entry]]));
 */
export function planPut(
  journal: Journal,
  dirs: readonly string[],
  entries: readonly (readonly [string, EntryData])[],
): [string, EntryData][] {
  for (const [path, entry] of entries) checkEntryNumbers(path, entry);
  const items: [string, EntryData][] = [];
  // Types of the paths this batch places (earlier items are parents of later ones: a directory
  // put before its children lands with its own mode and mtime, not a made-up one).
  const planned = new Map<string, EntryData['type']>();
  const made = new Set<string>();
  const ensureDir = (d: string): void => {
    for (const a of [...ancestors(d), ...(d === '' ? [] : [d])]) {
      if (made.has(a)) continue;
      const type = planned.get(a) ?? journal.get(a)?.type;
      if (type && type !== 'directory') throw new CairnError('NOT_A_DIRECTORY', `/${a} is not a directory`, { path: `/${a}` });
      if (!type) items.push([a, { type: 'directory', mode: 0o755, mtimeMs: Date.now(), size: 0 }]);
      made.add(a);
    }
  };
  for (const d of dirs) ensureDir(normalizePath(d));
  for (const [path, entry] of entries) {
    const p = normalizePath(path);
    ensureDir(parentOf(p));
    items.push([p, entry]);
    planned.set(p, entry.type);
    made.delete(p); // a file placed over an ensured directory is no parent any more
  }
  return items;
}

/**
 * The items that copy `e` (at `src`, with its subtree) to `dst`: committed data by reference,
 * staged data into new staging files.
 */
export async function planCopy(journal: Journal, staging: Staging, e: JournalEntry, src: string, dst: string) {
  const all = [e, ...(e.type === 'directory' ? journal.descendants(src) : [])];
  const copies: [string, EntryData & { staged?: string }][] = [];
  for (const m of all) {
    // A copy is a new, independent file: no inode id (hard links) of its source.
    const { path: _p, staged, ino: _ino, ...data } = m;
    let copyStaged: string | undefined;
    if (staged) {
      copyStaged = await staging.create(() => {});
      await fs.copyFile(staging.pathOf(staged), staging.pathOf(copyStaged));
    }
    copies.push([dst + m.path.slice(src.length), copyStaged ? { ...data, staged: copyStaged } : data]);
  }
  return copies;
}

/** The numbers of an entry handed to putEntries: mode, mtime, size (INVALID_ARGUMENT / TOO_LARGE). */
function checkEntryNumbers(path: string, e: EntryData): void {
  const ctx = { path: String(path) };
  checkMode(e.mode, ctx);
  checkTimeMs(e.mtimeMs, 'mtime', ctx);
  checkFileEnd(checkInteger(e.size, 'size', { min: 0 }, ctx), ctx);
}
