/**
 * Validation of object keys, shared by every backend so that none of them ever sees a key that
 * could escape its root (`..`), be truncated (NUL) or alias another key (empty segments).
 */
import { CairnError } from '../errors.js';

const MAX_KEY_BYTES = 1024;

/** Throws INVALID_ARGUMENT unless `key` is a relative, normalised `/`-separated key. */
export function checkKey(key: string, what = 'key'): string {
  const bad = (why: string): never => {
    throw new CairnError('INVALID_ARGUMENT', `invalid object ${what} ${JSON.stringify(key)}: ${why}`, {
      key,
      hint: 'keys are relative paths of non-empty segments without "..", "." or NUL',
    });
  };
  if (typeof key !== 'string' || key.length === 0) bad('empty');
  if (key.includes('\0')) bad('contains NUL');
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) bad(`longer than ${MAX_KEY_BYTES} bytes`);
  if (key.startsWith('/')) bad('absolute');
  for (const segment of key.split('/')) {
    if (segment === '') bad('empty segment');
    if (segment === '..' || segment === '.') bad(`"${segment}" segment`);
  }
  return key;
}

/** Like checkKey, but for list prefixes, which may be empty or end with `/`. */
export function checkPrefix(prefix: string): string {
  if (prefix === '') return prefix;
  checkKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix, 'prefix');
  return prefix;
}
