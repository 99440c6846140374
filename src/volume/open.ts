/**
 * Opening the session a mount serves: by volume name, in the mount's own session directory, so
 * that a daemon restarted after a crash finds and recovers its pending changes.
 */
import { openStore } from '../store/index.js';
import { Catalog } from '../format/index.js';
import { Session, mountSessionDir } from '../session/index.js';

export interface OpenSessionOptions {
  volume: string;
  /** Store URL; default `$CAIRN_STORE` or the embedded file store. */
  store?: string;
  readOnly?: boolean;
  /** The mountpoint: with the mount namespace, it names the session directory. */
  mountpoint: string;
  /** Use this session directory instead of the mount's default one. */
  sessionDir?: string;
  createIfMissing?: boolean;
  /** A past snapshot, read-only (`cairn plugin -o seq=N`). */
  seq?: number;
}

/** A session for a mount, with what the daemon reports in `cairn status`. */
export type MountSession = Session & { volumeName: string; status(): Record<string, unknown> };

/**
 * Opens (or recovers) the session of a mount.
 * @example const s = await openSession({ volume: 'data', mountpoint: '/mnt/data' });
 */
export async function openSession(opts: OpenSessionOptions): Promise<MountSession> {
  const store = await openStore(opts.store);
  try {
    const catalog = new Catalog(store);
    const meta = opts.createIfMissing
      ? (await catalog.create(opts.volume, { allowExisting: true })).meta
      : await catalog.lookup(opts.volume);
    const dir = opts.sessionDir ?? (await mountSessionDir(meta.id, opts.mountpoint));
    // A daemon's whole-snapshot work (bootstrap, checkpoints) runs in child processes: its memory
    // then stays flat in the volume size and its event loop never stalls on it.
    const offload = /^(file|s3):/.test(store.url);
    const session = await Session.open({
      store,
      volume: meta,
      dir,
      readOnly: opts.readOnly || opts.seq !== undefined,
      offload,
      reserve: true,
      seq: opts.seq,
    });
    // Changes left by a previous daemon of this directory (crash, SIGKILL) are published now, and
    // a reused journal moves to the newest snapshot (unless pinned): a new mount always starts there.
    try {
      if (!session.readOnly && session.pendingCount() > 0) await session.commit();
      if (session.bootstrapped === undefined && opts.seq === undefined) await session.reload();
    } catch (err) {
      await session.close();
      throw err;
    }
    const close = session.close.bind(session);
    return Object.assign(session, {
      volumeName: meta.name,
      status: () => ({
        volume: meta.name,
        volumeId: meta.id,
        store: store.url,
        seq: session.seq,
        pending: session.pendingCount(),
        readOnly: session.readOnly,
        sessionDir: dir,
        chunks: session.chunks.stats(),
      }),
      close: async () => {
        await close();
        await store.close();
      },
    });
  } catch (err) {
    await store.close();
    throw err;
  }
}
