/**
 * The FUSE adapter's metadata operations: chown, mknod of special files, and extended
 * attributes, translated to the session's calls (absent on sessions that store no owners or
 * attributes: then chown accepts only "no change", mknod only regular files, xattrs ENOTSUP).
 *
 * Invariant: as in ./adapter.ts, every callback is answered once with 0, a value or a negative
 * errno; xattr calls map sizes past the limits to E2BIG (a value) or ERANGE (a name), names
 * outside the user./trusted./security. namespaces to ENOTSUP.
 */
import { CairnError, Errno, errnoFor } from '../errors.js';
import type { Credentials, EntryType, FsSession } from '../format/types.js';
import { inXattrNamespace } from '../format/xattrs.js';

type Cb = (code: number, ...result: unknown[]) => void;
type Run = <T>(op: string, path: string, cb: Cb, work: () => Promise<T>, ok?: (v: T) => void) => void;

/** The file-type bits of st_mode for each entry type. */
export const TYPE_BITS: Record<EntryType, number> = {
  file: 0o100000,
  directory: 0o040000,
  symlink: 0o120000,
  fifo: 0o010000,
  socket: 0o140000,
  chardev: 0o020000,
  blockdev: 0o060000,
};

/** `(uid_t)-1`: "leave unchanged" in chown. */
const NO_ID = 0xffffffff;

/** mknod's file type bits -> entry type (undefined: not one a volume stores). */
function typeOfMode(mode: number): EntryType | undefined {
  const bits = mode & 0o170000;
  return (Object.keys(TYPE_BITS) as EntryType[]).find((t) => TYPE_BITS[t] === bits && t !== 'directory' && t !== 'symlink');
}

/** setxattr(2) flags. */
const XATTR_CREATE = 1;
const XATTR_REPLACE = 2;

/** The errno of an xattr call: sizes past the limits E2BIG, names outside the namespaces ENOTSUP. */
function xattrErrno(err: unknown): number {
  if (err instanceof CairnError && err.code === 'TOO_LARGE') return /name/.test(err.message) ? Errno.ERANGE : Errno.E2BIG;
  if (err instanceof CairnError && err.code === 'INVALID_ARGUMENT') return Errno.ENOTSUP;
  return errnoFor(err);
}

/**
 * The metadata ops of a mount of `session`; `h` lends the adapter's runner, its read-only check
 * and the owner a session without owners reports.
 * @example const ops = { ...metadataOps(session, { run, rofs, uid: 0, gid: 0 }) };
 */
export function metadataOps(
  session: FsSession,
  h: { run: Run; rofs: (cb: Cb) => boolean; uid: number; gid: number; onError?: (op: string, path: string, err: unknown) => void },
): Record<string, (...args: any[]) => void> {
  const { run, rofs, uid, gid } = h;
  const opts = { onError: h.onError };
  /** Runs an xattr call of the session (ENOTSUP when it has none), with xattr errnos. */
  function xattr<T>(path: string, cb: Cb, work: (() => Promise<T>) | undefined, ok: (v: T) => void = () => cb(0)): void {
    if (!work) return cb(-Errno.ENOTSUP);
    work().then(ok, (err: unknown) => {
      if (!(err instanceof CairnError) && opts.onError) opts.onError('xattr', path, err);
      cb(-xattrErrno(err));
    });
  }

  return {
    chown(path: string, newUid: number, newGid: number, cb: Cb) {
      if (rofs(cb)) return;
      if (session.chown) {
        // No credentials: the kernel (default_permissions) already applied chown's rules to the caller.
        const chown = session.chown.bind(session);
        return run('chown', path, cb, () => chown(path, newUid, newGid));
      }
      // A session that stores no owners: accept "no change", refuse anything else.
      const same = (newUid === NO_ID || newUid === uid) && (newGid === NO_ID || newGid === gid);
      run(
        'chown',
        path,
        cb,
        () => session.stat(path),
        () => cb(same ? 0 : -Errno.EPERM),
      );
    },

    setxattr(path: string, name: string, value: Buffer, _position: number, flags: number, cb: Cb, cred?: Credentials) {
      if (rofs(cb)) return;
      // A name outside the namespaces (`cp -a` sets system.posix_acl_access on every file it copies)
      // is refused as the session would refuse it, without an error object and a promise each.
      if (!inXattrNamespace(name)) return cb(-Errno.ENOTSUP);
      const how = flags & XATTR_CREATE ? 'create' : flags & XATTR_REPLACE ? 'replace' : undefined;
      xattr(path, cb, session.setxattr && (() => session.setxattr!(path, name, Buffer.from(value), how, cred)));
    },

    getxattr(path: string, name: string, _position: number, cb: Cb, cred?: Credentials) {
      xattr(path, cb, session.getxattr && (() => session.getxattr!(path, name, cred)), (v) => cb(0, v));
    },

    listxattr(path: string, cb: Cb, cred?: Credentials) {
      xattr(path, cb, session.listxattr && (() => session.listxattr!(path, cred)), (v) => cb(0, v));
    },

    removexattr(path: string, name: string, cb: Cb, cred?: Credentials) {
      if (rofs(cb)) return;
      xattr(path, cb, session.removexattr && (() => session.removexattr!(path, name, cred)));
    },

    mknod(path: string, mode: number, dev: number, cb: Cb, cred?: Credentials) {
      if (rofs(cb)) return;
      const type = typeOfMode(mode);
      if (type === 'file') return run('mknod', path, cb, () => session.create(path, mode & 0o7777, cred));
      if (!type || !session.mknod) return cb(-Errno.EPERM);
      const mknod = session.mknod.bind(session);
      run('mknod', path, cb, () => mknod(path, type, mode & 0o7777, dev, cred));
    },
  };
}
