/**
 * The one error class of Cairn, its stable codes, and the one errno table.
 *
 * Invariants: every error Cairn raises on purpose is a `CairnError` whose `code` is one of
 * `ErrorCode`; codes never change meaning (tests and callers switch on them); what to do next is
 * the `hint` (kept in `context.hint`, never inside `message`: whoever prints an error decides how
 * to show it, see `describeError`); `encodeError`/`decodeError` carry an error across a process
 * boundary without losing anything; `errnoFor` is exhaustive over the codes (the compiler checks it).
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
  | 'NOT_PERMITTED'
  | 'NO_ATTRIBUTE'
  | 'CLOSED'
  | 'PRUNED'
  | 'NO_SPACE'
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
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CairnError';
    this.code = code;
    this.context = context;
  }

  /** What the user can do about it (`context.hint`), when known. */
  get hint(): string | undefined {
    return typeof this.context.hint === 'string' ? this.context.hint : undefined;
  }

  /** One line for humans: `CODE: message (hint)`. */
  override toString(): string {
    return `${this.code}: ${describeError(this)}`;
  }
}

/**
 * The message of an error followed by its hint in parentheses: how a log line or a terminal shows
 * it (the CLI rewrites hints first, see cli/hints.ts).
 *
 * @example
 *   describeError(new CairnError('NOT_FOUND', 'no /a', { hint: 'list the directory' })); // "no /a (list the directory)"
 */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const hint = err instanceof CairnError ? err.hint : undefined;
  return hint ? `${err.message} (${hint})` : err.message;
}

/** A CairnError as JSON, to cross a process boundary (a socket, a child's stdout). */
export interface WireError {
  code: ErrorCode;
  message: string;
  /** The context, hint included, without what JSON cannot carry. */
  context: ErrorContext;
  /** The cause's message (its own code and context, if any, are folded into it). */
  cause?: string;
}

/**
 * Encodes an error for JSON: a CairnError as it is; anything else as an `IO` CairnError (with
 * `fallback: ` before its message). `decodeError(encodeError(e))` has e's code, message, context
 * (what JSON can carry of it; an entry that cannot be serialised is dropped, not the whole
 * context) and cause message.
 *
 * @example
 *   process.stdout.write(JSON.stringify({ event: 'error', error: encodeError(err) }));
 */
export function encodeError(err: unknown, fallback = 'failed'): WireError {
  const e = asCairnError(err, 'IO', fallback);
  let context: ErrorContext;
  try {
    context = JSON.parse(JSON.stringify(e.context)) as ErrorContext;
  } catch {
    context = {};
    for (const [k, v] of Object.entries(e.context)) {
      try {
        const json = JSON.stringify(v);
        if (json !== undefined) context[k] = JSON.parse(json) as unknown;
      } catch {
        // not serialisable (a cycle, a BigInt): left out
      }
    }
  }
  const w: WireError = { code: e.code, message: e.message, context };
  if (e.cause !== undefined) w.cause = describeError(e.cause);
  return w;
}

/**
 * Rebuilds the CairnError `encodeError` encoded (its cause as a plain Error with the message).
 *
 * @example
 *   throw decodeError(JSON.parse(line).error);
 */
export function decodeError(w: WireError): CairnError {
  const cause = typeof w.cause === 'string' ? { cause: new Error(w.cause) } : {};
  return new CairnError(w.code, String(w.message), w.context ?? {}, cause);
}

export function isCairnError(err: unknown, code?: ErrorCode): err is CairnError {
  return err instanceof CairnError && (code === undefined || err.code === code);
}

/** errno values (Linux) used by the FUSE adapter. */
export const Errno = {
  EPERM: 1,
  E2BIG: 7,
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
  ERANGE: 34,
  ENODATA: 61,
  EILSEQ: 84,
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
  NOT_PERMITTED: Errno.EPERM,
  NO_ATTRIBUTE: Errno.ENODATA,
  CLOSED: Errno.EBADF,
  PRUNED: Errno.ENOENT,
  NO_SPACE: Errno.ENOSPC,
  IO: Errno.EIO,
};

/**
 * The errno a FUSE callback returns for an error: CairnError codes map through the table, a full
 * local disk is ENOSPC, anything else is EIO.
 */
export function errnoFor(err: unknown): number {
  return err instanceof CairnError ? ERRNO[err.code] : isNoSpace(err) ? Errno.ENOSPC : Errno.EIO;
}

/** Whether `err` says a local disk is full: ENOSPC, EDQUOT, SQLite's SQLITE_FULL, or NO_SPACE. */
export function isNoSpace(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL' || code === 'NO_SPACE';
}

/** Wraps an unknown failure as a CairnError (keeps CairnErrors as they are); a full disk is NO_SPACE whatever `code`. */
export function asCairnError(err: unknown, code: ErrorCode, message: string, context: ErrorContext = {}): CairnError {
  if (err instanceof CairnError) return err;
  const full = isNoSpace(err);
  const ctx =
    full && !context.hint ? { ...context, hint: 'free space on the local disk (the session directory, the chunk cache)' } : context;
  return new CairnError(full ? 'NO_SPACE' : code, `${message}: ${err instanceof Error ? err.message : String(err)}`, ctx, { cause: err });
}
