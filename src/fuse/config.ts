/**
 * The configuration of a mount: one type, `MountConfig`, from the CLI (and the library's
 * `mount()`, the plugin, `cairn run`) through the daemon process (as its JSON input) to the
 * daemon and the adapter, passed on unchanged. Defaults are applied where a value is used, and
 * written here once.
 *
 * Invariants: a MountConfig is plain JSON (it crosses into the daemon process); `volume` and
 * `mountpoint` are set; how a mount is started (foreground or a detached process, its log file)
 * is not part of it (see mount.ts `MountOptions`).
 */
import { CairnError } from '../errors.js';
import { parseListen } from '../util/metrics.js';

/** A FUSE binding (binding.ts). */
export type BindingName = 'native' | 'fuse-native';

export interface MountConfig {
  volume: string;
  /** The directory to mount on (made canonical by `mount()`). */
  mountpoint: string;
  /** Store URL (default `$CAIRN_STORE` or the embedded file store). */
  store?: string;
  /** Reject every write (EROFS). A mount of a past snapshot (`seq`) is read-only regardless. */
  readOnly?: boolean;
  /** Background commit period in seconds; 0 disables (`mount()` defaults it to 5, the daemon to 0). */
  commitIntervalSec?: number;
  /** Let other users reach the mount (`allow_other`). */
  allowOther?: boolean;
  /**
   * Kernel attribute and entry cache, seconds. Default: long with the native binding (a reload
   * invalidates exactly what changed), 0 with fuse-native (which cannot invalidate).
   */
  attrTimeoutSec?: number;
  entryTimeoutSec?: number;
  /** Per-operation FUSE timeout in ms (fuse-native's `timeout`, default 30 s). */
  fuseTimeoutMs?: number;
  /** Mount over a directory that has entries (they are hidden while mounted); refused by default. */
  nonEmpty?: boolean;
  /**
   * On close(2) of a written file, make its data durable in the session directory (fsync), so it
   * survives a machine crash. Default false: written data always survives a daemon SIGKILL (it is
   * in the staging file, in the kernel's page cache, once write(2) returns); fsync(2) makes it
   * durable on demand.
   */
  fsyncOnClose?: boolean;
  /**
   * The kernel's writeback cache (native binding; default `$CAIRN_FUSE_WRITEBACK=1`, else off):
   * written pages stay in the kernel and reach the daemon in big WRITEs at close, fsync, a commit
   * or the kernel's own write-back — much faster small writes (SQLite, many small files), but
   * bytes written and not yet closed or synced are lost if the daemon is killed (docs/SEMANTICS.md).
   */
  writebackCache?: boolean;
  /**
   * The mount is moved into another mount namespace (a container's, by the OCI hook) and then
   * leaves this one: its absence here is not an external unmount. Shut it down with SIGTERM.
   */
  movedAway?: boolean;
  /** FUSE binding (default: `$CAIRN_FUSE_BINDING`, else see binding.ts). */
  binding?: BindingName;
  /** How often the daemon looks for an unmount done from outside, ms (default 1000). */
  watchIntervalMs?: number;
  /** Mount this past snapshot, read-only (time travel). */
  seq?: number;
  /** Use this session directory instead of the mount's default one (`cairn run`). */
  sessionDir?: string;
  /** Serve Prometheus metrics at `http://HOST:PORT/metrics` (`cairn status` shows the URL). */
  metrics?: string;
}

/**
 * Checks a config that arrived as JSON (INVALID_ARGUMENT when unusable).
 *
 * @example const cfg = checkMountConfig(JSON.parse(process.argv[2]));
 */
export function checkMountConfig(raw: unknown): MountConfig {
  const bad = (why: string): never => {
    throw new CairnError('INVALID_ARGUMENT', `bad mount config: ${why}`, { hint: 'start mounts with `cairn mount VOLUME DIR`' });
  };
  const cfg = raw as MountConfig | null;
  if (!cfg || typeof cfg !== 'object') return bad('not an object');
  if (typeof cfg.volume !== 'string' || !cfg.volume) bad('"volume" is required');
  if (typeof cfg.mountpoint !== 'string' || !cfg.mountpoint) bad('"mountpoint" is required');
  if (cfg.metrics !== undefined) parseListen(cfg.metrics);
  return cfg;
}
