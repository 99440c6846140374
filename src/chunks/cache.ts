/**
 * The host-wide chunk cache: verified chunks on local disk, shared by every process on the host.
 *
 * Layout: `<dir>/<hash[0:2]>/<hash>` holds exactly the chunk's bytes. Because entries are named
 * by content they are never stale, so no locks are needed between processes:
 * - a writer writes `<dir>/<hh>/.tmp-…` and renames it into place (a reader sees a whole entry
 *   or none; two writers of one hash rename identical bytes over each other); entries up to
 *   SYNC_WRITE_MAX go into empty temp files made ahead (`.tmp-spare-…`, removed at exit);
 * - every read is verified against the name; a damaged entry is deleted and is a miss;
 * - ENOENT is tolerated everywhere (another process may evict or replace an entry at any time).
 * LRU: a hit touches the entry's mtime (best effort, not awaited; at most once per 10 s per entry and process); eviction scans the tree and
 * removes the least recently touched entries until the total is under 90% of the bound.
 * Each process tracks an approximate total in memory and rescans when it exceeds the bound or
 * after putting bound/8 bytes since its last scan; `trim()` enforces the bound as of now.
 * Side entries `<dir>/<hh>/<hash>.<suffix>` hold parts of a chunk read partially (./partial.ts: its
 * outboard, verified blocks); the caller verifies them on read (`getPart`); they are counted and
 * evicted like entries, and never served as the whole chunk.
 * `<dir>/leases/` holds the fetch leases of ./lease.ts (not entries: never counted or evicted);
 * a scan removes leases and holder files left for 10 minutes by crashed processes.
 */
import crypto from 'node:crypto';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { cacheBytes, cacheDir } from '../config.js';
import { CairnError } from '../errors.js';
import { hashChunkAsync, isChunkHash } from './hash.js';
import { LEASE_DIR } from './lease.js';

export interface ChunkCacheOptions {
  /** Directory of the cache (created on first put). */
  dir: string;
  /** Bound on the total size of the entries, bytes. */
  maxBytes: number;
}

export interface ChunkCacheStats {
  hits: number;
  misses: number;
  /** Approximate bytes in the cache (this process's estimate), once known. */
  bytes?: number;
  puts: number;
  evicted: number;
  corrupt: number;
  /** Side entries (blocks and outboards of chunks read partially) served. */
  partHits: number;
}

const TMP_PREFIX = '.tmp-';
/** Suffixes of side entries (`<hash>.<suffix>`): letters, digits and dots. */
const PART_SUFFIX = /^[a-z0-9][a-z0-9.]{0,31}$/;
/** Temp files older than this are leftovers of crashed writers and are removed by a scan. */
const STALE_TMP_MS = 10 * 60 * 1000;
/** Eviction stops at this fraction of the bound, so that it runs rarely. */
const LOW_WATER = 0.9;
/** A hit touches its entry's mtime (the LRU clock) at most this often per process. */
const TOUCH_EVERY_MS = 10_000;
const TOUCH_MEMO_MAX = 65_536;
/** Entries up to this size go into a temp file made ahead (`SPARES` kept), written in place: the create (~0.1 ms) stays in the thread pool, the rest costs less than three trips through it. */
const SYNC_WRITE_MAX = 128 * 1024;
const SPARES = 32;
const openAsync = promisify(fsSync.open);
/** fs.writeFile with callbacks: a raw fd, one write for the whole entry; the promise API's FileHandle and 512 KiB steps cost about twice the event-loop time per 1 MiB entry (1,000 writes, alternating: 104-159 vs 158-228 ms). */
const writeFileCb = promisify(fsSync.writeFile);

let shared: ChunkCache | undefined;

/** Spare temp files of every cache of this process, removed when it exits (a crash leaves them to scans). */
const allSpares = new Set<{ tmp: string; fd: number }>();
process.once('exit', () => allSpares.forEach(closeSpare));

function closeSpare(s: { tmp: string; fd: number }): void {
  allSpares.delete(s);
  try {
    fsSync.closeSync(s.fd);
    fsSync.unlinkSync(s.tmp);
  } catch {
    // gone already
  }
}

/** Writes `data` into spare temp file `spare` (closing it) and renames it to `file`. */
function writeSpare(spare: { tmp: string; fd: number }, data: Uint8Array, file: string): void {
  try {
    for (let off = 0; off < data.length;) off += fsSync.writeSync(spare.fd, data, off, data.length - off);
  } finally {
    fsSync.closeSync(spare.fd);
  }
  fsSync.renameSync(spare.tmp, file);
}

function isENOENT(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

export class ChunkCache {
  readonly dir: string;
  readonly maxBytes: number;
  private hits = 0;
  private misses = 0;
  private puts = 0;
  private evicted = 0;
  private corrupt = 0;
  private partHits = 0;
  /** Approximate total, from the last scan plus this process's puts since; undefined before the first scan. */
  private approx: number | undefined;
  private sinceScan = 0;
  private scanning: Promise<void> | undefined;
  private rescanWanted = false;
  private readonly madeDirs = new Set<string>();
  private readonly touches = new Set<Promise<void>>();
  /** When this process last touched each entry file (bounded: cleared when full). */
  private readonly touchedAt = new Map<string, number>();
  /** Empty temp files made ahead (`refill`), open for writing. */
  private readonly spares: { tmp: string; fd: number }[] = [];
  private refilling = false;

  /**
   * The one cache of this process, at `config.cacheDir()` bounded by `config.cacheBytes()`
   * (`$CAIRN_CACHE_DIR`, `$CAIRN_CACHE_BYTES`).
   *
   * @example const bytes = await ChunkCache.shared().get(ref.hash);
   */
  static shared(): ChunkCache {
    shared ??= new ChunkCache({ dir: cacheDir(), maxBytes: cacheBytes() });
    return shared;
  }

  constructor(opts: ChunkCacheOptions) {
    if (typeof opts.dir !== 'string' || opts.dir === '' || !(opts.maxBytes > 0)) {
      throw new CairnError('INVALID_ARGUMENT', `invalid chunk cache options ${JSON.stringify(opts)}`, {
        hint: 'give a directory and a positive maxBytes',
      });
    }
    this.dir = path.resolve(opts.dir);
    this.maxBytes = opts.maxBytes;
  }

  /** Path of the entry for `hash`. */
  pathOf(hash: string): string {
    return path.join(this.dir, hash.slice(0, 2), hash);
  }

  /**
   * The chunk named `hash`, verified, or undefined (missing, unreadable or corrupt — a corrupt
   * entry is deleted). Never throws.
   *
   * @example const hit = await cache.get(ref.hash); if (!hit) fetchFromStore(ref);
   */
  async get(hash: string): Promise<Buffer | undefined> {
    if (!isChunkHash(hash)) return undefined;
    const file = this.pathOf(hash);
    let data: Buffer | undefined;
    try {
      // A miss (every cold chunk) is told by one access(2) on this thread, not a failed read's trip through the thread pool.
      if (fsSync.existsSync(file)) data = await fs.readFile(file);
    } catch {
      // evicted meanwhile
    }
    if (!data) {
      this.misses++;
      return undefined;
    }
    if ((await hashChunkAsync(data)) !== hash) {
      this.corrupt++;
      this.misses++;
      await fs.unlink(file).catch(() => {});
      return undefined;
    }
    this.hits++;
    this.touch(file);
    return data;
  }

  /**
   * Whether an entry for `hash` exists now (one `access`, no read, no verification, no stats):
   * for polling; `get` is what returns verified bytes. Never throws.
   *
   * @example while (!(await cache.has(hash))) await sleep(5); const bytes = await cache.get(hash);
   */
  async has(hash: string): Promise<boolean> {
    if (!isChunkHash(hash)) return false;
    try {
      await fs.access(this.pathOf(hash));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Stores a chunk the caller has verified (`hash` must be its BLAKE3), atomically (temp file +
   * rename), then evicts if over the bound. Cache failures (disk full, permissions) are
   * swallowed: the cache is an optimisation, never a source of errors. With `evictLater`, the
   * eviction scan this put may start is not waited for (the entry is in place when it resolves).
   */
  async put(hash: string, data: Uint8Array, opts: { evictLater?: boolean } = {}): Promise<void> {
    if (!isChunkHash(hash)) return;
    await this.write(hash, this.pathOf(hash), data, opts.evictLater);
  }

  /**
   * A side entry of chunk `hash` (`<hash>.<suffix>`: a verified block or the outboard of a chunk
   * read partially, ./partial.ts), or undefined (missing, or `valid` refused it: then it is deleted).
   * Never served by `get`/`has`, which name the whole chunk only. Never throws.
   *
   * @example const b = await cache.getPart(ref.hash, 'b32768.3', (d) => cvMatches(d));
   */
  async getPart(hash: string, suffix: string, valid: (data: Buffer) => boolean): Promise<Buffer | undefined> {
    if (!isChunkHash(hash) || !PART_SUFFIX.test(suffix)) return undefined;
    const file = `${this.pathOf(hash)}.${suffix}`;
    let data: Buffer;
    try {
      data = await fs.readFile(file);
    } catch {
      return undefined;
    }
    let ok = false;
    try {
      ok = valid(data);
    } catch {
      // a check that throws refuses the entry
    }
    if (!ok) {
      this.corrupt++;
      await fs.unlink(file).catch(() => {});
      return undefined;
    }
    this.partHits++;
    this.touch(file);
    return data;
  }

  /** Stores a side entry of chunk `hash` the caller has verified (see `getPart`), like `put`. */
  async putPart(hash: string, suffix: string, data: Uint8Array): Promise<void> {
    if (!isChunkHash(hash) || !PART_SUFFIX.test(suffix)) return;
    await this.write(hash, `${this.pathOf(hash)}.${suffix}`, data);
  }

  /** Writes an entry atomically (temp file + rename) into the sub-directory of `hash`, then evicts if over the bound. */
  private async write(hash: string, file: string, data: Uint8Array, evictLater = false): Promise<void> {
    const sub = path.join(this.dir, hash.slice(0, 2));
    let tmp: string | undefined;
    try {
      await this.makeDir(sub);
      const spare = data.length <= SYNC_WRITE_MAX ? this.spare() : undefined;
      if (spare) {
        tmp = spare.tmp;
        writeSpare(spare, data, file);
      } else {
        tmp = path.join(sub, `${TMP_PREFIX}${hash}-${process.pid}-${crypto.randomBytes(6).toString('hex')}`);
        await writeFileCb(tmp, data);
        await fs.rename(tmp, file);
      }
    } catch (err) {
      if (tmp) await fs.unlink(tmp).catch(() => {});
      if (isENOENT(err)) {
        // A directory vanished (e.g. the cache was wiped): make them again, and the spares with them.
        this.madeDirs.clear();
        for (const s of this.spares.splice(0)) closeSpare(s);
      }
      return;
    }
    await this.written(data.length, evictLater);
  }

  /** Counts an entry of `bytes` put in place (here, or for this process by the addon: src/chunks/nativefetch.ts); evicts if over the bound (awaited unless `evictLater`). */
  async written(bytes: number, evictLater = false): Promise<void> {
    this.puts++;
    this.sinceScan += bytes;
    if (this.approx !== undefined) this.approx += bytes;
    if (this.approx === undefined || this.approx > this.maxBytes || this.sinceScan > this.maxBytes / 8) {
      const scan = this.scan();
      if (!evictLater) await scan;
      else scan.catch(() => {});
    }
  }

  /** Makes a sub-directory once per process (`madeDirs` is cleared when one vanishes). */
  private async makeDir(sub: string): Promise<void> {
    if (this.madeDirs.has(sub)) return;
    await fs.mkdir(sub, { recursive: true });
    this.madeDirs.add(sub);
  }

  /** A temp file made ahead, or undefined (none left: the caller makes its own); starts a refill when few are left. */
  private spare(): { tmp: string; fd: number } | undefined {
    const s = this.spares.pop();
    if (s) allSpares.delete(s);
    if (this.spares.length < SPARES / 2 && !this.refilling) {
      this.refilling = true;
      void this.refill().finally(() => (this.refilling = false));
    }
    return s;
  }

  /** Makes temp files ahead in the thread pool, in the sub-directory of a random hash (scans sweep them like any). */
  private async refill(): Promise<void> {
    try {
      const sub = path.join(this.dir, crypto.randomBytes(1).toString('hex'));
      await this.makeDir(sub);
      const make = async (): Promise<void> => {
        const tmp = path.join(sub, `${TMP_PREFIX}spare-${process.pid}-${crypto.randomBytes(6).toString('hex')}`);
        const spare = { tmp, fd: await openAsync(tmp, 'wx') };
        this.spares.push(spare);
        allSpares.add(spare);
      };
      await Promise.all(Array.from({ length: SPARES - this.spares.length }, make));
    } catch {
      // a full disk, a wiped cache: entries are written the slow way meanwhile
    }
  }

  private touch(file: string): void {
    // One touch per entry per TOUCH_EVERY_MS is enough for an LRU evicting by age (a hot chunk read
    // a thousand times a second was a thousand utimes, each a trip through the thread pool).
    const nowMs = Date.now();
    if (nowMs - (this.touchedAt.get(file) ?? -Infinity) < TOUCH_EVERY_MS) return;
    if (this.touchedAt.size >= TOUCH_MEMO_MAX) this.touchedAt.clear();
    this.touchedAt.set(file, nowMs);
    const now = new Date(nowMs);
    const touch: Promise<void> = fs
      .utimes(file, now, now)
      .catch(() => {})
      .finally(() => this.touches.delete(touch));
    this.touches.add(touch);
  }

  /** Waits for the LRU touches (mtime updates) of earlier hits, which `get` does not await. */
  async flush(): Promise<void> {
    while (this.touches.size > 0) await Promise.all([...this.touches]);
  }

  /** Counters of this process, and its estimate of the cache size. */
  stats(): ChunkCacheStats {
    const { hits, misses, approx: bytes, puts, evicted, corrupt, partHits } = this;
    return { hits, misses, bytes, puts, evicted, corrupt, partHits };
  }

  /**
   * Scans the cache now and evicts least-recently-used entries until it is within its bound.
   * Returns the size after eviction.
   */
  async trim(): Promise<number> {
    await this.scan(); // joining a running scan still runs one more that starts after this call
    return this.approx ?? 0;
  }

  /** Single-flight scan + evict; a request during a scan runs one more scan after it. */
  private scan(): Promise<void> {
    if (this.scanning) {
      this.rescanWanted = true;
      return this.scanning;
    }
    this.scanning = (async () => {
      try {
        do {
          this.rescanWanted = false;
          await this.scanOnce();
        } while (this.rescanWanted);
      } finally {
        this.scanning = undefined;
      }
    })();
    return this.scanning;
  }

  private async scanOnce(): Promise<void> {
    this.sinceScan = 0;
    const entries: { file: string; size: number; mtime: number }[] = [];
    let total = 0;
    let subs: string[];
    try {
      subs = await fs.readdir(this.dir);
    } catch {
      this.approx = this.sinceScan;
      return;
    }
    const now = Date.now();
    for (const sub of subs) {
      if (sub.length !== 2) continue;
      let names: string[];
      try {
        names = await fs.readdir(path.join(this.dir, sub));
      } catch {
        continue;
      }
      await Promise.all(
        names.map(async (name) => {
          const file = path.join(this.dir, sub, name);
          try {
            const st = await fs.stat(file);
            if (name.startsWith(TMP_PREFIX)) {
              if (now - st.mtimeMs > STALE_TMP_MS) await fs.unlink(file);
              else total += st.size;
              return;
            }
            entries.push({ file, size: st.size, mtime: st.mtimeMs });
            total += st.size;
          } catch {
            // ENOENT: removed by another process meanwhile
          }
        }),
      );
    }
    if (total > this.maxBytes) {
      entries.sort((a, b) => a.mtime - b.mtime);
      const target = this.maxBytes * LOW_WATER;
      for (const e of entries) {
        if (total <= target) break;
        try {
          await fs.unlink(e.file);
          this.evicted++;
        } catch (err) {
          if (!isENOENT(err)) continue; // could not remove it: it still counts
        }
        total -= e.size;
      }
    }
    // Puts that landed during the scan may or may not have been seen: count them (over, not under).
    this.approx = total + this.sinceScan;
    await this.sweepLeases(now);
  }

  /** Removes leases and holder files without a sign of life for STALE_TMP_MS: their holders crashed. */
  private async sweepLeases(now: number): Promise<void> {
    const dir = path.join(this.dir, LEASE_DIR);
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch {
      return;
    }
    await Promise.all(
      names.map(async (name) => {
        const file = path.join(dir, name);
        try {
          const st = await fs.stat(file);
          // A lease's ctime is its holder's last sign of life (see lease.ts).
          if (now - Math.max(st.ctimeMs, st.mtimeMs) > STALE_TMP_MS) await fs.unlink(file);
        } catch {
          // ENOENT: released meanwhile
        }
      }),
    );
  }
}
