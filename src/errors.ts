/**
 * The one error class of Cairn, its stable codes, and the one errno table.
 *
 * Invariants: every error Cairn raises on purpose is a `CairnError` whose `code` is one of
 * `ErrorCode`; codes never change meaning (tests and callers switch on them); messages say what
 * to do next; `errnoFor` is exhaustive over the codes (the compiler checks it).
 */

export type ErrorCode =
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'VOLUME_BUSY'
  | 'READ_ONLY'
  | 'CONFLICT'
  | 'CORRUPT'
  | 'INVALID_ARGUMENT'
  | 'TOO_LARGE'
  | 'NAME_TOO_LONG'
  | 'NOT_A_DIRECTORY'
  | 'IS_A_DIRECTORY'
  | 'NOT_EMPTY'
  | 'UNAVAILABLE'
  | 'UNSUPPORTED'
  | 'PERMISSION_DENIED'
  | 'CLOSED'
  | 'PRUNED'
  | 'IO';

export interface ErrorContext {
  volume?: string;
  path?: string;
  key?: string;
  store?: string;
  /** What the user can do about it. */
  hint?: string;
  [extra: string]: unknown;
}

export class CairnError extends Error {
  readonly code: ErrorCode;
  readonly context: ErrorContext;

  constructor(code: ErrorCode, message: string, context: ErrorContext = {}, options: { cause?: unknown } = {}) {
    super(context.hint ? `${message} (${context.hint})` : message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CairnError';
    this.code = code;
    this.context = context;
  }

  /** One line for humans: `CODE: message`. */
  override toString(): string {
    return `${this.code}: ${this.message}`;
  }
}

export function isCairnError(err: unknown, code?: ErrorCode): err is CairnError {
  return err instanceof CairnError && (code === undefined || err.code === code);
}

/** errno values (Linux) used by the FUSE adapter. */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  EBADF: 9,
  EAGAIN: 11,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  EFBIG: 27,
  ENOSPC: 28,
  EROFS: 30,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ENODATA: 61,
  ENOTSUP: 95,
} as const;

const ERRNO: { [C in ErrorCode]: number } = {
  NOT_FOUND: Errno.ENOENT,
  ALREADY_EXISTS: Errno.EEXIST,
  VOLUME_BUSY: Errno.EBUSY,
  READ_ONLY: Errno.EROFS,
  CONFLICT: Errno.EAGAIN,
  CORRUPT: Errno.EIO,
  INVALID_ARGUMENT: Errno.EINVAL,
  TOO_LARGE: Errno.EFBIG,
  NAME_TOO_LONG: Errno.ENAMETOOLONG,
  NOT_A_DIRECTORY: Errno.ENOTDIR,
  IS_A_DIRECTORY: Errno.EISDIR,
  NOT_EMPTY: Errno.ENOTEMPTY,
  UNAVAILABLE: Errno.EIO,
  UNSUPPORTED: Errno.ENOTSUP,
  PERMISSION_DENIED: Errno.EACCES,
  CLOSED: Errno.EBADF,
  PRUNED: Errno.ENOENT,
  IO: Errno.EIO,
};

/** The errno a FUSE callback returns for an error: CairnError codes map through the table, anything else is EIO. */
export function errnoFor(err: unknown): number {
  return err instanceof CairnError ? ERRNO[err.code] : Errno.EIO;
}

/** Wraps an unknown failure as a CairnError (keeps CairnErrors as they are). */
export function asCairnError(err: unknown, code: ErrorCode, message: string, context: ErrorContext = {}): CairnError {
  if (err instanceof CairnError) return err;
  return new CairnError(code, `${message}: ${err instanceof Error ? err.message : String(err)}`, context, { cause: err });
}
