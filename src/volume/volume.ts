/**
 * The Modal-compatible Volume API: named volumes on an object store, each mutating call one
 * commit, each read seeing the latest committed state.
 *
 * Invariants: a Volume handle works through one private session (a journal in a private
 * directory) that it reloads before every call and commits after every mutation; calls on one
 * handle run one at a time; a call that fails leaves the volume unchanged (the private session
 * is discarded, never committed later by accident); a read-only handle throws READ_ONLY on
 * every write. `commit()`/`reload()` reach the FUSE daemon when the volume is mounted here.
 */
import { copyFiles, planCopyFiles } from './copy.js';
import { SerialQueue } from '../util/serial.js';
import type { Writable } from 'node:stream';
import { CairnError, isCairnError } from '../errors.js';
import type { ObjectStore } from '../store/index.js';
import { ChunkStore } from '../chunks/index.js';
import {
  type FileEntry,
  type HistoryEntry,
  type VolumeMeta,
  Catalog,
  VolumeLog,
  keys,
  changedPaths,
  checkNoGlob,
  normalizePath,
  type RetentionPolicy,
  readRetention,
  writeRetention,
} from '../format/index.js';
import { Session, privateSessionDir, toFileEntry } from '../session/index.js';
import { Batch, type BatchProgress, type BatchResult, uploadBatch } from './batch.js';
import { checkInteger } from '../util/limits.js';
import { type StoreOption, resolveStore, volumeObjects, withStore } from './objects.js';

export type { StoreOption } from './objects.js';
import { type VerifyOptions, type VerifyReport, verifyVolume } from './verify.js';
import { type GcOptions, type GcReport, gcVolume } from './gc.js';
import { type VolumeUsage, volumeUsage } from './usage.js';

/**
 * How `vol.commit()`/`vol.reload()` reach a mount of the volume (the package entry, src/index.ts,
 * passes the one that reaches this host's FUSE mounts; without one they do nothing).
 */
export type MountControl = (volumeName: string, op: 'commit' | 'reload') => Promise<unknown | undefined>;

/** Options of the calls that open a Volume handle. */
export interface VolumeOptions extends StoreOption {
  /** How commit/reload reach a mount of the volume (default: the class's `defaultMountControl`). */
  mountControl?: MountControl;
}

export class Volume implements AsyncDisposable {
  /**
   * The mount control of handles opened without a `mountControl` option: none here; the
   * package entry's Volume (src/index.ts) reaches this host's FUSE mounts.
   */
  protected static readonly defaultMountControl: MountControl | undefined = undefined;

  private own: Session | undefined;
  private readonly queue = new SerialQueue();
  private closed = false;
  private readonly chunks: ChunkStore;

  protected constructor(
    readonly store: ObjectStore,
    private meta: VolumeMeta,
    readonly isReadOnly: boolean,
    private readonly owned: { store: boolean; ephemeral: boolean },
    private readonly mountControl: MountControl | undefined,
  ) {
    this.chunks = new ChunkStore({ store, packPrefix: keys.packPrefix(meta.id) });
  }

  /**
   * A volume by name.
   * @example const vol = await Volume.fromName('data', { createIfMissing: true });
   */
  static async fromName(name: string, options: VolumeOptions & { createIfMissing?: boolean; readOnly?: boolean } = {}): Promise<Volume> {
    const { store, owned } = await resolveStore(options.store);
    try {
      const catalog = new Catalog(store);
      const meta = options.createIfMissing ? (await catalog.create(name, { allowExisting: true })).meta : await catalog.lookup(name);
      return new this(
        store,
        meta,
        !!options.readOnly,
        { store: owned, ephemeral: false },
        options.mountControl ?? this.defaultMountControl,
      );
    } catch (err) {
      if (owned) await store.close();
      throw err;
    }
  }

  /** A volume by its id (`vo-…`). @example const vol = await Volume.fromId(id); */
  static async fromId(id: string, options: VolumeOptions = {}): Promise<Volume> {
    const { store, owned } = await resolveStore(options.store);
    try {
      const meta = await new Catalog(store).byId(id);
      return new this(store, meta, false, { store: owned, ephemeral: false }, options.mountControl ?? this.defaultMountControl);
    } catch (err) {
      if (owned) await store.close();
      throw err;
    }
  }

  /**
   * A temporary volume, deleted on close.
   * @example await using vol = await Volume.ephemeral();
   */
  static async ephemeral(options: VolumeOptions = {}): Promise<Volume> {
    const { store, owned } = await resolveStore(options.store);
    const name = `ephemeral-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
    const { meta } = await new Catalog(store).create(name);
    return new this(store, meta, false, { store: owned, ephemeral: true }, options.mountControl ?? this.defaultMountControl);
  }

  /** Volume management, as Modal's `Volume.objects` (./objects.ts). */
  static readonly objects = volumeObjects;

  /** @example await Volume.rename('old', 'new'); */
  static async rename(oldName: string, newName: string, options: StoreOption = {}): Promise<void> {
    await withStore(options.store, (s) => new Catalog(s).rename(oldName, newName));
  }

  get name(): string {
    return this.meta.name;
  }

  get id(): string {
    return this.meta.id;
  }

  /** @example const { name, createdAt, createdBy } = await vol.info(); */
  async info(): Promise<{ name: string; id: string; createdAt: Date; createdBy: string }> {
    return { name: this.meta.name, id: this.meta.id, createdAt: new Date(this.meta.createdAt), createdBy: this.meta.createdBy };
  }

  /** A handle whose writes fail with READ_ONLY (a mount of it is read-only). */
  readOnly(): Volume {
    const Class = this.constructor as typeof Volume;
    return new Class(this.store, this.meta, true, { store: false, ephemeral: false }, this.mountControl);
  }

  // ---- the private session -------------------------------------------------------------------

  private run<T>(write: boolean, fn: (s: Session) => Promise<T>): Promise<T> {
    const task = async () => {
      if (this.closed) throw new CairnError('CLOSED', 'the volume handle is closed', { volume: this.name });
      if (write && this.isReadOnly) {
        throw new CairnError('READ_ONLY', `volume ${this.name} was opened read-only`, {
          volume: this.name,
          hint: 'use a handle without readOnly()',
        });
      }
      if (this.own) {
        try {
          await this.own.reload();
        } catch (err) {
          // The view fell below the retention floor (gc pruned it): start from the newest snapshot.
          if (!isCairnError(err, 'PRUNED')) throw err;
          await this.discardSession();
        }
      }
      if (!this.own) {
        this.own = await Session.open({
          store: this.store,
          volume: this.meta,
          dir: await privateSessionDir(this.meta.id),
          ephemeral: true,
          chunks: this.chunks,
        });
      }
      try {
        const out = await fn(this.own);
        if (write) await this.own.commit();
        return out;
      } catch (err) {
        if (write) await this.discardSession();
        throw err;
      }
    };
    return this.queue.run(task);
  }

  private async discardSession(): Promise<void> {
    const s = this.own;
    this.own = undefined;
    await s?.close().catch(() => undefined);
  }

  // ---- reads ---------------------------------------------------------------------------------

  /**
   * Entries of a directory (or the one entry of a file path).
   * @example for (const e of await vol.listdir('/data', { recursive: true })) console.log(e.path, e.size);
   */
  async listdir(path = '/', options: { recursive?: boolean } = {}): Promise<FileEntry[]> {
    checkNoGlob(path);
    const p = normalizePath(path);
    return this.run(false, async (s) => {
      const st = await s.stat(p);
      if (st.type !== 'directory') return [toFileEntry(st)];
      return (options.recursive ? s.descendants(p) : await s.readdir(p)).map(toFileEntry);
    });
  }

  /** Like listdir, streamed; recursive by default (as Modal's iterdir). */
  async *iterdir(path = '/', options: { recursive?: boolean } = {}): AsyncGenerator<FileEntry> {
    yield* await this.listdir(path, { recursive: options.recursive ?? true });
  }

  /**
   * A file's bytes, in chunks.
   * @example for await (const buf of vol.readFile('/a.txt')) process.stdout.write(buf);
   */
  async *readFile(path: string): AsyncGenerator<Buffer> {
    const p = normalizePath(path);
    const entry = await this.run(false, async (s) => {
      const st = await s.stat(p);
      if (st.type === 'directory') throw new CairnError('IS_A_DIRECTORY', `/${p} is a directory`, { path: `/${p}`, volume: this.name });
      return s.entryAt(p)!;
    });
    if (entry.inline) {
      yield Buffer.from(entry.inline);
      return;
    }
    yield* this.chunks.stream(entry.chunks ?? [], { concurrency: 8 });
  }

  /**
   * Downloads a file into a writable (chunks fetched in parallel); returns the byte count.
   * @example const n = await vol.readFileInto('/big.bin', fs.createWriteStream('big.bin'));
   */
  async readFileInto(path: string, writable: Writable | { write(b: Buffer): unknown }): Promise<number> {
    let n = 0;
    for await (const buf of this.readFile(path)) {
      n += buf.length;
      const ok = writable.write(buf);
      if (ok === false && 'once' in writable) await new Promise((r) => (writable as Writable).once('drain', r));
    }
    return n;
  }

  /**
   * Checks every object of this volume on the store: its name and metadata, every commit record
   * and checkpoint (checksum, structure, sizes against chunk lists, seqs), that the log has no
   * holes, that every referenced pack exists and holds the ranges referenced; with `data: true`
   * it also fetches every referenced chunk and checks it against its BLAKE3 hash. Only reads.
   * Lists orphans (unreferenced packs, unknown keys) without counting them as problems.
   * Returns the report; `ok` is false when anything is wrong, and `problems` names each
   * object (`kind`, `key`, `problem`, `code`).
   *
   * @example
   * const report = await vol.verify({ data: true });
   * for (const p of report.problems) console.error(p.kind, p.key, p.problem);
   */
  async verify(options: VerifyOptions = {}): Promise<VerifyReport> {
    if (this.closed) throw new CairnError('CLOSED', 'the volume handle is closed', { volume: this.name });
    return verifyVolume(this.store, { name: this.meta.name, id: this.meta.id }, options);
  }

  /**
   * Garbage collection of this volume: applies its retention (or `keepLast`/`keepDays` given
   * here, for this run), deletes pruned records and old checkpoints, and deletes packs no retained
   * snapshot references once they are older than the grace period (by the store's clock; the
   * default is an hour) — over two runs: the first condemns them, a run one grace later deletes
   * them. Safe with commits and other GCs running anywhere (docs/ARCHITECTURE.md). `dryRun`
   * reports only.
   *
   * @example
   * const report = await vol.gc({ keepLast: 10, dryRun: true });
   * console.log(report.packs.condemnedBytes, report.records.deleted);
   */
  async gc(options: GcOptions = {}): Promise<GcReport> {
    this.checkOpen();
    if (!options.dryRun && this.isReadOnly) {
      const hint = 'use dryRun, or a handle without readOnly()';
      throw new CairnError('READ_ONLY', `volume ${this.name} was opened read-only`, { volume: this.name, hint });
    }
    return gcVolume(this.store, { id: this.meta.id, name: this.meta.name }, options);
  }

  /**
   * The volume's history retention (the default when none was set).
   * @example const { keepLast } = await vol.retention();
   */
  async retention(): Promise<RetentionPolicy> {
    this.checkOpen();
    return readRetention(this.store, this.meta.id);
  }

  /**
   * Sets the volume's history retention (fields not given stay): the newest `keepLast` snapshots
   * (≥ 1) and every snapshot of the last `keepDays` days (≥ 0) stay readable; gc prunes the rest.
   * @example await vol.setRetention({ keepLast: 10, keepDays: 1 });
   */
  async setRetention(policy: Partial<RetentionPolicy>): Promise<RetentionPolicy> {
    this.checkOpen();
    if (this.isReadOnly) {
      const hint = 'use a handle without readOnly()';
      throw new CairnError('READ_ONLY', `volume ${this.name} was opened read-only`, { volume: this.name, hint });
    }
    return writeRetention(this.store, this.meta.id, policy);
  }

  /**
   * What the volume stores: live bytes of the newest snapshot, bytes deduplication saves, bytes
   * the retained history needs, stored bytes and objects, and what gc would reclaim.
   * @example const { liveBytes, storedBytes, reclaimableBytes } = await vol.usage();
   */
  async usage(): Promise<VolumeUsage> {
    this.checkOpen();
    return volumeUsage(this.store, { id: this.meta.id, name: this.meta.name });
  }

  private checkOpen(): void {
    if (this.closed) throw new CairnError('CLOSED', 'the volume handle is closed', { volume: this.name });
  }

  /**
   * Commits as one volume history, oldest first: seq, time, author, paths changed; with `limit`
   * (an integer ≥ 1), only the newest that many.
   * @example const [last] = await vol.history({ limit: 1 });
   */
  async history(options: { limit?: number } = {}): Promise<HistoryEntry[]> {
    if (options.limit !== undefined) checkInteger(options.limit, 'limit', { min: 1 });
    const records = await new VolumeLog(this.store, this.id).retainedRecords();
    const out = records.map((r) => ({
      seq: r.seq,
      time: r.time,
      author: r.author,
      paths: changedPaths(r.ops).map((p) => `/${p}`),
    }));
    return options.limit ? out.slice(-options.limit) : out;
  }

  /**
   * A session of this volume: the exact semantics of a mount. With `seq`, read-only at that snapshot.
   * @example const s = await vol.session(); await s.write('/a', 0, buf); await s.commit();
   */
  async session(options: { seq?: number; readOnly?: boolean; dir?: string } = {}): Promise<Session> {
    if (options.seq !== undefined) checkInteger(options.seq, 'seq', { min: 0 }, { volume: this.name });
    const dir = options.dir ?? (await privateSessionDir(this.meta.id));
    return Session.open({
      store: this.store,
      volume: this.meta,
      dir,
      readOnly: this.isReadOnly || options.readOnly,
      seq: options.seq,
      ephemeral: options.dir === undefined,
      chunks: this.chunks,
    });
  }

  // ---- writes --------------------------------------------------------------------------------

  /**
   * Removes a file, or a directory with `recursive`.
   * @example await vol.removeFile('/old', { recursive: true });
   */
  async removeFile(path: string, options: { recursive?: boolean } = {}): Promise<void> {
    const p = normalizePath(path);
    await this.run(true, async (s) => {
      const st = await s.stat(p);
      if (st.type === 'directory' && !options.recursive) {
        throw new CairnError('IS_A_DIRECTORY', `/${p} is a directory`, {
          path: `/${p}`,
          volume: this.name,
          hint: 'pass recursive: true to remove it and its contents',
        });
      }
      await s.removeTree(p);
    });
  }

  /**
   * Makes `newPath` a hard link to the file at `existing` (one commit): both names are one file
   * from then on (docs/SEMANTICS.md, "Hard links"). NOT_PERMITTED for a directory, ALREADY_EXISTS.
   * @example await vol.link('/models/w.bin', '/current/w.bin');
   */
  async link(existing: string, newPath: string): Promise<void> {
    await this.run(true, (s) => s.link(existing, newPath));
  }

  /**
   * Copies files inside the volume with `cp` semantics; only references are copied. A `dstPath`
   * ending in `/` is a directory, created with its parents when missing (as batchUpload's paths are).
   * @example await vol.copyFiles(['/a.txt', '/b.txt'], '/backup/');
   */
  async copyFiles(srcPaths: string[], dstPath: string, options: { recursive?: boolean } = {}): Promise<void> {
    const plan = planCopyFiles(srcPaths, dstPath, !!options.recursive);
    await this.run(true, (s) => copyFiles(s, plan));
  }

  /**
   * Uploads files and directories in one all-or-nothing commit; resolves with the files and bytes put.
   * @example await vol.batchUpload({ force: true }, async (b) => { b.putFile('./a.txt', '/a.txt'); b.putDirectory('./dir', '/dir'); });
   */
  async batchUpload(
    options: { force?: boolean; onProgress?: BatchProgress },
    fn: (batch: Batch) => unknown | Promise<unknown>,
  ): Promise<BatchResult> {
    const batch = new Batch();
    await fn(batch);
    return await this.run(true, (s) => uploadBatch(s, this.chunks, batch, !!options.force, options.onProgress));
  }

  // ---- commit / reload / close ---------------------------------------------------------------

  /** Commits the mount of this volume here, if there is one; otherwise every call already committed. */
  async commit(): Promise<void> {
    await this.mountControl?.(this.name, 'commit');
  }

  /** Reloads the mount of this volume here, if there is one; this handle always reads the latest state. */
  async reload(): Promise<void> {
    await this.mountControl?.(this.name, 'reload');
  }

  /** Releases the handle; an ephemeral volume is deleted. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.queue.idle();
    this.closed = true;
    await this.discardSession();
    if (this.owned.ephemeral) await new Catalog(this.store).delete(this.meta.name, { allowMissing: true });
    if (this.owned.store) await this.store.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
