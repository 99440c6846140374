/**
 * The POSIX rules of an entry's metadata, as pure functions from an entry (and the caller's
 * credentials) to the changed entry: owner and group of new entries (setgid directories pass
 * their group down), chown and chmod permissions, clearing setuid/setgid, ctime, and extended
 * attributes.
 *
 * Where the checks live: a mount runs with the kernel's `default_permissions`, so the kernel
 * checks access by mode bits and runs the same chown/chmod rules (setattr_prepare) before the
 * daemon sees a request; it also turns "clear setuid/setgid" on write and chown into a setattr of
 * the mode. The session applies these rules again when it is given the caller's credentials
 * (the FUSE request's uid/gid/groups, or a library caller's), because it is the one place that
 * holds the entry's current owner and mode inside the same journal operation as the change, and
 * because library sessions have no kernel in front of them. A call without credentials acts with
 * full rights (root), as the library always has.
 *
 * Invariant: every function returns a new entry (journal entries are frozen) or throws a typed
 * CairnError (NOT_PERMITTED, NO_ATTRIBUTE, ALREADY_EXISTS, TOO_LARGE, INVALID_ARGUMENT) and
 * changes nothing.
 */
import { CairnError } from '../errors.js';
import { type Credentials, MAX_ID, checkXattrName, checkXattrs } from '../format/index.js';
import type { JournalEntry } from './entry.js';
import { DEFAULT_OWNER } from './entry.js';

export const S_ISUID = 0o4000;
export const S_ISGID = 0o2000;
const S_IXGRP = 0o010;
/** `(uid_t)-1`: leave unchanged. */
export const NO_ID = 0xffffffff;

const isRoot = (c: Credentials | undefined): boolean => !c || c.uid === 0;
const inGroup = (c: Credentials, gid: number): boolean => c.gid === gid || !!c.groups?.includes(gid);
const ownerOf = (e: JournalEntry): number => e.uid ?? DEFAULT_OWNER.uid;
const groupOf = (e: JournalEntry): number => e.gid ?? DEFAULT_OWNER.gid;

function notPermitted(e: JournalEntry, what: string): never {
  throw new CairnError('NOT_PERMITTED', `${what} /${e.path}: operation not permitted`, { path: `/${e.path}` });
}

/**
 * Owner, group and extra mode bits of a new entry made by `cred` in directory `parent`: the
 * caller's uid and gid, or the directory's group when it is setgid (a new directory then is
 * setgid too). Without credentials, no owner is stored (the entry belongs to whoever serves it).
 * @example const o = newOwner(journal.get('dir')!, { uid: 1000, gid: 1000 }, true);
 */
export function newOwner(
  parent: JournalEntry | undefined,
  cred: Credentials | undefined,
  isDir: boolean,
): { uid?: number; gid?: number; modeBits: number } {
  const sgid = !!parent && (parent.mode & S_ISGID) !== 0;
  if (!cred)
    return sgid && parent?.gid !== undefined
      ? { gid: parent.gid, modeBits: isDir ? S_ISGID : 0 }
      : { modeBits: isDir && sgid ? S_ISGID : 0 };
  return { uid: cred.uid, gid: sgid ? groupOf(parent!) : cred.gid, modeBits: isDir && sgid ? S_ISGID : 0 };
}

/** The mode without setuid, and without setgid when it is group-executable (Linux's rule). */
export function killPrivs(mode: number): number {
  let m = mode & ~S_ISUID;
  if ((m & (S_ISGID | S_IXGRP)) === (S_ISGID | S_IXGRP)) m &= ~S_ISGID;
  return m;
}

/**
 * chown(2): `uid`/`gid` of NO_ID (or undefined) stay. Only root changes the owner; the owner may
 * set the group to one of its own groups (NOT_PERMITTED otherwise). A chown of a non-directory
 * clears setuid (and setgid when group-executable); ctime becomes `now`.
 * @example journal.update(p, chownEntry(e, 0, 100, undefined, Date.now()));
 */
export function chownEntry(
  e: JournalEntry,
  uid: number | undefined,
  gid: number | undefined,
  cred: Credentials | undefined,
  now: number,
): JournalEntry {
  const nu = uid === undefined || uid === NO_ID || uid === -1 ? undefined : checkId(uid, 'uid', e);
  const ng = gid === undefined || gid === NO_ID || gid === -1 ? undefined : checkId(gid, 'gid', e);
  if (!isRoot(cred)) {
    const c = cred!;
    if (nu !== undefined && nu !== ownerOf(e)) notPermitted(e, `chown to uid ${nu} of`);
    if ((nu !== undefined || ng !== undefined) && c.uid !== ownerOf(e)) notPermitted(e, 'chown of');
    if (ng !== undefined && ng !== groupOf(e) && !inGroup(c, ng)) notPermitted(e, `chgrp to gid ${ng} of`);
  }
  const out: JournalEntry = { ...e, ctimeMs: now };
  if (nu !== undefined) out.uid = nu;
  if (ng !== undefined) out.gid = ng;
  if ((nu !== undefined || ng !== undefined) && e.type !== 'directory') out.mode = killPrivs(e.mode);
  return out;
}

function checkId(id: number, what: string, e: JournalEntry): number {
  if (!Number.isSafeInteger(id) || id < 0 || id > MAX_ID) {
    throw new CairnError('INVALID_ARGUMENT', `invalid ${what} ${id} for /${e.path}`, {
      path: `/${e.path}`,
      hint: `a ${what} is an integer from 0 to ${MAX_ID}`,
    });
  }
  return id;
}

/**
 * chmod(2): only the owner or root (NOT_PERMITTED); a caller outside the file's group loses the
 * setgid bit of a non-directory it sets (Linux). ctime becomes `now`.
 */
export function chmodEntry(e: JournalEntry, mode: number, cred: Credentials | undefined, now: number): JournalEntry {
  let m = mode;
  if (!isRoot(cred)) {
    if (cred!.uid !== ownerOf(e)) notPermitted(e, 'chmod of');
    if (e.type !== 'directory' && !inGroup(cred!, groupOf(e))) m &= ~S_ISGID;
  }
  return { ...e, mode: m, ctimeMs: now };
}

/** A write or truncate by `cred`: mtime and ctime `now` (undefined: kept); a caller other than root clears setuid/setgid. */
export function writtenEntry(e: JournalEntry, cred: Credentials | undefined, now: number | undefined): JournalEntry {
  const out: JournalEntry = now === undefined ? { ...e } : { ...e, mtimeMs: now, ctimeMs: now };
  if (!isRoot(cred)) out.mode = killPrivs(e.mode);
  return out;
}

/** Who may change the attributes of `name`: trusted.* only root; others the owner or root (NOT_PERMITTED). */
function checkXattrWrite(e: JournalEntry, name: string, cred: Credentials | undefined): void {
  if (isRoot(cred)) return;
  if (name.startsWith('trusted.')) notPermitted(e, `setting ${name} on`);
  if (name.startsWith('user.') && e.type !== 'file' && e.type !== 'directory') notPermitted(e, `setting ${name} on`);
}

/**
 * setxattr(2): `flags` 'create' fails ALREADY_EXISTS when the attribute exists, 'replace'
 * NO_ATTRIBUTE when it does not; names and sizes are checked (../format/xattrs.ts); ctime `now`.
 * @example journal.update(p, setXattr(e, 'user.a', Buffer.from('1'), undefined, undefined, Date.now()));
 */
export function setXattr(
  e: JournalEntry,
  name: string,
  value: Buffer,
  flags: 'create' | 'replace' | undefined,
  cred: Credentials | undefined,
  now: number,
): JournalEntry {
  checkXattrName(name, e.path);
  if (!Buffer.isBuffer(value)) throw new CairnError('INVALID_ARGUMENT', 'an attribute value is a Buffer', { path: `/${e.path}` });
  checkXattrWrite(e, name, cred);
  const has = e.xattrs?.[name] !== undefined;
  if (flags === 'create' && has) throw new CairnError('ALREADY_EXISTS', `/${e.path} already has attribute ${name}`, { path: `/${e.path}` });
  if (flags === 'replace' && !has) throw noAttribute(e, name);
  const xattrs = { ...e.xattrs, [name]: Buffer.from(value) };
  checkXattrs(xattrs, e.path);
  return { ...e, xattrs, ctimeMs: now };
}

/** removexattr(2): NO_ATTRIBUTE when absent; ctime `now`. */
export function removeXattr(e: JournalEntry, name: string, cred: Credentials | undefined, now: number): JournalEntry {
  checkXattrName(name, e.path);
  if (e.xattrs?.[name] === undefined) throw noAttribute(e, name);
  checkXattrWrite(e, name, cred);
  const xattrs = { ...e.xattrs };
  delete xattrs[name];
  const out: JournalEntry = { ...e, ctimeMs: now };
  if (Object.keys(xattrs).length) out.xattrs = xattrs;
  else delete out.xattrs;
  return out;
}

/** getxattr(2): the value (a copy), NO_ATTRIBUTE when absent; trusted.* reads as absent to non-root callers. */
export function getXattr(e: JournalEntry, name: string, cred?: Credentials): Buffer {
  checkXattrName(name, e.path);
  const v = e.xattrs?.[name];
  if (v === undefined || (name.startsWith('trusted.') && !isRoot(cred))) throw noAttribute(e, name);
  return Buffer.from(v);
}

/** listxattr(2): the names, sorted (trusted.* only for root). */
export function listXattrs(e: JournalEntry, cred?: Credentials): string[] {
  return Object.keys(e.xattrs ?? {})
    .filter((n) => isRoot(cred) || !n.startsWith('trusted.'))
    .sort();
}

function noAttribute(e: JournalEntry, name: string): CairnError {
  return new CairnError('NO_ATTRIBUTE', `/${e.path} has no attribute ${name}`, { path: `/${e.path}` });
}
