/**
 * Opening a session directory: its lock, its journal (bootstrapped in-process or in a child,
 * ./offload.ts, or reopened: staged sizes reconciled, a commit in flight recovered, the view
 * caught up with the log) and the parts a Session is made of.
 *
 * Invariants: a directory belongs to one volume (CONFLICT otherwise); a journal is complete only
 * once it is claimed (`volumeId` set last), so a failed bootstrap is redone by the next open;
 * whatever fails, the journal is closed and the lock released.
 */
import crypto from 'node:crypto';
import { CairnError } from '../errors.js';
import { ChunkStore } from '../chunks/index.js';
import type { ObjectStore } from '../store/index.js';
import { type VolumeMeta, keys, VolumeLog } from '../format/index.js';
import { checkInteger } from '../util/limits.js';
import { Journal } from './journal.js';
import { Staging } from './staging.js';
import { Syncer } from './sync.js';
import { bootstrapInChild, checkpointInChild } from './offload.js';
import { SpaceReserve } from './reserve.js';
import { lockSessionDir } from './sessiondir.js';

export interface SessionOptions {
  store: ObjectStore;
  volume: VolumeMeta;
  /** The session directory (journal + staging). Reopening one recovers its pending changes. */
  dir: string;
  readOnly?: boolean;
  /** Open read-only at this past snapshot (time travel). */
  seq?: number;
  /** Remove the directory at close (library sessions). */
  ephemeral?: boolean;
  chunks?: ChunkStore;
  /**
   * Bootstrap a fresh journal and write checkpoints in child processes (./offload.ts), so that
   * this process's memory does not grow with the volume and its event loop never stalls on a
   * whole-snapshot encode: for long-lived daemons. Needs a store reachable by URL (file, s3).
   */
  offload?: boolean;
  /**
   * Hold back RESERVE_BYTES of the session directory's disk for the journal (./reserve.ts), so
   * that on a full disk deletes and commits still work: for long-lived sessions (mounts).
   */
  reserve?: boolean;
  /**
   * With `offload`: a bootstrap that reads fewer bytes than this (checkpoint plus records, as
   * listed) runs in-process, where it is cheaper than starting a child (default OFFLOAD_MIN_BYTES).
   */
  offloadMinBytes?: number;
}

/** Below this many bytes of checkpoint and records, an offloaded session bootstraps in-process. */
export const OFFLOAD_MIN_BYTES = 4 * 1024 * 1024;

/** What a session is made of, once its directory is open. */
export interface SessionParts {
  journal: Journal;
  staging: Staging;
  sync: Syncer;
  chunks: ChunkStore;
  unlock: () => Promise<void>;
  /** Space held back for the journal on a full disk (./reserve.ts). */
  space: SpaceReserve;
  /** How this open filled a fresh journal (undefined: it reopened one). */
  bootstrapped: 'child' | 'in-process' | undefined;
}

/**
 * Locks, opens and brings up to date the session directory `opts.dir` (see the module comment).
 * @example const { journal, sync } = await openParts({ store, volume: meta, dir: '/tmp/s1' });
 */
export async function openParts(opts: SessionOptions): Promise<SessionParts> {
  if (opts.seq !== undefined) checkInteger(opts.seq, 'seq', { min: 0 }, { volume: opts.volume.name });
  if (opts.offloadMinBytes !== undefined) checkInteger(opts.offloadMinBytes, 'offloadMinBytes', { min: 0 });
  const unlock = await lockSessionDir(opts.dir);
  let journal: Journal | undefined;
  let bootstrapped: SessionParts['bootstrapped'];
  try {
    journal = new Journal(`${opts.dir}/journal.db`);
    const staging = new Staging(opts.dir);
    await staging.init();
    const chunks = opts.chunks ?? new ChunkStore({ store: opts.store, packPrefix: keys.packPrefix(opts.volume.id) });
    const log = new VolumeLog(opts.store, opts.volume.id);
    const known = journal.volumeId;
    if (known !== undefined && known !== opts.volume.id) {
      throw new CairnError('CONFLICT', `session directory ${opts.dir} belongs to volume ${known}`, {
        path: opts.dir,
        hint: 'use another session directory',
      });
    }
    const sessionId = journal.sessionId(() => crypto.randomBytes(8).toString('hex'));
    if (
      known === undefined &&
      opts.offload &&
      (await log.bootstrapBytes(opts.seq ?? Infinity)) >= (opts.offloadMinBytes ?? OFFLOAD_MIN_BYTES)
    ) {
      journal.close();
      journal = undefined;
      await bootstrapInChild({
        dir: opts.dir,
        storeUrl: opts.store.url,
        volumeId: opts.volume.id,
        ...(opts.seq !== undefined ? { upTo: opts.seq } : {}),
      });
      journal = new Journal(`${opts.dir}/journal.db`);
      bootstrapped = 'child';
    }
    const checkpointJob = opts.offload
      ? (seq: number) => checkpointInChild({ dir: opts.dir, storeUrl: opts.store.url, volumeId: opts.volume.id, seq })
      : undefined;
    const sync = new Syncer(journal, log, chunks, staging, sessionId, { volumeName: opts.volume.name, checkpointJob });
    if (journal.volumeId === undefined) {
      await sync.bootstrap(opts.seq ?? Infinity);
      journal.claim(opts.volume.id);
      bootstrapped = 'in-process';
    } else {
      await journal.reconcileStaged(staging);
      await sync.recover();
      // A new session starts at the newest snapshot, even in a directory it used before (its
      // recovered pending changes stay on top, for the owner to commit): see docs/SEMANTICS.md.
      if (opts.seq === undefined) await sync.catchUp();
    }
    const space = new SpaceReserve(opts.dir);
    if (opts.reserve && !opts.readOnly && opts.seq === undefined) await space.make();
    journal.onFull = () => space.release();
    return { journal, staging, sync, unlock, chunks, space, bootstrapped };
  } catch (err) {
    journal?.close();
    await unlock();
    throw err;
  }
}
