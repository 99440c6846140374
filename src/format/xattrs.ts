/**
 * Extended attributes of an entry: their namespaces, their size limits, the one check a caller's
 * attributes pass (typed errors) and the one decoder of stored ones (Damage).
 *
 * Invariants: a name is `user.`, `trusted.` or `security.` followed by at least one byte, without
 * NUL, at most XATTR_LIMITS.name bytes (Linux's XATTR_NAME_MAX); a value is at most
 * XATTR_LIMITS.value bytes; names plus values of one entry are at most XATTR_LIMITS.total bytes.
 * (`system.` attributes, POSIX ACLs, are not stored: the kernel's own permission checks are the
 * only ones a mount has.)
 */
import { CairnError } from '../errors.js';
import { damaged, object, str } from './wire.js';

export type Xattrs = Record<string, Buffer>;

/** Bytes: a name, a value, and all names plus values of one entry. */
export const XATTR_LIMITS = { name: 255, value: 64 << 10, total: 256 << 10 } as const;
export const XATTR_NAMESPACES = ['user.', 'trusted.', 'security.'] as const;

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Whether a name is in one of the namespaces, with something after the prefix.
 * @example inXattrNamespace('system.posix_acl_access'); // false: `cp -a` asks, the answer is ENOTSUP
 */
export function inXattrNamespace(name: string): boolean {
  return XATTR_NAMESPACES.some((p) => name.length > p.length && name.startsWith(p));
}

/** Why a name is not storable (undefined when it is), and whether that is its length. */
function nameProblem(name: string): { why: string; tooLong?: boolean } | undefined {
  if (!inXattrNamespace(name))
    return { why: `attribute name ${JSON.stringify(name)} is not in the user., trusted. or security. namespace` };
  if (name.includes('\0')) return { why: 'attribute name contains NUL' };
  if (Buffer.byteLength(name) > XATTR_LIMITS.name) return { why: `attribute name longer than ${XATTR_LIMITS.name} bytes`, tooLong: true };
  return undefined;
}

/**
 * Checks one attribute name: INVALID_ARGUMENT outside the namespaces (or with NUL), TOO_LARGE past 255 bytes.
 * @example checkXattrName('user.mime_type');
 */
export function checkXattrName(name: unknown, path = ''): string {
  if (typeof name !== 'string') throw new CairnError('INVALID_ARGUMENT', 'an attribute name is a string', { path: `/${path}` });
  const p = nameProblem(name);
  if (p)
    throw new CairnError(p.tooLong ? 'TOO_LARGE' : 'INVALID_ARGUMENT', `/${path}: ${p.why}`, {
      path: `/${path}`,
      hint: 'names are user.*, trusted.* or security.*, at most 255 bytes',
    });
  return name;
}

/**
 * Checks a whole set of attributes: each name (checkXattrName), each value at most 64 KiB and all
 * of them at most 256 KiB (TOO_LARGE).
 * @example checkXattrs({ 'user.a': Buffer.from('1') }, 'dir/f');
 */
export function checkXattrs(x: Xattrs, path = ''): void {
  let total = 0;
  for (const [name, value] of Object.entries(x)) {
    checkXattrName(name, path);
    if (!Buffer.isBuffer(value))
      throw new CairnError('INVALID_ARGUMENT', `/${path}: attribute ${name} is not a Buffer`, { path: `/${path}` });
    if (value.length > XATTR_LIMITS.value) {
      throw new CairnError('TOO_LARGE', `/${path}: attribute ${name} holds ${value.length} bytes, more than ${XATTR_LIMITS.value}`, {
        path: `/${path}`,
      });
    }
    total += Buffer.byteLength(name) + value.length;
  }
  if (total > XATTR_LIMITS.total) {
    throw new CairnError('TOO_LARGE', `/${path}: the attributes take ${total} bytes, more than ${XATTR_LIMITS.total}`, {
      path: `/${path}`,
      hint: 'remove attributes first',
    });
  }
}

/** The stored form: name -> base64, names sorted (one encoding for one set). */
export function encodeXattrs(x: Xattrs): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of Object.keys(x).sort()) out[name] = x[name]!.toString('base64');
  return out;
}

/** Decodes stored attributes, or throws Damage (bad names, base64, or sizes past the limits). */
export function decodeXattrs(v: unknown): Xattrs | undefined {
  const o = object(v, 'xattrs');
  const out: Xattrs = {};
  let total = 0;
  for (const [name, b64v] of Object.entries(o)) {
    const p = nameProblem(name);
    if (p) damaged(p.why);
    const b64 = str(b64v, `attribute ${name}`);
    if (b64.length % 4 !== 0 || !BASE64_RE.test(b64)) damaged(`attribute ${name} is not base64`);
    const value = Buffer.from(b64, 'base64');
    if (value.length > XATTR_LIMITS.value) damaged(`attribute ${name} holds ${value.length} bytes`);
    total += Buffer.byteLength(name) + value.length;
    out[name] = value;
  }
  if (total > XATTR_LIMITS.total) damaged(`attributes take ${total} bytes`);
  return Object.keys(out).length ? out : undefined;
}

/** Whether two attribute sets are equal (absent = empty). */
export function sameXattrs(a: Xattrs | undefined, b: Xattrs | undefined): boolean {
  const ka = Object.keys(a ?? {});
  if (ka.length !== Object.keys(b ?? {}).length) return false;
  return ka.every((k) => b?.[k] !== undefined && a![k]!.equals(b[k]!));
}
