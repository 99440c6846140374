/**
 * A stored entry (the state of one path) and an op of a commit record: their types, the one
 * validator of a stored entry (records and checkpoints share it) and the entry codec.
 *
 * Invariants: a decoded entry's size agrees with its content (inline length, or the sum of its
 * chunk lengths), its chunk refs are well-formed and its type, mode and times in range; the fields
 * of format 3 (owner, group, atime, ctime, rdev, xattrs; device types) appear only in format 3
 * objects; a decoded mode holds permission bits only (0–0o7777: format 1 and 2 objects may hold a
 * whole st_mode, whose type bits are dropped on read); the encoder runs the same validator and
 * refuses (INVALID_ARGUMENT, TOO_LARGE for attributes past their limits) an entry that would not
 * read back. The inode id of format 4 (`ino`) appears only in format 4 objects, never on a directory.
 */
import { CairnError } from '../errors.js';
import { isChunkHash, type ChunkRef } from '../chunks/index.js';
import type { EntryType } from './types.js';
import { isHiddenName, normalizePath } from './paths.js';
import { FORMAT_VERSION, PACK_ID_RE } from './keys.js';
import { Damage, damaged, int, num, object, onlyKeys, str } from './wire.js';
import { type Xattrs, checkXattrs, decodeXattrs, encodeXattrs } from './xattrs.js';

/**
 * The stored state of one path. Times are milliseconds since the epoch (whole ms as a session
 * stores them). `uid`/`gid` absent (format 1 and 2, or an entry written by the library without
 * credentials): owned by whoever serves the volume (the mounting user); `atimeMs`/`ctimeMs`
 * absent: equal to `mtimeMs`.
 */
export interface EntryData {
  type: EntryType;
  /** Permission bits, 0 to 0o7777 (setuid, setgid and sticky included). */
  mode: number;
  mtimeMs: number;
  size: number;
  chunks?: ChunkRef[];
  inline?: Buffer;
  target?: string;
  uid?: number;
  gid?: number;
  atimeMs?: number;
  ctimeMs?: number;
  /** Device number (Linux's encoding, 32 bits), for character and block devices only. */
  rdev?: number;
  /** Extended attributes (./xattrs.ts): name -> value. */
  xattrs?: Xattrs;
  /**
   * Inode identity (format 4): entries with the same `ino` are names of one file (hard links,
   * ../session/links.ts); absent: the entry is its own file.
   */
  ino?: string;
}

/**
 * A record op: `put` sets a path to a whole entry, `delete` removes a subtree, `times` (format 3)
 * sets only the mtime and ctime of an existing entry (a directory whose entries changed), so that
 * it merges with other writers' changes to that entry's other fields.
 */
export type Op =
  | { op: 'put'; path: string; entry: EntryData }
  | { op: 'delete'; path: string }
  | { op: 'times'; path: string; mtimeMs: number; ctimeMs: number };

/**
 * The paths a list of ops changes, as a commit, a reload and `vol.history()` report them: each
 * once (a rename over a name is a delete and a put of it), in order, without `times` ops (a
 * directory's times follow its entries) and without a mount's hidden names (`isHiddenName`).
 * @example changedPaths([{ op: 'delete', path: 'y' }, { op: 'put', path: 'y', entry }]); // ['y']
 */
export function changedPaths(ops: readonly Op[]): string[] {
  return [...new Set(ops.filter((o) => o.op !== 'times' && !isHiddenName(o.path)).map((o) => o.path))];
}

/**
 * Paths of letters, digits, `_`, `-` and `.` whose segments do not start with `.`, at most 255
 * characters: valid by the rules of `normalizePath` at a glance (the common case, and a checkpoint
 * has a million of them); every other path goes through `normalizePath` itself.
 */
const PLAIN_PATH_RE = /^[\w-][\w.-]*(?:\/[\w-][\w.-]*)*$/;

/** A stored path: already normalised (no leading `/`, no empty, `.` or `..` segment, no NUL). */
export function checkPath(v: unknown, what = 'path'): string {
  const p = str(v, what);
  if (p.length <= 255 && PLAIN_PATH_RE.test(p)) return p;
  let norm: string | undefined;
  try {
    norm = normalizePath(p);
  } catch {
    norm = undefined;
  }
  if (norm !== p) damaged(`${what} ${JSON.stringify(p)} is not a valid volume path`);
  return p;
}

const ENTRY_TYPES_V2: readonly EntryType[] = ['file', 'directory', 'symlink', 'fifo', 'socket'];
const ENTRY_TYPES_V3: readonly EntryType[] = [...ENTRY_TYPES_V2, 'chardev', 'blockdev'];
const ENTRY_KEYS_V2 = ['t', 'm', 'mt', 's', 'c', 'i', 'l'];
const ENTRY_KEYS_V3 = [...ENTRY_KEYS_V2, 'u', 'g', 'at', 'ct', 'rd', 'x'];
const ENTRY_KEYS_V4 = [...ENTRY_KEYS_V3, 'ino'];
/** Inode identities: 16 to 64 lowercase hex characters (Cairn makes 32: ../session/links.ts). */
export const INO_RE = /^[0-9a-f]{16,64}$/;
/** Owner and group ids: 32 bits, but for (uid_t)-1, which means "unchanged" to chown(2). */
export const MAX_ID = 0xfffffffe;
const MAX_RDEV = 0xffffffff;
const PERMISSION_BITS = 0o7777;
const isDevice = (t: EntryType): boolean => t === 'chardev' || t === 'blockdev';
/** mtimes within the range of a JS Date (±8.64e15 ms). */
export const MAX_MTIME_MS = 8.64e15;
/** Base64 as Buffer writes it: the alphabet, then up to two `=`; the length a multiple of 4. */
const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

type WireRef = [string, string, number, number];
type WireEntry = {
  t: EntryType;
  m: number;
  mt: number;
  s: number;
  c?: WireRef[];
  i?: string;
  l?: string;
  u?: number;
  g?: number;
  at?: number;
  ct?: number;
  rd?: number;
  x?: Record<string, string>;
  ino?: string;
};

/**
 * The one validator of a stored entry (records and checkpoints): decodes wire entry `w` of `path`,
 * or throws Damage saying what is wrong. Sizes agree with the content (inline length, or the sum
 * of the chunk lengths), chunk refs are well-formed, types, modes and times are in range; the
 * object's format `version` decides which fields and types may appear.
 */
export function checkEntry(w: unknown, path: string, version = FORMAT_VERSION): EntryData {
  try {
    return entryOf(w, path, version);
  } catch (err) {
    if (err instanceof Damage) damaged(`entry of ${JSON.stringify(path)}: ${err.message}`);
    throw err;
  }
}

function entryOf(w: unknown, path: string, version: number): EntryData {
  const o = object(w, 'it');
  const v3 = version >= 3;
  onlyKeys(o, version >= 4 ? ENTRY_KEYS_V4 : v3 ? ENTRY_KEYS_V3 : ENTRY_KEYS_V2, 'it');
  const type = o.t as EntryType;
  if (!(v3 ? ENTRY_TYPES_V3 : ENTRY_TYPES_V2).includes(type)) damaged(`type ${JSON.stringify(o.t)}`);
  if (path === '' && type !== 'directory') damaged(`the root is a ${type}`);
  const e: EntryData = {
    type,
    // Format 1 and 2 writers may have stored a whole st_mode (type bits too): kept as its permission bits.
    mode: v3 ? int(o.m, 'mode', 0, PERMISSION_BITS) : int(o.m, 'mode', 0, 0o177777) & PERMISSION_BITS,
    mtimeMs: num(o.mt, 'mtime', -MAX_MTIME_MS, MAX_MTIME_MS),
    size: int(o.s, 'size'),
  };
  if (o.u !== undefined) e.uid = int(o.u, 'uid', 0, MAX_ID);
  if (o.g !== undefined) e.gid = int(o.g, 'gid', 0, MAX_ID);
  if (o.at !== undefined) e.atimeMs = num(o.at, 'atime', -MAX_MTIME_MS, MAX_MTIME_MS);
  if (o.ct !== undefined) e.ctimeMs = num(o.ct, 'ctime', -MAX_MTIME_MS, MAX_MTIME_MS);
  if (isDevice(type)) e.rdev = int(o.rd, 'rdev', 0, MAX_RDEV);
  else if (o.rd !== undefined) damaged(`a ${type} with a device number`);
  if (o.x !== undefined) {
    const x = decodeXattrs(o.x);
    if (x) e.xattrs = x;
  }
  if (o.ino !== undefined) {
    if (typeof o.ino !== 'string' || !INO_RE.test(o.ino))
      damaged(`inode id ${JSON.stringify(o.ino)} is not 16 to 64 lowercase hex characters`);
    if (type === 'directory') damaged('a directory with an inode id (directories have no hard links)');
    e.ino = o.ino;
  }
  if (v3 && type !== 'file' && type !== 'symlink' && type !== 'directory' && e.size !== 0) damaged(`a ${type} of size ${e.size}`);
  if (type !== 'file' && (o.c !== undefined || o.i !== undefined)) damaged(`a ${type} with file content`);
  if (type !== 'symlink' && o.l !== undefined) damaged(`a ${type} with a symlink target`);
  if (type === 'file') {
    if (o.c !== undefined && o.i !== undefined) damaged('both chunks and inline data');
    if (o.i !== undefined) {
      const b64 = str(o.i, 'inline data');
      if (b64.length % 4 !== 0 || !BASE64_RE.test(b64)) damaged('inline data is not base64');
      e.inline = Buffer.from(b64, 'base64');
      if (e.inline.length !== e.size) damaged(`size ${e.size} but ${e.inline.length} inline bytes`);
    } else if (o.c !== undefined) {
      if (!Array.isArray(o.c)) damaged('chunks is not a list');
      let sum = 0;
      e.chunks = (o.c as unknown[]).map((r, n) => {
        const ref = checkRef(r, n);
        sum += ref.length;
        return ref;
      });
      if (sum !== e.size) damaged(`size ${e.size} but its chunks hold ${sum} bytes`);
    } else if (e.size !== 0) damaged(`size ${e.size} but no content`);
  } else if (type === 'symlink') {
    e.target = str(o.l, 'symlink target', true);
    if (e.target.includes('\0')) damaged('symlink target contains NUL');
    const bytes = Buffer.byteLength(e.target);
    if (bytes !== e.size) damaged(`size ${e.size} but a ${bytes}-byte target`);
  }
  return e;
}

function checkRef(r: unknown, n: number): ChunkRef {
  const what = `chunk ${n}`;
  if (!Array.isArray(r) || r.length !== 4) damaged(`${what} is not [hash, pack, offset, length]`);
  const [hash, pack, offset, length] = r as unknown[];
  if (!isChunkHash(hash)) damaged(`${what}: hash ${JSON.stringify(hash)} is not 64 lowercase hex characters`);
  if (typeof pack !== 'string' || !PACK_ID_RE.test(pack)) {
    damaged(`${what}: pack id ${JSON.stringify(pack)} is malformed`);
  }
  return { hash, pack, offset: int(offset, `${what}: offset`), length: int(length, `${what}: length`) };
}

export function encodeEntry(e: EntryData): WireEntry {
  const w: WireEntry = { t: e.type, m: e.mode, mt: e.mtimeMs, s: e.size };
  if (e.chunks) w.c = e.chunks.map((r) => [r.hash, r.pack, r.offset, r.length]);
  if (e.inline) w.i = e.inline.toString('base64');
  if (e.target !== undefined) w.l = e.target;
  if (e.uid !== undefined) w.u = e.uid;
  if (e.gid !== undefined) w.g = e.gid;
  if (e.atimeMs !== undefined) w.at = e.atimeMs;
  if (e.ctimeMs !== undefined) w.ct = e.ctimeMs;
  if (e.rdev !== undefined) w.rd = e.rdev;
  if (e.xattrs && Object.keys(e.xattrs).length) w.x = encodeXattrs(e.xattrs);
  if (e.ino !== undefined) w.ino = e.ino;
  return w;
}

/**
 * Encodes an entry, refusing one that would not read back (INVALID_ARGUMENT; TOO_LARGE for
 * attributes past their limits; nothing written).
 */
export function encodeChecked(path: string, e: EntryData): WireEntry {
  if (e.xattrs) checkXattrs(e.xattrs, path);
  const w = encodeEntry(e);
  try {
    checkPath(path);
    checkEntry(w, path);
  } catch (err) {
    if (!(err instanceof Damage)) throw err;
    throw new CairnError('INVALID_ARGUMENT', `cannot store /${path}: ${err.message}`, {
      path: `/${path}`,
      hint: 'this is a bug or bad input to putEntries; nothing was written',
    });
  }
  return w;
}

/** Runs a decoder, turning Damage (and anything unexpected) into CORRUPT naming the object. */
export function decoding<T>(what: string, key: string, volume: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof CairnError) throw err;
    const why = err instanceof Damage ? err.message : `it is not readable (${String((err as Error)?.message ?? err)})`;
    throw new CairnError(
      'CORRUPT',
      `${what} ${key} of volume ${volume} is damaged: ${why}`,
      {
        key,
        volume,
        hint: `the object was changed on the store; \`cairn volume verify\` lists every damaged object`,
      },
      { cause: err },
    );
  }
}
