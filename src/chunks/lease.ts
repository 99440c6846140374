/**
 * Fetch leases: so that the processes of one host (one FUSE daemon per container, all sharing the
 * host chunk cache) fetch a cold chunk from the store once, not once each.
 *
 * A lease is a directory entry `<cacheDir>/leases/<hash>`, created exclusively (EEXIST when held).
 * It is a hard link to this process's *holder file* `<cacheDir>/leases/.holder-<pid>-<rand>`,
 * which is created once per process and holds `pid pidns time`. Linking is one cheap syscall
 * that records the holder: creating a fresh inode per lease (an O_EXCL file, or a symlink) costs
 * ~0.6 ms of CPU on this machine's ext4 and measurably slowed a single cold reader; a link costs
 * ~15 µs (made synchronously, as is the unlink that releases it: the cache directory is local,
 * never a FUSE mount of this process, and a promise through the thread pool costs the event loop
 * more). The holder fetches the chunk, verifies it, writes it to the cache (temp + rename) and only
 * then removes the lease — `LEASE_LINGER_MS` later (`releaseLater`), so that a lease found free
 * less than that after a cache miss proves the chunk was not cached meanwhile (the caller can skip
 * a second cache lookup); on a failed fetch at once (`release`). Another process that finds the
 * lease held waits for the chunk to appear in the cache instead of fetching.
 *
 * Liveness: every link, unlink and `utimes` of the holder inode sets its ctime, and a process
 * holding leases touches its holder file every `min(1 s, staleMs / 4)`; so a lease's ctime is the
 * last sign of life of its holder. A lease is stale (taken over) when its holder's pid is dead (only
 * checked when the holder is in our pid namespace, `/proc/self/ns/pid`: a holder in another
 * container is judged by age alone) or its ctime is older than `staleMs`.
 *
 * Invariants:
 * - leases are an optimisation only: any error here (EACCES, ENOSPC, EPERM, no hard links…) makes
 *   the caller fetch directly ('error' results); nothing here throws, no read fails because of it;
 * - a lease never blocks for ever: stale leases are taken over, and callers bound their total wait;
 * - a takeover removes only the lease it judged stale (same inode), under a per-lease takeover lock,
 *   so of several waiters taking over one stale lease exactly one ends up holding it.
 * Holder files are removed at process exit (lingering leases are left: see removeHolderFiles);
 * leftovers of exited or crashed processes are taken over when needed, or swept by the cache's
 * eviction scan after 10 minutes.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import { linkSync, unlinkSync } from 'node:fs';
import path from 'node:path';

/** Sub-directory of the cache directory holding the leases and holder files. */
export const LEASE_DIR = 'leases';
/** Name prefix of holder files in the lease directory. */
export const HOLDER_PREFIX = '.holder-';

export interface LeaseOptions {
  /** A lease whose holder showed no sign of life for this long is taken over (default 10 s). */
  staleMs?: number;
  /** Longest a reader waits for another process's fetch before fetching itself (default 10 s). */
  waitMs?: number;
}

export const DEFAULT_LEASE_STALE_MS = 10_000;
/**
 * Below FUSE's 15 s operation timeout (design, "FUSE daemon"), so a reader that gives up waiting
 * still has time to fetch the chunk itself before the kernel times the read out.
 */
export const DEFAULT_LEASE_WAIT_MS = 10_000;
/**
 * A lease outlives its chunk's cache write by this long. Hence: whoever missed the cache at t0 and
 * then took the lease before t0 + LEASE_LINGER_MS knows no holder cached the chunk in between.
 */
export const LEASE_LINGER_MS = 1000;
/** After the holder file cannot be created, leases are not tried again for this long. */
const RETRY_AFTER_ERROR_MS = 5_000;

/** A lease this process holds; `release()` removes it (idempotent, never throws). */
export interface Lease {
  readonly hash: string;
  /** Removes the lease now (after a failed fetch: let a waiter fetch). */
  release(): Promise<void>;
  /** Removes the lease LEASE_LINGER_MS from now (after the chunk's cache write). */
  releaseLater(): void;
}

/** What `inspect` found: the lease is gone, held by a live holder, or abandoned. */
export type LeaseState = { kind: 'free' } | { kind: 'held' } | { kind: 'stale'; ino: number } | { kind: 'error' };

/** Who holds a lease, as read from its file (pid 0 = unknown: judged by age only). */
export interface LeaseHolder {
  ino: number;
  pid: number;
  ns: string;
}

let pidNamespace: Promise<string> | undefined;

/** This process's pid namespace (`pid:[4026531836]`), or '' where /proc has none. */
function ownPidNamespace(): Promise<string> {
  pidNamespace ??= fs.readlink('/proc/self/ns/pid').catch(() => '');
  return pidNamespace;
}

/**
 * The content of a lease (of a holder file) for `pid` (default: this process) of our pid
 * namespace: `pid pidns time`. Exported for tests that plant leases.
 */
export async function leaseText(pid: number = process.pid): Promise<string> {
  return `${pid} ${await ownPidNamespace()} ${Date.now()}`;
}

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** Whether `pid` is a live process (EPERM: it exists, owned by someone else). */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errCode(err) === 'EPERM';
  }
}

/** This process's holder file in one lease directory, shared by every LeaseDir on it. */
class Holder {
  private file: Promise<string | undefined> | undefined;
  private current: string | undefined;
  private failedAt = 0;
  private held = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly lingering: { lease: HeldLease; at: number }[] = [];
  private lingerTimer: NodeJS.Timeout | undefined;
  periodMs = 1000;
  /** Created holder files, removed at exit. */
  static readonly created = new Set<string>();

  constructor(readonly dir: string) {}

  /** The holder file's path (created on first use), or undefined when it cannot be created. */
  path(): Promise<string | undefined> {
    if (this.file) return this.file;
    if (Date.now() - this.failedAt < RETRY_AFTER_ERROR_MS) return Promise.resolve(undefined);
    this.file = (async () => {
      await fs.mkdir(this.dir, { recursive: true });
      const file = path.join(this.dir, `${HOLDER_PREFIX}${process.pid}-${crypto.randomBytes(6).toString('hex')}`);
      await fs.writeFile(file, await leaseText(), { flag: 'wx' });
      if (Holder.created.size === 0) process.once('exit', removeHolderFiles);
      Holder.created.add(file);
      this.current = file;
      return file;
    })().catch(() => {
      this.failedAt = Date.now();
      this.file = undefined;
      return undefined;
    });
    return this.file;
  }

  /** The holder file `file` vanished (cache wiped, or swept while idle): make a new one next time. */
  lost(file: string): void {
    if (this.current === file) {
      this.current = undefined;
      this.file = undefined;
    }
  }

  acquired(): void {
    this.held++;
    this.timer ??= setInterval(() => this.touch(), this.periodMs).unref();
  }

  released(): void {
    if (--this.held > 0 || !this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Releases `lease` LEASE_LINGER_MS from now (one timer for all lingering leases). */
  linger(lease: HeldLease): void {
    this.lingering.push({ lease, at: Date.now() + LEASE_LINGER_MS });
    this.lingerTimer ??= setTimeout(() => this.expire(), LEASE_LINGER_MS).unref();
  }

  private expire(): void {
    this.lingerTimer = undefined;
    const now = Date.now();
    let n = 0;
    while (n < this.lingering.length && this.lingering[n].at <= now) {
      const { lease } = this.lingering[n++];
      void lease.release();
    }
    this.lingering.splice(0, n);
    if (this.lingering.length > 0) this.lingerTimer = setTimeout(() => this.expire(), Math.max(1, this.lingering[0].at - now)).unref();
  }

  /** A sign of life (sets the holder inode's ctime, which every lease of this process shares). */
  private touch(): void {
    void this.file?.then((file) => {
      if (!file) return;
      const now = new Date();
      return fs.utimes(file, now, now).catch(() => {});
    });
  }
}

function removeHolderFiles(): void {
  // At exit only: the event loop has stopped serving, so a synchronous unlink blocks nobody.
  // Lingering leases stay: their chunks were cached less than LEASE_LINGER_MS ago, and a reader
  // that missed the cache before that must still find them held (by a dead pid: it takes them over,
  // finding the chunk in the cache). The cache's scan sweeps them later.
  for (const file of Holder.created) {
    try {
      unlinkSync(file);
    } catch {
      // gone already
    }
  }
}

const holders = new Map<string, Holder>();

class HeldLease implements Lease {
  private released = false;
  constructor(
    readonly hash: string,
    readonly file: string,
    private readonly holder: Holder,
  ) {}

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    try {
      unlinkSync(this.file); // as linkSync in tryAcquire
    } catch {
      // gone already (taken over, swept)
    }
    this.holder.released();
  }

  releaseLater(): void {
    if (!this.released) this.holder.linger(this);
  }
}

/** The lease directory of one chunk cache, as seen by this process. */
export class LeaseDir {
  readonly dir: string;
  readonly staleMs: number;
  readonly waitMs: number;
  private readonly holder: Holder;

  constructor(cacheDir: string, opts: LeaseOptions = {}) {
    this.dir = path.join(cacheDir, LEASE_DIR);
    this.staleMs = opts.staleMs ?? DEFAULT_LEASE_STALE_MS;
    this.waitMs = opts.waitMs ?? DEFAULT_LEASE_WAIT_MS;
    let holder = holders.get(this.dir);
    if (!holder) holders.set(this.dir, (holder = new Holder(this.dir)));
    holder.periodMs = Math.max(1, Math.min(holder.periodMs, this.staleMs / 4));
    this.holder = holder;
  }

  pathOf(hash: string): string {
    return path.join(this.dir, hash);
  }

  /**
   * Takes the lease of `hash` if nobody holds it: the Lease, 'held' (someone else has it), or
   * 'error' (leases unusable here: fetch without one).
   *
   * @example const l = await leases.tryAcquire(ref.hash); if (typeof l === 'object') { fetch; await l.release(); }
   */
  async tryAcquire(hash: string): Promise<Lease | 'held' | 'error'> {
    const file = this.pathOf(hash);
    for (let attempt = 0; attempt < 2; attempt++) {
      const holderFile = await this.holder.path();
      if (!holderFile) return 'error';
      try {
        linkSync(holderFile, file); // ~15 µs here; through the thread pool a promise costs the event loop more
      } catch (err) {
        const code = errCode(err);
        if (code === 'EEXIST') return 'held';
        if (code === 'ENOENT') {
          this.holder.lost(holderFile); // our holder file (or the whole directory) vanished: make it again
          continue;
        }
        return 'error'; // EACCES, ENOSPC, EPERM / EXDEV (no hard links here), …
      }
      this.holder.acquired();
      return new HeldLease(hash, file, this.holder);
    }
    return 'error';
  }

  /**
   * The state of the lease of `hash` as another process sees it: 'free' (no lease), 'held' (a
   * live holder showed life within `staleMs`), 'stale' (its holder died, or did not show life in
   * time: take it over with `takeOver`), or 'error'. `seen` is the caller's memo of the holder, so
   * that polling reads a lease once per holder (once per inode).
   */
  async inspect(hash: string, seen: LeaseHolder = { ino: -1, pid: 0, ns: '' }): Promise<LeaseState> {
    const file = this.pathOf(hash);
    let st: { ino: number; ctimeMs: number; mtimeMs: number };
    try {
      st = await fs.lstat(file);
    } catch (err) {
      return errCode(err) === 'ENOENT' ? { kind: 'free' } : { kind: 'error' };
    }
    if (Date.now() - Math.max(st.ctimeMs, st.mtimeMs) > this.staleMs) return { kind: 'stale', ino: st.ino };
    if (seen.ino !== st.ino) {
      let text: string;
      try {
        text = await fs.readFile(file, 'utf8');
      } catch (err) {
        if (errCode(err) === 'ENOENT') return { kind: 'free' };
        text = ''; // unreadable: unknown holder
      }
      const [pid, ns] = text.split(' ');
      // A lease we cannot parse: judge it by its age only (pid 0).
      seen.ino = st.ino;
      seen.pid = /^\d+$/.test(pid ?? '') ? Number(pid) : 0;
      seen.ns = ns ?? '';
    }
    if (seen.pid > 0 && seen.ns === (await ownPidNamespace()) && !pidAlive(seen.pid)) return { kind: 'stale', ino: st.ino };
    return { kind: 'held' };
  }

  /**
   * Removes the stale lease of `hash` (only if it is still the one with inode `ino`) and takes a
   * new one: the Lease, 'held' (someone else took it, or is taking it over), or 'error'.
   * Takeovers of one lease are serialised by `<hash>.takeover` (a link to our holder file, so it is
   * itself judged by its holder's liveness: one older than `staleMs` was left by a crash and is
   * removed): so of many waiters taking over one stale lease exactly one ends up holding it.
   */
  async takeOver(hash: string, ino: number): Promise<Lease | 'held' | 'error'> {
    const file = this.pathOf(hash);
    const lock = `${file}.takeover`;
    const holderFile = await this.holder.path();
    if (!holderFile) return 'error';
    try {
      await fs.link(holderFile, lock);
    } catch (err) {
      const code = errCode(err);
      if (code === 'ENOENT') {
        this.holder.lost(holderFile);
        return 'held'; // try again on the next poll
      }
      if (code !== 'EEXIST') return 'error';
      try {
        const st = await fs.stat(lock);
        if (Date.now() - Math.max(st.ctimeMs, st.mtimeMs) > this.staleMs) await fs.unlink(lock);
      } catch {
        // gone meanwhile
      }
      return 'held';
    }
    try {
      let current: number | undefined;
      try {
        current = (await fs.lstat(file)).ino;
      } catch (err) {
        if (errCode(err) !== 'ENOENT') return 'error';
      }
      if (current !== undefined && current !== ino) return 'held'; // replaced by a live lease meanwhile
      if (current !== undefined) await fs.unlink(file);
      return await this.tryAcquire(hash);
    } catch {
      return 'error';
    } finally {
      await fs.unlink(lock).catch(() => {});
    }
  }
}
