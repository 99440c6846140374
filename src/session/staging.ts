/**
 * Staging files: the local copies of files written in a session, kept in `<session>/staging/`.
 *
 * Invariants: a staging file's length is always the logical size of the file it backs (truncate
 * up leaves a sparse hole), so after a crash the staging files alone tell each written file's
 * size; names are random and never reused; a file is only removed by `sweep`, never while it
 * is referenced by the journal, being created, or open here. Descriptors are cached per file, at
 * most `maxOpen` of them (least recently used idle ones are closed first, never one an operation
 * is using): a session that wrote thousands of files must not run out of descriptors (containers
 * often allow 1,024).
 *
 * Small I/O is synchronous: creating and opening a staging file, and reads and writes of up to
 * `SYNC_IO_MAX` bytes, run on the calling thread (page-cache copies of microseconds, like the
 * journal's SQLite calls), because a trip through libuv's thread pool costs two thread hand-offs,
 * which on a loaded host cost more than the I/O itself and sit on every FUSE request's path (a
 * create, a 16 KiB write); so is stat. Bigger reads and writes, truncate and fsync stay asynchronous,
 * and a few empty files are made ahead in the thread pool (`refill`), so that a create rarely
 * waits for the file system's own create.
 */
import crypto from 'node:crypto';
import fsSync, { constants as fsc } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { asCairnError } from '../errors.js';

/** Cached staging descriptors per session (see the module header). */
export const STAGING_MAX_OPEN = 256;
/** Reads and writes up to this many bytes run synchronously (see the module header). */
export const SYNC_IO_MAX = 128 * 1024;

/** Empty staging files kept made ahead (see the module header). */
export const STAGING_SPARES = 8;

const openAsync = promisify(fsSync.open);
const readAsync = promisify(fsSync.read);
const writeAsync = promisify(fsSync.write);
const ftruncateAsync = promisify(fsSync.ftruncate);
const fsyncAsync = promisify(fsSync.fsync);

function closeQuietly(fd: number): void {
  try {
    fsSync.closeSync(fd);
  } catch {
    // already closed
  }
}

export class Staging {
  readonly dir: string;
  /** Cached descriptors; Map order = recency. */
  private readonly handles = new Map<string, number>();
  /** Asynchronous operations using each cached descriptor now. */
  private readonly busy = new Map<string, number>();
  private readonly creating = new Set<string>();
  /** Empty files made ahead, in the thread pool (their names are in `creating` until used). */
  private readonly spares: { name: string; fd: number }[] = [];
  private refilling = false;
  /** Bumped by `closeAll`: a refill running then keeps nothing it makes. */
  private generation = 0;
  /** Descriptors `closeAll` took out of the cache while an operation used them: closed when it ends. */
  private readonly closing = new Map<string, number>();
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
    return this.createNow(register);
  }

  /** `create`, synchronously (see the module header). */
  createNow(register: (name: string) => void = () => undefined): string {
    const spare = this.spares.pop();
    const name = spare?.name ?? crypto.randomBytes(12).toString('hex');
    this.creating.add(name);
    this.refill();
    try {
      const fd = spare?.fd ?? fsSync.openSync(this.pathOf(name), fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL, 0o600);
      this.handles.set(name, fd);
      register(name);
      this.trim();
      return name;
    } catch (err) {
      throw asCairnError(err, 'IO', 'cannot create a staging file', { path: this.dir });
    } finally {
      this.creating.delete(name);
    }
  }

  /**
   * Makes empty files ahead, up to STAGING_SPARES, in the thread pool: creating a file costs the
   * file system's journal and directory locks (up to milliseconds on a busy disk), which then stay
   * off the write that needs the file. A failure just stops the refill (creates are synchronous then).
   * It starts on the next turn of the event loop, once the caller's synchronous work (its FUSE
   * answer included) is done: handing a create to a pool thread wakes that thread, which on a busy
   * host can take the CPU from the request being answered (tar -x: ~90 µs per staged file).
   */
  private refill(): void {
    if (this.refilling || this.spares.length >= STAGING_SPARES) return;
    this.refilling = true;
    const gen = this.generation;
    setImmediate(async () => {
      try {
        while (this.spares.length < STAGING_SPARES && gen === this.generation) {
          const name = crypto.randomBytes(12).toString('hex');
          this.creating.add(name);
          const fd = await openAsync(this.pathOf(name), fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL, 0o600).catch(() => undefined);
          if (fd === undefined || gen !== this.generation) {
            if (fd !== undefined) this.discard(name, fd);
            this.creating.delete(name);
            return;
          }
          this.spares.push({ name, fd });
        }
      } finally {
        this.refilling = false;
      }
    });
  }

  /** Closes and removes an unused spare. */
  private discard(name: string, fd: number): void {
    closeQuietly(fd);
    fsSync.rmSync(this.pathOf(name), { force: true });
  }

  /** The file's cached descriptor (opened on demand), now the most recently used. */
  private fdOf(name: string): number {
    let fd = this.handles.get(name);
    if (fd === undefined) fd = fsSync.openSync(this.pathOf(name), fsc.O_RDWR);
    else this.handles.delete(name); // re-inserted below: most recently used
    this.handles.set(name, fd);
    return fd;
  }

  /** Runs `fn` with the file's descriptor, which stays open meanwhile. */
  private async using<T>(name: string, fn: (fd: number) => Promise<T>): Promise<T> {
    const fd = this.fdOf(name);
    this.busy.set(name, (this.busy.get(name) ?? 0) + 1);
    try {
      return await fn(fd);
    } finally {
      const n = this.busy.get(name)! - 1;
      if (n > 0) this.busy.set(name, n);
      else {
        this.busy.delete(name);
        const late = this.closing.get(name);
        if (late !== undefined && late === fd) {
          this.closing.delete(name);
          closeQuietly(late);
        }
      }
      this.trim();
    }
  }

  /** Runs `fn` synchronously with the file's descriptor. */
  private now<T>(name: string, fn: (fd: number) => T): T {
    try {
      return fn(this.fdOf(name));
    } finally {
      this.trim();
    }
  }

  /** Closes least recently used idle descriptors while more than maxOpen are cached. */
  private trim(): void {
    if (this.handles.size <= this.maxOpen) return;
    for (const [name, fd] of this.handles) {
      if (this.handles.size <= this.maxOpen) break;
      if (this.busy.has(name)) continue;
      this.handles.delete(name);
      closeQuietly(fd);
    }
  }

  async read(name: string, offset: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    if (length <= SYNC_IO_MAX) {
      this.now(name, (fd) => {
        while (done < length) {
          const n = fsSync.readSync(fd, buf, done, length - done, offset + done);
          if (n === 0) break;
          done += n;
        }
      });
    } else {
      await this.using(name, async (fd) => {
        while (done < length) {
          const { bytesRead } = await readAsync(fd, buf, done, length - done, offset + done);
          if (bytesRead === 0) break;
          done += bytesRead;
        }
      });
    }
    return done === length ? buf : buf.subarray(0, done);
  }

  async write(name: string, offset: number, data: Uint8Array): Promise<void> {
    if (data.length <= SYNC_IO_MAX) return this.writeNow(name, offset, data);
    let done = 0;
    await this.using(name, async (fd) => {
      while (done < data.length) done += (await writeAsync(fd, data, done, data.length - done, offset + done)).bytesWritten;
    });
  }

  /** A write of up to SYNC_IO_MAX bytes, synchronously. */
  writeNow(name: string, offset: number, data: Uint8Array): void {
    let done = 0;
    this.now(name, (fd) => {
      while (done < data.length) done += fsSync.writeSync(fd, data, done, data.length - done, offset + done);
    });
  }

  async truncate(name: string, size: number): Promise<void> {
    await this.using(name, (fd) => ftruncateAsync(fd, size));
  }

  /** The file's size and mtime (undefined: no such file); a synchronous stat, asked once per staged file a commit reads. */
  async size(name: string): Promise<{ size: number; mtimeMs: number } | undefined> {
    try {
      const st = fsSync.statSync(this.pathOf(name), { throwIfNoEntry: false });
      return st && { size: st.size, mtimeMs: st.mtimeMs };
    } catch {
      return undefined;
    }
  }

  async fsync(name: string): Promise<void> {
    await this.using(name, (fd) => fsyncAsync(fd));
  }

  /** Closes cached descriptors (they are reopened on demand). */
  async closeAll(): Promise<void> {
    this.generation++;
    for (const { name, fd } of this.spares.splice(0)) {
      this.discard(name, fd);
      this.creating.delete(name);
    }
    // A raw descriptor closed under a running operation could be reused by the next open and
    // take its bytes: one in use is closed when its operation ends.
    for (const [name, fd] of this.handles) {
      if (this.busy.has(name)) this.closing.set(name, fd);
      else closeQuietly(fd);
    }
    this.handles.clear();
  }

  /** Removes staging files that `isReferenced` says nobody needs. Returns how many went. */
  async sweep(isReferenced: (name: string) => boolean): Promise<number> {
    const names = await fs.readdir(this.dir).catch(() => [] as string[]);
    const victims = names.filter((n) => !this.creating.has(n) && !isReferenced(n));
    for (const n of victims) {
      const fd = this.handles.get(n);
      this.handles.delete(n);
      if (fd !== undefined && this.busy.has(n)) this.closing.set(n, fd);
      else if (fd !== undefined) closeQuietly(fd);
      await fs.rm(this.pathOf(n), { force: true });
    }
    return victims.length;
  }
}
