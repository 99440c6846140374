/**
 * Staging files: the local copies of files written in a session, kept in `<session>/staging/`.
 *
 * Invariants: a staging file's length is always the logical size of the file it backs (truncate
 * up leaves a sparse hole), so after a crash the staging files alone tell each written file's
 * size; names are random and never reused; a file is only removed by `sweep`, never while it
 * is referenced by the journal, being created, or open here. All I/O is asynchronous.
 * Descriptors are cached per file, at most `maxOpen` of them (least recently used idle ones are
 * closed first, never one an operation is using): a session that wrote thousands of files must
 * not run out of descriptors (containers often allow 1,024).
 */
import crypto from 'node:crypto';
import { constants as fsc } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { asCairnError } from '../errors.js';

/** Cached staging descriptors per session (see the module header). */
export const STAGING_MAX_OPEN = 256;

export class Staging {
  readonly dir: string;
  /** Cached descriptors; Map order = recency. */
  private readonly handles = new Map<string, Promise<fs.FileHandle>>();
  /** Operations using each cached descriptor now. */
  private readonly busy = new Map<string, number>();
  private readonly creating = new Set<string>();
  private readonly maxOpen: number;

  constructor(sessionDir: string, opts: { maxOpen?: number } = {}) {
    this.dir = path.join(sessionDir, 'staging');
    this.maxOpen = Math.max(1, opts.maxOpen ?? STAGING_MAX_OPEN);
  }

  /** Descriptors cached now (for tests). */
  get openHandles(): number {
    return this.handles.size;
  }

  async init(): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
  }

  pathOf(name: string): string {
    return path.join(this.dir, name);
  }

  /**
   * Creates a new empty staging file and returns its name. `register` runs synchronously right
   * after the file exists, so that a concurrent `sweep` never sees it unreferenced.
   */
  async create(register: (name: string) => void): Promise<string> {
    const name = crypto.randomBytes(12).toString('hex');
    this.creating.add(name);
    try {
      const fh = await fs.open(this.pathOf(name), fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL, 0o600);
      this.handles.set(name, Promise.resolve(fh));
      register(name);
      this.trim();
      return name;
    } catch (err) {
      throw asCairnError(err, 'IO', 'cannot create a staging file', { path: this.dir });
    } finally {
      this.creating.delete(name);
    }
  }

  /** Runs `fn` with the file's descriptor (cached, opened on demand), which stays open meanwhile. */
  private async using<T>(name: string, fn: (fh: fs.FileHandle) => Promise<T>): Promise<T> {
    let h = this.handles.get(name);
    if (h)
      this.handles.delete(name); // re-inserted below: most recently used
    else {
      h = fs.open(this.pathOf(name), fsc.O_RDWR);
      h.catch(() => {
        if (this.handles.get(name) === h) this.handles.delete(name);
      });
    }
    this.handles.set(name, h);
    this.busy.set(name, (this.busy.get(name) ?? 0) + 1);
    try {
      return await fn(await h);
    } finally {
      const n = this.busy.get(name)! - 1;
      if (n > 0) this.busy.set(name, n);
      else this.busy.delete(name);
      this.trim();
    }
  }

  /** Closes least recently used idle descriptors while more than maxOpen are cached. */
  private trim(): void {
    if (this.handles.size <= this.maxOpen) return;
    for (const [name, h] of this.handles) {
      if (this.handles.size <= this.maxOpen) break;
      if (this.busy.has(name)) continue;
      this.handles.delete(name);
      void h.then((fh) => fh.close()).catch(() => {});
    }
  }

  async read(name: string, offset: number, length: number): Promise<Buffer> {
    return this.using(name, async (fh) => {
      const buf = Buffer.allocUnsafe(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done === length ? buf : buf.subarray(0, done);
    });
  }

  async write(name: string, offset: number, data: Uint8Array): Promise<void> {
    await this.using(name, async (fh) => {
      let done = 0;
      while (done < data.length) {
        const { bytesWritten } = await fh.write(data, done, data.length - done, offset + done);
        done += bytesWritten;
      }
    });
  }

  async truncate(name: string, size: number): Promise<void> {
    await this.using(name, (fh) => fh.truncate(size));
  }

  async size(name: string): Promise<{ size: number; mtimeMs: number } | undefined> {
    try {
      const st = await fs.stat(this.pathOf(name));
      return { size: st.size, mtimeMs: st.mtimeMs };
    } catch {
      return undefined;
    }
  }

  async fsync(name: string): Promise<void> {
    await this.using(name, (fh) => fh.sync());
  }

  /** Closes cached descriptors (they are reopened on demand). */
  async closeAll(): Promise<void> {
    const all = [...this.handles.values()];
    this.handles.clear();
    await Promise.all(all.map(async (h) => (await h.catch(() => undefined))?.close().catch(() => {})));
  }

  /** Removes staging files that `isReferenced` says nobody needs. Returns how many went. */
  async sweep(isReferenced: (name: string) => boolean): Promise<number> {
    const names = await fs.readdir(this.dir).catch(() => [] as string[]);
    const victims = names.filter((n) => !this.creating.has(n) && !isReferenced(n));
    for (const n of victims) {
      const h = this.handles.get(n);
      this.handles.delete(n);
      if (h) await (await h.catch(() => undefined))?.close().catch(() => {});
      await fs.rm(this.pathOf(n), { force: true });
    }
    return victims.length;
  }
}
