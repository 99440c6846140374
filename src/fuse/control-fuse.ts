/**
 * The control file on fuse-native (libfuse 2, high-level, path based): wraps the adapter's op
 * table so the control path is served by a ControlFile and everything else by the adapter.
 *
 * libfuse 2's high-level API cannot open a file with direct_io, so the kernel page cache sits
 * in front of the control file, and it is per inode. To give every open its own inode (and so
 * its own pages), `/.cairn-control` is a symlink whose target is a new hidden name on every
 * lookup (`.cairn-control@0000000042`); open(2) follows it, so `exec 3<>DIR/.cairn-control`
 * and plain `open()` calls work unchanged. Sizes come from the opener's transcript (fgetattr
 * passes the handle), and the daemon runs with attr_timeout 0, so read(2) asks again after
 * every write. Limit: sendfile(2)/splice (busybox `cat`) trusts the size the kernel cached when
 * the write returned and sees no reply; read with read(2) (`head -n1 <&3`, `read -r R <&3`).
 * Reporting a larger size does not help: this kernel zero-fills past a short read. A binding
 * that can set direct_io (libfuse 3) serves CONTROL_PATH as a plain file with ControlFile
 * directly, and has neither limit.
 *
 * Invariants: neither name is listed by readdir, and neither can be created, removed, renamed,
 * linked or chmod-ed (EPERM); the wrapper never blocks the event loop.
 */
import { CairnError, Errno, errnoFor } from '../errors.js';
import { toFuseStat, type FuseOps } from './adapter.js';
import { CONTROL_NAME, CONTROL_PATH, ControlFile } from './control-file.js';

type Cb = (code: number, ...result: unknown[]) => void;

const ALIAS_PREFIX = `${CONTROL_PATH}@`;
const ALIAS_DIGITS = 10;

/** True for the control path or one of its per-open aliases. */
export function isControlPath(p: string): boolean {
  return p === CONTROL_PATH || (p.startsWith(ALIAS_PREFIX) && /^\d+$/.test(p.slice(ALIAS_PREFIX.length)));
}

/** True when an absolute host path names a control file (to leave it out of "open files" lists). */
export function isControlFileName(p: string): boolean {
  const base = p.slice(p.lastIndexOf('/') + 1);
  return base === CONTROL_NAME || isControlPath(`/${base}`);
}

/**
 * Wraps fuse-native ops with the control file.
 *
 * @example
 *   const ops = withControlFile(createOps(session, { readOnly }), new ControlFile(run), { uid, gid });
 */
export function withControlFile(inner: FuseOps, control: ControlFile, ids: { uid: number; gid: number }): FuseOps {
  let nextAlias = 1;
  /** Alias path -> handle of the open that uses it (sizes for path-only getattr). */
  const byAlias = new Map<string, number>();
  const now = (): number => Date.now();
  const fileStat = (size: number): Record<string, number | Date> =>
    // 0o666: with default_permissions the kernel checks modes, and every user who reaches the mount may commit it.
    toFuseStat({ type: 'file', mode: 0o666, size, mtimeMs: now() } as never, ids.uid, ids.gid);
  const linkTarget = (n: number): string => `${CONTROL_NAME}@${String(n).padStart(ALIAS_DIGITS, '0')}`;
  const linkStat = (): Record<string, number | Date> =>
    toFuseStat({ type: 'symlink', mode: 0o777, size: 0, target: linkTarget(0), mtimeMs: now() } as never, ids.uid, ids.gid);

  const eperm = (cb: Cb): void => cb(-Errno.EPERM);
  const ops: FuseOps = { ...inner };
  const guard = (name: string, onControl: (...args: any[]) => void, pathArgs: number[] = [0]): void => {
    const next = inner[name];
    if (!next) return;
    ops[name] = (...args: any[]) => {
      if (pathArgs.some((i) => typeof args[i] === 'string' && isControlPath(args[i]))) return onControl(...args);
      return next(...args);
    };
  };

  const controlAttr = (p: string, cb: Cb): void => {
    if (p === CONTROL_PATH) return cb(0, linkStat());
    const fh = byAlias.get(p);
    cb(0, fileStat(fh === undefined ? 0 : control.size(fh)));
  };
  guard('getattr', controlAttr);
  guard('lookup', controlAttr);
  guard('fgetattr', (p: string, fh: number, cb: Cb) => {
    if (p === CONTROL_PATH) return cb(0, linkStat());
    cb(0, fileStat(control.size(fh)));
  });
  guard('readlink', (p: string, cb: Cb) => {
    if (p !== CONTROL_PATH) return cb(-Errno.EINVAL);
    cb(0, linkTarget(nextAlias++));
  });
  guard('access', (_p: string, _mode: number, cb: Cb) => cb(0));
  guard('open', (p: string, _flags: number, cb: Cb) => {
    const fh = control.open();
    byAlias.set(p, fh);
    cb(0, fh);
  });
  // `buf` is null when the binding takes the bytes from the callback (native: no copy).
  guard('read', (_p: string, fh: number, buf: Buffer | null, len: number, pos: number, cb: Cb) => {
    try {
      const data = control.read(fh, pos, len);
      if (!buf) return cb(data.length, data);
      data.copy(buf);
      cb(data.length);
    } catch (err) {
      cb(-errnoOf(err));
    }
  });
  guard('write', (_p: string, fh: number, buf: Buffer, len: number, pos: number, cb: Cb) => {
    // Copy: fuse-native's buffer is detached once we answer.
    control.write(fh, pos, Buffer.from(buf.subarray(0, len))).then(
      (n) => cb(n),
      (err: unknown) => cb(-errnoOf(err)),
    );
  });
  guard('release', (p: string, fh: number, cb: Cb) => {
    control.release(fh);
    if (byAlias.get(p) === fh) byAlias.delete(p);
    cb(0);
  });
  // `echo commit > FILE` truncates first: harmless. Times are not kept.
  guard('truncate', (_p: string, _size: number, cb: Cb) => cb(0));
  guard('ftruncate', (_p: string, _fh: number, _size: number, cb: Cb) => cb(0));
  guard('utimens', (_p: string, _a: number, _m: number, cb: Cb) => cb(0));
  guard('flush', (_p: string, _fh: number, cb: Cb) => cb(0));
  guard('fsync', (_p: string, _d: number, _fh: number, cb: Cb) => cb(0));
  guard('getxattr', (_p: string, _n: string, _pos: number, cb: Cb) => cb(-Errno.ENODATA));
  guard('listxattr', (_p: string, cb: Cb) => cb(0, []));
  for (const name of ['create', 'unlink', 'mkdir', 'rmdir', 'chmod', 'chown', 'mknod', 'setxattr', 'removexattr']) {
    // The callback is the first function argument (create and the native binding's ops pass more after it).
    guard(name, (...args: any[]) => eperm(args.find((x) => typeof x === 'function') as Cb));
  }
  // Two-path ops: refused when either side is a control name.
  guard('rename', (_a: string, _b: string, cb: Cb) => eperm(cb), [0, 1]);
  guard('link', (_a: string, _b: string, cb: Cb) => eperm(cb), [0, 1]);
  guard('symlink', (_target: string, _p: string, cb: Cb) => eperm(cb), [1]);
  return ops;
}

function errnoOf(err: unknown): number {
  if (err instanceof CairnError && typeof err.context.errno === 'number') return err.context.errno;
  return errnoFor(err);
}
