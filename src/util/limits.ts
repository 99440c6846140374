/**
 * The numeric limits of Cairn and the one place that checks the numbers its public API takes
 * (byte offsets, lengths, file sizes, modes, times, seqs, counts).
 *
 * Invariants: a value that passes these checks is a safe integer (or, for times, a finite number)
 * within its range, so that no later arithmetic overflows or loses precision; a bad value is
 * INVALID_ARGUMENT and a file size or write end past MAX_FILE_SIZE is TOO_LARGE (EFBIG at the
 * mount); callers check before they change anything. Internals trust checked values.
 */
import { CairnError, type ErrorContext } from '../errors.js';

/**
 * The largest file Cairn stores: 1 TiB (2^40 bytes). Larger files would list over a million
 * chunks in one entry, and every commit record and checkpoint holds whole entries; it also keeps
 * every offset plus length far below 2^53 and within what staging file systems (ext4: 16 TiB)
 * hold. docs/SEMANTICS.md states it.
 */
export const MAX_FILE_SIZE = 2 ** 40;

/** Unix permission bits and the set-id/sticky bits: the only mode bits an entry stores. */
export const MODE_BITS = 0o7777;

/** The range of a JavaScript Date, in ms from the epoch (±100,000,000 days). */
const MAX_TIME_MS = 8.64e15;

const describe = (v: unknown): string =>
  typeof v === 'number' ? String(v) : typeof v === 'bigint' ? `${v}n` : (JSON.stringify(v) ?? String(v));

/**
 * Checks that `value` is a safe integer in `[min, max]`: INVALID_ARGUMENT otherwise.
 * @example const n = checkInteger(opts.limit, 'limit', { min: 1 });
 */
export function checkInteger(value: unknown, what: string, range: { min?: number; max?: number } = {}, context: ErrorContext = {}): number {
  const min = range.min ?? 0;
  const max = range.max ?? Number.MAX_SAFE_INTEGER;
  const limit = max === MAX_FILE_SIZE ? `${max} (the maximum file size)` : String(max);
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new CairnError('INVALID_ARGUMENT', `invalid ${what} ${describe(value)}`, {
      ...context,
      hint: `${what} must be an integer from ${min} to ${limit}`,
    });
  }
  return value;
}

/**
 * A byte offset or length of a read: an integer from 0 to MAX_FILE_SIZE (INVALID_ARGUMENT).
 * @example checkByteCount(offset, 'offset', { path: '/a' });
 */
export function checkByteCount(value: unknown, what: string, context: ErrorContext = {}): number {
  return checkInteger(value, what, { min: 0, max: MAX_FILE_SIZE }, context);
}

/**
 * The one byte-range check: true when `offset` and `length` are safe integers from 0 to `max`
 * (default MAX_FILE_SIZE: what `checkByteCount` accepts; stores pass Number.MAX_SAFE_INTEGER).
 * For paths that must not throw; `checkByteRange` throws.
 * @example if (!isByteRange(offset, length)) return undefined;
 */
export function isByteRange(offset: unknown, length: unknown, max = MAX_FILE_SIZE): boolean {
  const ok = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= max;
  return ok(offset) && ok(length);
}

/**
 * INVALID_ARGUMENT unless `isByteRange(offset, length, max)`; `what` names the thing read.
 * @example checkByteRange(range.offset, range.length, { what: `for ${key}`, max: Number.MAX_SAFE_INTEGER, context: { key } });
 */
export function checkByteRange(
  offset: unknown,
  length: unknown,
  options: { what?: string; max?: number; context?: ErrorContext } = {},
): void {
  const max = options.max ?? MAX_FILE_SIZE;
  if (isByteRange(offset, length, max)) return;
  const range = `offset=${describe(offset)} length=${describe(length)}`;
  throw new CairnError('INVALID_ARGUMENT', `invalid byte range ${range}${options.what ? ` ${options.what}` : ''}`, {
    ...options.context,
    hint:
      max === MAX_FILE_SIZE
        ? `offset and length are integers from 0 to ${max} (the maximum file size)`
        : 'offset and length are non-negative integers',
  });
}

/**
 * The size a file would have after a write or truncate: TOO_LARGE past MAX_FILE_SIZE.
 * `end` must already be a checked integer (or a sum of checked integers).
 * @example checkFileEnd(offset + data.length, { path: '/a' });
 */
export function checkFileEnd(end: number, context: ErrorContext = {}): number {
  if (end > MAX_FILE_SIZE) {
    const max = `${MAX_FILE_SIZE} bytes, 1 TiB`;
    throw new CairnError('TOO_LARGE', `a file of ${end} bytes would exceed the maximum file size (${max})`, {
      ...context,
      size: end,
      maxFileSize: MAX_FILE_SIZE,
      hint: 'split the data into several files',
    });
  }
  return end;
}

/**
 * A file size (truncate): an integer ≥ 0 (INVALID_ARGUMENT), at most MAX_FILE_SIZE (TOO_LARGE, also
 * for an integer past the safe range).
 * @example checkFileSize(size, { path: '/a' });
 */
export function checkFileSize(size: unknown, context: ErrorContext = {}): number {
  return checkFileEnd(checkPosition(size, 'size', context), context);
}

/**
 * A byte position (a size, a write's offset): a safe integer ≥ 0 (INVALID_ARGUMENT), except that
 * an integer past the safe range is a position past MAX_FILE_SIZE (TOO_LARGE): the kernel passes
 * 64-bit offsets, and an lseek to 2^60 then a write must fail with EFBIG, as on a local disk.
 */
function checkPosition(value: unknown, what: string, context: ErrorContext): number {
  if (typeof value === 'number' && Number.isInteger(value) && value > MAX_FILE_SIZE) checkFileEnd(value, context);
  return checkInteger(value, what, { min: 0 }, context);
}

/**
 * A byte offset of a write: an integer ≥ 0 (INVALID_ARGUMENT) whose write of `length` bytes ends
 * at most at MAX_FILE_SIZE (TOO_LARGE; an offset past the safe integers is TOO_LARGE too).
 * @example checkWriteRange(offset, data.length, { path: '/a' });
 */
export function checkWriteRange(offset: unknown, length: number, context: ErrorContext = {}): number {
  return checkFileEnd(checkPosition(offset, 'offset', context) + length, context) - length;
}

/**
 * Permission bits: an integer from 0 to 0o7777 (callers strip the file-type bits first).
 * @example checkMode(0o644);
 */
export function checkMode(mode: unknown, context: ErrorContext = {}): number {
  if (typeof mode !== 'number' || !Number.isSafeInteger(mode) || mode < 0 || mode > MODE_BITS) {
    throw new CairnError('INVALID_ARGUMENT', `invalid mode ${describe(mode)}`, {
      ...context,
      hint: 'a mode is an integer from 0 to 0o7777, e.g. 0o644',
    });
  }
  return mode;
}

/**
 * A time in ms since the epoch: a finite number within a Date's range (times before 1970 are
 * negative and valid). Returns it rounded to whole ms, as entries store it.
 * @example const ms = checkTimeMs(Date.parse('2026-01-01'));
 */
export function checkTimeMs(ms: unknown, what = 'time', context: ErrorContext = {}): number {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || Math.abs(ms) > MAX_TIME_MS) {
    throw new CairnError('INVALID_ARGUMENT', `invalid ${what} ${describe(ms)}`, {
      ...context,
      hint: `${what} is in milliseconds since the epoch (a finite number, e.g. Date.now())`,
    });
  }
  return Math.round(ms);
}
