/**
 * Validation and normalisation of volume paths and volume names, done once at the public edge.
 *
 * A normalised path has no leading or trailing `/`, no empty, `.` or `..` segments and no NUL;
 * the root is `''`. Volume names follow Modal's rule: 1 to 63 characters of letters, digits,
 * `-`, `.` and `_`. A name longer than NAME_MAX or a path longer than PATH_MAX bytes is
 * NAME_TOO_LONG (ENAMETOOLONG at the mount); any other bad path is INVALID_ARGUMENT.
 */
import { CairnError } from '../errors.js';

/** The longest name (path component) and path, in bytes, as Linux's NAME_MAX and PATH_MAX. */
export const NAME_MAX = 255;
export const PATH_MAX = 4096;
/**
 * Volume names: 1-63 of letters, digits, "-", "." and "_", starting with a letter or a digit (so never
 * "." or "..", which cannot be store keys, nor "-x", which reads as a flag).
 */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const GLOB_RE = /[*?[\]{}]/;
const LONE_SURROGATE = /\p{Cs}/u;

/** Whether `s` holds a lone UTF-16 surrogate: no UTF-8 encodes it (stored, it would become U+FFFD). */
export function hasLoneSurrogate(s: string): boolean {
  return LONE_SURROGATE.test(s);
}

/** Normalises a volume path ('/a//b/' is not accepted: empty segments are rejected). */
export function normalizePath(input: string, what = 'path'): string {
  if (typeof input !== 'string') {
    throw new CairnError('INVALID_ARGUMENT', `${what} must be a string`, { hint: 'pass a path such as "/data/file.txt"' });
  }
  const bad = (why: string): never => {
    throw new CairnError('INVALID_ARGUMENT', `invalid ${what} ${JSON.stringify(input)}: ${why}`, {
      path: input,
      hint: 'use a /-separated path without "..", "." or empty segments',
    });
  };
  if (input.includes('\0')) bad('contains NUL');
  // Paths are stored as UTF-8: a lone surrogate has no encoding (it would be stored as U+FFFD).
  if (hasLoneSurrogate(input)) bad('contains a lone UTF-16 surrogate (not Unicode text)');
  let p = input.startsWith('/') ? input.slice(1) : input;
  if (p.endsWith('/')) p = p.slice(0, -1);
  if (p === '') return '';
  for (const seg of p.split('/')) {
    if (seg === '') bad('empty segment');
    if (seg === '.' || seg === '..') bad(`"${seg}" segment`);
    if (Buffer.byteLength(seg) > NAME_MAX) tooLong(input, what, `a name longer than ${NAME_MAX} bytes`);
  }
  if (Buffer.byteLength(p) > PATH_MAX) tooLong(input, what, `longer than ${PATH_MAX} bytes`);
  return p;
}

function tooLong(input: string, what: string, why: string): never {
  const shown = JSON.stringify(input.length > 64 ? `${input.slice(0, 64)}…` : input);
  throw new CairnError('NAME_TOO_LONG', `invalid ${what} ${shown}: ${why}`, {
    path: input,
    hint: `names are at most ${NAME_MAX} bytes, paths at most ${PATH_MAX} bytes`,
  });
}

/** Rejects glob characters, which Modal's listdir refuses. */
export function checkNoGlob(path: string): void {
  if (GLOB_RE.test(path)) {
    throw new CairnError('INVALID_ARGUMENT', `glob characters are not supported in ${JSON.stringify(path)}`, {
      path,
      hint: 'list the directory and filter the entries yourself',
    });
  }
}

/** Throws INVALID_ARGUMENT unless `name` is a valid volume name. */
export function checkVolumeName(name: string): string {
  if (typeof name !== 'string' || !NAME_RE.test(name)) {
    throw new CairnError('INVALID_ARGUMENT', `invalid volume name ${JSON.stringify(name)}`, {
      volume: String(name),
      hint: 'names are 1-63 characters of letters, digits, "-", "." and "_" that start with a letter or a digit',
    });
  }
  return name;
}

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/**
 * Whether `path` is a name a mount keeps an open, unlinked file under (`.fuse_hidden…`, as libfuse
 * does): local to that mount, never published by a commit, left out of the paths a commit reports.
 * @example isHiddenName('d/.fuse_hidden0000000100000001'); // true
 */
export function isHiddenName(path: string): boolean {
  return baseName(path).startsWith(HIDDEN_PREFIX);
}

/** How the names of a mount's open, unlinked files begin (src/fuse/lowlevel-names.ts makes them). */
export const HIDDEN_PREFIX = '.fuse_hidden';

export function joinPath(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/** True when `path` is `dir` itself or inside it. */
export function isWithin(path: string, dir: string): boolean {
  return dir === '' || path === dir || path.startsWith(`${dir}/`);
}

/** Every proper ancestor of `path`, nearest to the root first, excluding the root. */
export function ancestors(path: string): string[] {
  const out: string[] = [];
  let i = path.indexOf('/');
  while (i >= 0) {
    out.push(path.slice(0, i));
    i = path.indexOf('/', i + 1);
  }
  return out;
}
