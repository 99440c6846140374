/**
 * The volume driver behind `cairn plugin`: Docker's VolumeDriver operations on Cairn volumes.
 *
 * A plugin volume is a name with options (store URL, read-only, commit interval, the Cairn volume
 * it attaches, a past snapshot `seq`, which is read-only); Create makes the Cairn volume when
 * missing (attaches it otherwise). The first Mount of a Mount ID starts one `cairn mount` of the
 * volume (a detached daemon: its own session, the host's chunk cache) at `STATE/mounts/NAME/ID`:
 * Docker passes each container's ID, so each container gets its own session; podman passes one
 * fixed ID, calls Mount once per volume per host and counts its containers itself, so they share
 * one. The last Unmount of an ID commits and unmounts its session. The state (volumes, Mount IDs) lives in `STATE/state.json`, written atomically after
 * every change, so a restarted plugin finds its mounts again; a mount daemon outlives the plugin,
 * and a daemon that died is replaced at the same mount point, which recovers its session's
 * pending changes (the session directory follows the mount point).
 *
 * Invariants: operations on one volume never interleave (one queue per driver); errors are
 * CairnErrors whose messages never contain a store URL's credentials (see redactUrl).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { CairnError, isCairnError } from '../errors.js';
import { mount, unmount, fusermount } from '../fuse/mount.js';
import { cairnMountAt } from '../fuse/mountinfo.js';
import { controlRequest } from '../fuse/control.js';
import { Volume } from '../volume/index.js';
import { checkVolumeName } from '../format/paths.js';

/** Options a volume is created with (`podman volume create -o KEY=VALUE`). */
export interface PluginVolumeOptions {
  /** Store URL (default: the plugin's). */
  store?: string;
  /** The Cairn volume (default: the plugin volume's name). */
  volume?: string;
  readOnly?: boolean;
  /** Background commit period, seconds (default 5). */
  commitIntervalSec?: number;
  /** A past snapshot (read-only time travel). */
  seq?: number;
}

interface VolumeRecord {
  name: string;
  options: PluginVolumeOptions;
  createdAt: string;
  /** Its mounts by Mount ID: one session each, with the number of Mounts not yet unmounted. */
  mounts: Record<string, { mountpoint: string; count: number }>;
}

/** The mount point a Path call reports: the oldest mount's ('' when not mounted). */
function mainMountpoint(rec: VolumeRecord): string {
  return Object.values(rec.mounts)[0]?.mountpoint ?? '';
}

/** Users of a volume: Mounts not yet unmounted, over every ID. */
function users(rec: VolumeRecord): number {
  return Object.values(rec.mounts).reduce((n, m) => n + m.count, 0);
}

/** A volume as Docker's Get answers it. */
export interface VolumeInfo {
  Name: string;
  Mountpoint: string;
  CreatedAt: string;
  Status: Record<string, unknown>;
}

interface State {
  version: 1;
  volumes: Record<string, VolumeRecord>;
}

export interface DriverOptions {
  /** State directory (state.json, mounts/). */
  stateDir: string;
  /** Default store URL for volumes created without `-o store=`. */
  store?: string;
  /** Log line (credentials already removed). */
  log?: (msg: string) => void;
}

/** Removes credentials from a store URL (userinfo, and secret-looking query parameters). */
export function redactUrl(url: string): string {
  return url
    .replace(/^([a-z0-9+.-]+:\/\/)[^/@]*@/i, '$1***@')
    .replace(/([?&](?:[a-z_]*(?:secret|key|token|password|credential)[a-z_]*))=[^&]*/gi, '$1=***');
}

/** Parses `-o` options; INVALID_ARGUMENT names the bad one. */
export function parseOptions(opts: Record<string, string> | null | undefined): PluginVolumeOptions {
  const out: PluginVolumeOptions = {};
  const bad = (k: string, why: string): never => {
    throw new CairnError('INVALID_ARGUMENT', `bad volume option ${k}: ${why}`, {
      hint: 'options: store=URL, volume=NAME, ro=true, commit_interval=SECONDS, seq=N',
    });
  };
  for (const [k, v] of Object.entries(opts ?? {})) {
    switch (k) {
      case 'store':
        if (!/^(file|s3|memory):/.test(v)) bad(k, 'a file:// or s3:// URL');
        out.store = v;
        break;
      case 'volume':
        checkVolumeName(v);
        out.volume = v;
        break;
      case 'ro':
      case 'readonly':
      case 'read_only':
        if (!['true', 'false', '1', '0', ''].includes(v)) bad(k, 'true or false');
        out.readOnly = v === 'true' || v === '1' || v === '';
        break;
      case 'commit_interval':
        if (!/^\d+(\.\d+)?$/.test(v)) bad(k, 'a number of seconds >= 0');
        out.commitIntervalSec = Number(v);
        break;
      case 'seq':
        if (!/^\d+$/.test(v)) bad(k, 'a snapshot number (see `cairn volume history`)');
        out.seq = Number(v);
        out.readOnly = true;
        break;
      default:
        bad(k, 'unknown option');
    }
  }
  return out;
}

/** The VolumeDriver operations (what server.ts exposes over HTTP). */
export class VolumeDriver {
  private state: State = { version: 1, volumes: {} };
  private queue: Promise<unknown> = Promise.resolve();
  private readonly file: string;
  private readonly log: (msg: string) => void;

  constructor(private readonly o: DriverOptions) {
    this.file = path.join(o.stateDir, 'state.json');
    this.log = o.log ?? (() => undefined);
  }

  /** Loads the state; forgets Mount IDs of mounts that are gone (the engine mounts again). */
  async start(): Promise<void> {
    await fsp.mkdir(path.join(this.o.stateDir, 'mounts'), { recursive: true, mode: 0o700 });
    const text = await fsp.readFile(this.file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (text) this.state = JSON.parse(text) as State;
    for (const rec of Object.values(this.state.volumes)) {
      for (const [id, m] of Object.entries(rec.mounts)) {
        if (await this.alive(m.mountpoint)) continue;
        // The engine still uses this mount point: serve it again (the session's changes recover).
        try {
          await this.mountAt(rec, m.mountpoint);
          this.log(`${rec.name}: its daemon at ${m.mountpoint} had died; mounted again`);
        } catch (err) {
          this.log(`${rec.name}: cannot mount ${m.mountpoint} again: ${redactUrl(String(err))}`);
          delete rec.mounts[id];
        }
      }
    }
    await this.save();
  }

  /** True when a Cairn mount whose daemon answers is at `mountpoint`. */
  private async alive(mountpoint: string): Promise<boolean> {
    const m = await cairnMountAt(mountpoint).catch(() => undefined);
    if (m?.mountpoint !== mountpoint) return false;
    return controlRequest(mountpoint, 'status', { timeoutMs: 5000 }).then(
      () => true,
      () => false,
    );
  }

  /** Starts a `cairn mount` of a volume at `mountpoint` (detaching a dead mount there first). */
  private async mountAt(rec: VolumeRecord, mountpoint: string): Promise<void> {
    await fusermount(mountpoint, true).catch(() => undefined);
    const store = this.storeOf(rec);
    await mount({
      volume: rec.options.volume ?? rec.name,
      mountpoint,
      ...(store ? { store } : {}),
      readOnly: !!rec.options.readOnly || rec.options.seq !== undefined,
      commitIntervalSec: rec.options.commitIntervalSec ?? 5,
      ...(rec.options.seq !== undefined ? { seq: rec.options.seq } : {}),
    });
  }

  /** Runs `fn` after every earlier operation (one at a time). */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  private async save(): Promise<void> {
    const tmp = `${this.file}.${process.pid}.tmp`;
    await fsp.writeFile(tmp, JSON.stringify(this.state, null, 2), { mode: 0o600 });
    await fsp.rename(tmp, this.file);
  }

  private must(name: string): VolumeRecord {
    const rec = this.state.volumes[name];
    if (!rec) {
      throw new CairnError('NOT_FOUND', `no cairn plugin volume ${name}`, {
        volume: name,
        hint: 'create it: podman volume create --driver cairn NAME',
      });
    }
    return rec;
  }

  private storeOf(rec: VolumeRecord): string | undefined {
    return rec.options.store ?? this.o.store;
  }

  /**
   * Records a volume and makes its Cairn volume when missing.
   * @example await driver.create('data', { store: 'file:///srv/cairn' });
   */
  create(name: string, opts: Record<string, string> | null | undefined): Promise<void> {
    return this.serial(async () => {
      checkVolumeName(name);
      const options = parseOptions(opts);
      if (this.state.volumes[name]) return; // Create is idempotent
      const store = options.store ?? this.o.store;
      await Volume.objects.create(options.volume ?? name, { ...(store ? { store } : {}), allowExisting: true });
      this.state.volumes[name] = { name, options, createdAt: new Date().toISOString(), mounts: {} };
      await this.save();
      this.log(`created ${name}${store ? ` on ${redactUrl(store)}` : ''}`);
    });
  }

  /** Forgets a volume (its data stays on the store); refused while mounted. */
  remove(name: string): Promise<void> {
    return this.serial(async () => {
      const rec = this.must(name);
      if (users(rec)) {
        throw new CairnError('VOLUME_BUSY', `${name} is mounted for ${users(rec)} user(s)`, {
          volume: name,
          hint: 'stop the containers that use it first',
        });
      }
      delete this.state.volumes[name];
      await this.save();
      this.log(`removed ${name} (its data stays on the store; \`cairn volume delete\` deletes it)`);
    });
  }

  /**
   * Mounts for one Mount ID and returns its mount point. Each distinct ID gets its own session
   * (Docker: one per container); podman always passes the same ID, so its containers share one.
   */
  mount(name: string, id: string): Promise<string> {
    return this.serial(async () => {
      const rec = this.must(name);
      const known = rec.mounts[id];
      if (known && (await this.alive(known.mountpoint))) {
        known.count++;
        await this.save();
        return known.mountpoint;
      }
      const count = (known?.count ?? 0) + 1; // a dead daemon's users are still counted
      const tag = id.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 24) || 'default';
      const mountpoint = path.join(this.o.stateDir, 'mounts', name, tag);
      await this.mountAt(rec, mountpoint);
      rec.mounts[id] = { mountpoint, count };
      await this.save();
      this.log(`mounted ${name} at ${mountpoint} for ${id}`);
      return mountpoint;
    });
  }

  /** Releases one Mount of an ID; its last one commits and unmounts that session. */
  unmount(name: string, id: string): Promise<void> {
    return this.serial(async () => {
      const rec = this.must(name);
      const m = rec.mounts[id];
      if (!m) return;
      if (--m.count > 0) return this.save();
      try {
        const r = await unmount(m.mountpoint, { force: true });
        const c = r.result?.commit;
        this.log(`unmounted ${name} for ${id}${c?.committed ? ` (committed seq ${c.seq})` : ''}`);
        if (r.result?.error) {
          throw new CairnError('IO', `the final commit of ${name} failed: ${r.result.error.message}`, {
            volume: name,
            hint: 'see the mount log under CAIRN_HOME/logs',
          });
        }
      } catch (err) {
        if (!isCairnError(err, 'NOT_FOUND')) throw err; // already gone
      } finally {
        delete rec.mounts[id];
        await this.save();
      }
    });
  }

  /** The mount point while mounted, else '' (Docker's Path). */
  path(name: string): Promise<string> {
    return this.serial(async () => mainMountpoint(this.must(name)));
  }

  /** One volume as Docker's Get reports it (no store credentials). */
  get(name: string): Promise<VolumeInfo> {
    return this.serial(async () => this.describe(this.must(name)));
  }

  list(): Promise<{ Name: string; Mountpoint: string }[]> {
    return this.serial(async () => Object.values(this.state.volumes).map((r) => ({ Name: r.name, Mountpoint: mainMountpoint(r) })));
  }

  private describe(rec: VolumeRecord): VolumeInfo {
    const store = this.storeOf(rec);
    return {
      Name: rec.name,
      Mountpoint: mainMountpoint(rec),
      CreatedAt: rec.createdAt,
      Status: {
        volume: rec.options.volume ?? rec.name,
        store: store ? redactUrl(store) : 'default',
        readOnly: !!rec.options.readOnly || rec.options.seq !== undefined,
        ...(rec.options.seq !== undefined ? { seq: rec.options.seq } : {}),
        users: users(rec),
        sessions: Object.keys(rec.mounts).length,
      },
    };
  }

  /** Unmounts everything (final commits) — for tests and `cairn plugin --unmount-on-exit`. */
  async unmountAll(): Promise<void> {
    for (const rec of Object.values(this.state.volumes)) {
      for (const [id, m] of Object.entries(rec.mounts)) {
        m.count = 1;
        await this.unmount(rec.name, id).catch(() => undefined);
      }
    }
  }
}
