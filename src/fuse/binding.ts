/**
 * The FUSE binding of a mount: the native libfuse3 low-level addon (`native/`, see lowlevel.ts) or
 * fuse-native (libfuse 2, high-level, path-based), the fallback. Both serve the same adapter
 * operations (adapter.ts): one errno table, one open-file table.
 *
 * Selection: `CAIRN_FUSE_BINDING=native|fuse-native` (or MountConfig.binding). Unset: native
 * when the addon loads, else fuse-native with a note saying why (the daemon logs it and `status`
 * names the binding in use).
 */
import Fuse from 'fuse-native';
import { promises as fsp } from 'node:fs';
import { CairnError, Errno } from '../errors.js';
import type { FuseOps } from './adapter.js';
import type { HandleTable } from './handles.js';
import { loadError, loadNative, mountLowLevel, type LowLevelMount } from './lowlevel.js';
import { isControlPath } from './control-fuse.js';
import { READ_ONLY_SUBTYPE, fsnameFor } from './mountinfo.js';
import type { BindingName } from './config.js';
import { nreadBudget, type ChunkSource } from './lowlevel-nread.js';

export type { BindingName } from './config.js';

/**
 * Kernel entry/attribute cache of a native mount, seconds: a mounted volume is a fixed snapshot
 * until reload, and reload invalidates exactly what changed, so the kernel may keep it long.
 */
export const NATIVE_CACHE_SEC = 3600;

export interface BindingOptions {
  mountpoint: string;
  volumeName: string;
  readOnly: boolean;
  nonEmpty: boolean;
  allowOther: boolean;
  /** Per-operation time limit (ETIMEDOUT). */
  fuseTimeoutMs: number;
  /** Kernel caches, seconds (defaults: NATIVE_CACHE_SEC native, 0 fuse-native). */
  attrTimeoutSec?: number;
  entryTimeoutSec?: number;
  /** The adapter's open-file table. */
  handles: HandleTable;
  /** The kernel ended the mount by itself (unmounted from outside). Native only. */
  onExit?: () => void;
  onError?: (op: string, path: string, err: unknown) => void;
  /** Committed files' chunks, for reads served by the native addon's threads (native only). */
  chunkSource?: ChunkSource;
  /** Ask for the kernel's writeback cache (native only: ./writeback.ts). */
  writeback?: boolean;
}

/** A mounted binding. */
export interface Binding {
  readonly name: BindingName;
  /** Why the binding is not the one asked for or the default (logged by the daemon). */
  readonly note?: string;
  /** Stops the kernel sending requests and detaches the mount. */
  unmount(): Promise<void>;
  /** The native mount (kernel cache invalidation), when native. */
  readonly native?: LowLevelMount;
  /** Tuning once the mount's device number (`major:minor`) is known; best effort. */
  tune(device: string): Promise<void>;
}

/**
 * Kernel readahead of a native mount, KiB. The kernel starts a FUSE mount at 128 KiB whatever
 * libfuse asks; a 4 MiB window lets a sequential reader keep four 1 MiB requests in flight.
 */
export const NATIVE_READAHEAD_KB = 4096;

/** The time limit of a write to the control file: its command may be a long commit. */
export const CONTROL_WRITE_TIMEOUT_MS = 31 * 60_000;

/**
 * Mount options of a read-only mount. Read-only is the adapter's (EROFS), not the kernel's `ro`,
 * which would refuse to open the control file for writing and so to reload from a container;
 * the subtype marks the mount read-only (mountinfo.ts).
 */
function readOnlyOptions(readOnly: boolean): string[] {
  return readOnly ? [`subtype=${READ_ONLY_SUBTYPE}`] : [];
}

/** What to try: an explicit choice (option, then `$CAIRN_FUSE_BINDING`), or 'auto'. */
export function chooseBinding(explicit?: string): BindingName | 'auto' {
  const want = explicit ?? process.env.CAIRN_FUSE_BINDING ?? '';
  if (want === 'native' || want === 'fuse-native') return want;
  if (want === '' || want === 'auto') return 'auto';
  throw new CairnError('INVALID_ARGUMENT', `unknown FUSE binding ${JSON.stringify(want)}`, {
    hint: 'set CAIRN_FUSE_BINDING to native or fuse-native (or leave it unset)',
  });
}

/** fuse-native with a few libfuse options it does not expose. */
class CairnFuse extends Fuse {
  constructor(
    mnt: string,
    ops: FuseOps,
    opts: Record<string, unknown>,
    private readonly extra: string[],
  ) {
    super(mnt, ops, opts);
  }
  override _fuseOptions(): string {
    const base = super._fuseOptions();
    if (!this.extra.length) return base;
    return base ? `${base},${this.extra.join(',')}` : `-o${this.extra.join(',')}`;
  }
}

function fuseCall(f: (cb: (err: Error | null) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => f((err) => (err ? reject(err) : resolve())));
}

/** Explains a failed mount as a CairnError. */
async function mountError(err: unknown, mountpoint: string, volume: string, binding: BindingName): Promise<CairnError> {
  const msg = err instanceof Error ? err.message : String(err);
  const ctx = { volume, path: mountpoint, binding };
  if (/in use/i.test(msg)) {
    const hint = 'unmount it first or choose another directory';
    return new CairnError('ALREADY_EXISTS', `${mountpoint} is already a mount point`, { ...ctx, hint }, { cause: err });
  }
  if (/not a directory/i.test(msg)) {
    const hint = 'mount on an (empty) directory';
    return new CairnError('NOT_A_DIRECTORY', `${mountpoint} is not a directory`, { ...ctx, hint }, { cause: err });
  }
  const dev = await fsp.access('/dev/fuse').then(
    () => true,
    () => false,
  );
  const libs = binding === 'native' ? 'libfuse3 (Debian: libfuse3-3)' : 'fusermount (Debian: fuse) and libfuse2';
  return new CairnError(
    'UNAVAILABLE',
    `could not mount ${volume} at ${mountpoint}: ${msg}`,
    {
      ...ctx,
      hint: dev
        ? `check that ${libs} are installed and that you may mount (root or SYS_ADMIN)`
        : '/dev/fuse is missing: in a container run with --device /dev/fuse --cap-add SYS_ADMIN',
    },
    { cause: err },
  );
}

/** Operations that make the name they are given (all their strings are names to make). */
const MAKES_NAME = new Set(['create', 'mknod', 'mkdir', 'symlink']);
/** Operations that make their second name from their first. */
const MOVES_NAME = new Set(['rename', 'link']);

/**
 * Names are UTF-8 in a volume. fuse-native hands them to JavaScript already decoded, with bytes
 * that are not UTF-8 replaced by U+FFFD (the native binding refuses such bytes before: ll_ops.c),
 * so here a path holding U+FFFD is taken for such a name: ENOENT where it is looked up, EILSEQ
 * where it would be made. Two different names never share one entry; a name really holding U+FFFD
 * is out of this binding's reach (docs/SEMANTICS.md).
 */
function refuseMangledNames(ops: FuseOps): FuseOps {
  const out: FuseOps = {};
  for (const [name, fn] of Object.entries(ops)) {
    out[name] = (...args: unknown[]) => {
      const mangled = (i: number) => typeof args[i] === 'string' && (args[i] as string).includes('\uFFFD');
      const cb = args[args.length - 1] as (err: number) => void;
      if (MAKES_NAME.has(name) && (mangled(0) || mangled(1))) return cb(-Errno.EILSEQ);
      if (mangled(0)) return cb(-Errno.ENOENT);
      if (MOVES_NAME.has(name) && mangled(1)) return cb(-Errno.EILSEQ);
      fn(...args);
    };
  }
  return out;
}

async function mountFuseNative(ops: FuseOps, o: BindingOptions, note?: string): Promise<Binding> {
  const extra = ['big_writes', 'max_readahead=4194304', ...readOnlyOptions(o.readOnly)];
  if (o.nonEmpty) extra.push('nonempty');
  const fuse = new CairnFuse(
    o.mountpoint,
    refuseMangledNames(ops),
    {
      fsname: fsnameFor(o.volumeName),
      force: true,
      mkdir: true,
      autoCache: true,
      timeout: { default: o.fuseTimeoutMs, write: Math.max(o.fuseTimeoutMs, CONTROL_WRITE_TIMEOUT_MS) },
      // fuse-native drops falsy values, so pass the numbers as strings ("0" is kept).
      attrTimeout: String(o.attrTimeoutSec ?? 0),
      entryTimeout: String(o.entryTimeoutSec ?? 0),
      allowOther: o.allowOther,
    },
    extra,
  );
  try {
    await Promise.race([
      fuseCall((cb) => fuse.mount(cb)),
      new Promise((_r, reject) => {
        setTimeout(() => reject(new Error('timed out waiting for the kernel')), 15_000).unref();
      }),
    ]);
  } catch (err) {
    await fuseCall((cb) => Fuse.unmount(o.mountpoint, cb)).catch(() => undefined);
    throw await mountError(err, o.mountpoint, o.volumeName, 'fuse-native');
  }
  return {
    name: 'fuse-native',
    ...(note ? { note } : {}),
    unmount: () => fuseCall((cb) => fuse.unmount(cb)),
    tune: () => Promise.resolve(),
  };
}

async function mountNative(ops: FuseOps, o: BindingOptions): Promise<Binding> {
  const addon = loadNative();
  if (!addon) {
    throw new CairnError('UNAVAILABLE', `the native FUSE binding does not load: ${loadError()}`, {
      volume: o.volumeName,
      path: o.mountpoint,
      hint: 'build it with `npm run build:native` (needs libfuse3-dev), or set CAIRN_FUSE_BINDING=fuse-native',
    });
  }
  const options = [`fsname=${fsnameFor(o.volumeName)}`, ...readOnlyOptions(o.readOnly)];
  // The kernel checks permissions by the stored owners and modes (docs/SEMANTICS.md, "Owners and permissions").
  options.push('default_permissions');
  if (o.allowOther) options.push('allow_other');
  let m: LowLevelMount;
  try {
    await fsp.mkdir(o.mountpoint, { recursive: true }); // as fuse-native's `mkdir` option does
    m = await mountLowLevel(addon, ops, {
      mountpoint: o.mountpoint,
      options,
      attrTimeoutSec: o.attrTimeoutSec ?? NATIVE_CACHE_SEC,
      entryTimeoutSec: o.entryTimeoutSec ?? NATIVE_CACHE_SEC,
      uid: process.getuid?.() ?? 0,
      gid: process.getgid?.() ?? 0,
      handles: o.handles,
      timeoutMs: o.fuseTimeoutMs,
      controlWriteTimeoutMs: Math.max(o.fuseTimeoutMs, CONTROL_WRITE_TIMEOUT_MS),
      // The control file at the mount root and its per-open aliases (control-fuse.ts: replies are
      // made per request) are never cached and opened with direct_io.
      uncached: isControlPath,
      native: {
        maxReadahead: NATIVE_READAHEAD_KB * 1024,
        ...(o.writeback ? { writeback: 1 } : {}),
        // Reads of verified resident chunks answered on the addon's threads (lowlevel-nread.ts).
        nreadBytes: o.chunkSource ? nreadBudget() : 0,
      },
      ...(o.chunkSource ? { chunkSource: o.chunkSource } : {}),
      ...(o.onExit ? { onExit: o.onExit } : {}),
      ...(o.onError ? { onError: o.onError } : {}),
    });
  } catch (err) {
    throw await mountError(err, o.mountpoint, o.volumeName, 'native');
  }
  return {
    name: 'native',
    native: m,
    unmount: () => m.unmount(),
    // sysfs, not the mount: this never waits on the mount itself.
    tune: (device) => fsp.writeFile(`/sys/class/bdi/${device}/read_ahead_kb`, `${NATIVE_READAHEAD_KB}\n`).catch(() => undefined),
  };
}

/**
 * Mounts `ops` with the chosen binding ('auto': native when the addon loads, else fuse-native).
 *
 * @example
 *   const b = await mountBinding(chooseBinding(), createOps(session, { readOnly: false }), opts);
 *   await b.unmount();
 */
export async function mountBinding(choice: BindingName | 'auto', ops: FuseOps, o: BindingOptions): Promise<Binding> {
  if (choice === 'fuse-native') return mountFuseNative(ops, o);
  if (choice === 'native') return mountNative(ops, o);
  if (loadNative()) return mountNative(ops, o);
  return mountFuseNative(ops, o, `native FUSE binding unavailable (${loadError()}); using fuse-native`);
}
