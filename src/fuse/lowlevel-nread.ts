/**
 * Native cached reads, the JavaScript half (native/nread.c is the other): which open files the
 * addon's worker threads may answer READs for without entering JavaScript, and the verified chunk
 * bytes they answer from.
 *
 * - An open for reading of a committed, unchanged file (not staged, not open for writing in this
 *   mount) registers the handle's chunk layout (offsets and BLAKE3 names) with the addon before the
 *   open is answered.
 * - With the host cache (the session's `chunks.cacheDir`, given once per mount: `nreadCache`), the
 *   addon's threads load a chunk they lack from its cache entry themselves and verify it with the
 *   addon's C BLAKE3 against the name in the layout (native/ncache.c): a warm read never enters
 *   JavaScript. Nothing is loaded at open then. Without it (no cache, the addon's BLAKE3 missing or
 *   failing its self-test, `CAIRN_FUSE_NCACHE=0`), a small file (up to 1 MiB) has its chunks loaded
 *   at open, so its reads never reach JavaScript, and a larger one starts loading its first chunks.
 * - JavaScript loads chunks with the chunk layer's `readChunk`, which verifies each against its
 *   name (memory LRU, host cache, store), and then copies them into the addon's bounded store
 *   (`nreadPut`). Those and the addon's own verified loads are all that fill it: a damaged cache
 *   file is refused by one verification or the other and never reaches a reply.
 * - The addon tells us when a natively served reader enters a new chunk (`ahead`): we load the
 *   chunks after it (a window of WINDOW chunks). With the host cache it tells us instead when a
 *   chunk within WINDOW after a sequential reader's is in neither its store nor the cache (its
 *   index - 1), and we load that one chunk. A READ the addon could not serve (a cold chunk, a
 *   damaged or vanished cache entry) reaches JavaScript as before (`missed`), and we load the chunk
 *   it needed (without the host cache, for a sequential reader, and the window after it).
 * - Before anything changes a file's bytes (an open for writing, write, truncate, fallocate, a
 *   create over it) and for every inode a reload changed, its layouts are dropped (`drop`):
 *   reads then go to JavaScript, which sees the new bytes. Release drops the handle's layout in
 *   the addon itself.
 * - Native opens (native/nopen.c; with the host cache, unless `CAIRN_FUSE_NOPEN=0`): once
 *   JavaScript has answered a read-only open of a committed, unchanged file, it registers by inode
 *   the layouts of that file and of the other files of its directory the kernel knows (up to
 *   DIR_FILES, LAYOUT_CHUNKS chunks each; in slices, between other work), so their OPENs and
 *   RELEASEs are answered by the addon too: a warm small file then costs JavaScript nothing. The
 *   same checks decide as for a handle; the same drops (by inode) remove them; the handles opened
 *   so are read back into the open-file table (`opened`), so reload and unmount see them.
 */
import type { ChunkRef } from '../chunks/index.js';
import { wantsWrite, type HandleEntry, type HandleTable } from './handles.js';
import { OP, SET_ATTR, type NreadAddon, type NreadStats } from './lowlevel-addon.js';

/** Chunks loaded ahead of a sequential reader. */
const WINDOW = 8;
/**
 * A read reaching JavaScript within this many bytes of where the last one it served ended is
 * sequential: READs in flight arrive out of order, here more than in the addon (nstore.h's
 * SEQ_BYTES, 2 MiB), since a READ may first wait there for another worker's load.
 */
const SEQ_BYTES = 4 << 20;
/** Files up to this size have all their chunks loaded before the open is answered. */
const SMALL_FILE = 1 << 20;
/** Files of a directory registered for native opens after one of them was opened; chunks of each at most (nopen.c's bound). */
const DIR_FILES = 8192;
const LAYOUT_CHUNKS = 16;
/** Directories remembered as registered (then forgotten all at once). */
const DIRS_REMEMBERED = 4096;
/** Default budget of the addon's store (`CAIRN_FUSE_NREAD_BYTES`; 0 turns native reads off). */
export const NREAD_DEFAULT_BYTES = 64 << 20;

/** What native reads need of a session: a file's stored entry and verified chunk bytes. */
export interface ChunkSource {
  entryAt(path: string): { type: string; size: number; staged?: unknown; chunks?: readonly ChunkRef[] } | undefined;
  /** A directory's entries (for native opens of its files); without it, only opened files are registered. */
  readdir?(path: string): Promise<readonly { path: string; type: string }[]>;
  readonly chunks: { readChunk(ref: ChunkRef, opts?: { neighbours?: boolean }): Promise<Buffer>; readonly cacheDir?: string };
}

/** The budget of native cached reads from the environment (`CAIRN_FUSE_NREAD_BYTES`). */
export function nreadBudget(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.CAIRN_FUSE_NREAD_BYTES;
  if (v === undefined || v === '') return NREAD_DEFAULT_BYTES;
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? Math.floor(n) : NREAD_DEFAULT_BYTES;
}

/** Whether read-only opens may be answered natively (`CAIRN_FUSE_NOPEN=0` turns them off, to compare). */
export function nopenAllowed(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.CAIRN_FUSE_NOPEN !== '0';
}

/** Whether the addon may read the host cache itself (`CAIRN_FUSE_NCACHE=0` turns it off, to compare). */
export function ncacheAllowed(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.CAIRN_FUSE_NCACHE !== '0';
}

interface OpenFile {
  ino: number;
  refs: readonly ChunkRef[];
  names: Buffer[];
  /** Chunks before this index have been loaded (or started). */
  next: number;
  /** The chunk of the last read JavaScript served (sequential detection). */
  last: number;
  /** Where the last read JavaScript served ends (sequential detection, in bytes). */
  end: number;
}

/**
 * The registry of natively served handles of one mount.
 *
 * @example
 *   const nr = new NativeReads(addon, ctx, session, handles);
 *   nr.open(fh, ino, '/a.bin', O_RDONLY, () => addon.replyOpen(req, fh, 1, 0)); // reads may now be served natively
 */
export class NativeReads {
  private readonly files = new Map<number, OpenFile>();
  /** Registered handles per inode (a write costs one lookup, not a scan of every open file). */
  private readonly byIno = new Map<number, Set<number>>();
  /** The addon loads chunks from the host cache itself (verified by its C BLAKE3): nothing is loaded at open. */
  readonly fromCache: boolean;
  /** Read-only opens of registered inodes are answered by the addon (native/nopen.c). */
  readonly nativeOpens: boolean;
  /** Directories whose files were registered for native opens. */
  private readonly dirsDone = new Set<string>();

  constructor(
    private readonly addon: NreadAddon,
    private readonly ctx: unknown,
    private readonly source: ChunkSource,
    private readonly handles: HandleTable,
    /** The inode of a path the kernel knows (else undefined), and the current path of an inode. */
    private readonly inodes?: { peek(path: string): number | undefined; path(ino: number): string | null },
  ) {
    const dir = source.chunks.cacheDir;
    this.fromCache = dir !== undefined && ncacheAllowed() && addon.nreadCache?.(ctx, dir) === true;
    this.nativeOpens = this.fromCache && !!inodes && nopenAllowed() && typeof addon.nreadLayout === 'function';
    if (this.nativeOpens) handles.setExternal(() => this.opened());
  }

  /** The handles the addon opened itself, as open-file table entries (their current paths). */
  opened(): HandleEntry[] {
    const a = this.addon.nreadOpened?.(this.ctx);
    const out: HandleEntry[] = [];
    for (let i = 0; a && i + 2 < a.length; i += 3) {
      const path = this.inodes?.path(a[i + 1]!) ?? `(inode ${a[i + 1]})`;
      out.push({ fh: a[i]!, path, flags: 0, ...(a[i + 2]! > 0 ? { pid: a[i + 2]! } : {}) });
    }
    return out;
  }

  /** The mount ends: the table stops reading the addon. */
  close(): void {
    if (this.nativeOpens) this.handles.setExternal(undefined);
  }

  /**
   * Before JavaScript runs request `op` (the handler's numbers): drops the layouts of a file about
   * to change (an open for writing or truncating, a write, a truncate, a fallocate, a create over
   * `child()`), loads what
   * a READ the addon could not answer needs, forgets a released handle.
   */
  before(op: number, ino: number, n0: number, n1: number, n2: number, child: () => number | undefined): void {
    if (op === OP.READ) return this.missed(n2, n1, n0);
    if (op === OP.RELEASE) return this.forget(n2);
    // A write or fallocate too: a handle opened for writing under another name of the inode (a hard link).
    if ((op === OP.OPEN && wantsWrite(n0)) || (op === OP.SETATTR && n0 & SET_ATTR.SIZE) || op === OP.WRITE || op === OP.FALLOCATE) {
      return this.drop(ino);
    }
    if (op === OP.CREATE) {
      const c = child();
      if (c !== undefined) this.drop(c);
    }
  }

  /**
   * Answers an open (`reply`) once handle `fh` is registered, when its file may be served
   * natively, and a small file's chunks are loaded (failures are left to the reads). Returns true.
   */
  open(fh: number, ino: number, path: string, flags: number, reply: () => void): true {
    this.register(fh, ino, path, flags).then(reply, reply);
    if (this.nativeOpens && !wantsWrite(flags)) setImmediate(() => void this.registerDir(path, ino).catch(() => undefined));
    return true;
  }

  /** The layout of a committed, unchanged file at `path` that may be served natively, or undefined. */
  private layoutOf(
    path: string,
    exceptFh?: number,
    writing = this.writing(exceptFh),
    ino?: number,
  ): { size: number; refs: readonly ChunkRef[]; offsets: Float64Array; names: Buffer[] } | undefined {
    const e = this.source.entryAt(path);
    if (!e || e.type !== 'file' || e.staged || !e.chunks?.length || e.size <= 0) return undefined;
    if (writing.has(path) || (ino !== undefined && writing.has(ino))) return undefined;
    const refs = e.chunks;
    const offsets = new Float64Array(refs.length + 1);
    for (let i = 0; i < refs.length; i++) offsets[i + 1] = offsets[i]! + refs[i]!.length;
    if (offsets[refs.length] !== e.size) return undefined;
    const names = refs.map((r) => Buffer.from(r.hash, 'hex'));
    if (names.some((n) => n.length !== 32)) return undefined;
    return { size: e.size, refs, offsets, names };
  }

  /**
   * The paths open for writing in this mount (but through handle `exceptFh`), and their inodes
   * (hard links: other names). Only JavaScript's handles: the addon opens files read-only, so its
   * list (asked of the addon, per registration and LOOKUP otherwise) never holds one.
   */
  private writing(exceptFh?: number): Set<string | number> {
    const out = new Set<string | number>();
    for (const h of this.handles.own()) {
      if (h.fh === exceptFh || !wantsWrite(h.flags)) continue;
      out.add(h.path);
      const i = this.inodes?.peek(h.path);
      if (i !== undefined) out.add(i);
    }
    return out;
  }

  /**
   * A LOOKUP answered `path`, a regular file (inode `ino`): registered for native opens when its
   * directory's files are, so files opened by name without a listing (after the directory's first
   * open) open natively too.
   */
  looked(path: string, ino: number): void {
    if (this.nativeOpens && this.dirsDone.has(path.slice(0, path.lastIndexOf('/')) || '/')) this.layout(path, ino);
  }

  /**
   * The addon now answers LOOKUPs of the names of `dir` (./lowlevel-lookups.ts), whose inodes all
   * exist: the next open answered by JavaScript there registers every file of it again (one
   * registered before knew only the inodes looked up by then).
   */
  namesLeft(dir: string): void {
    this.dirsDone.delete(dir);
  }

  /**
   * After a read-only open of `path` (inode `ino`) answered by JavaScript: registers for native
   * opens that file and the files of its directory the kernel knows (once per directory), in
   * slices of 256 with the event loop free between them.
   */
  private async registerDir(path: string, ino: number): Promise<void> {
    this.layout(path, ino);
    const dir = path.slice(0, path.lastIndexOf('/')) || '/';
    if (this.dirsDone.has(dir) || !this.source.readdir) return;
    if (this.dirsDone.size >= DIRS_REMEMBERED) this.dirsDone.clear();
    this.dirsDone.add(dir);
    const kids = await this.source.readdir(dir);
    let n = 0;
    let writing = this.writing();
    for (const k of kids) {
      if (k.type !== 'file') continue;
      const p = `${dir === '/' ? '' : dir}/${k.path.slice(k.path.lastIndexOf('/') + 1)}`;
      const i = this.inodes!.peek(p);
      if (i === undefined || p === path) continue;
      this.layout(p, i, writing);
      if (++n >= DIR_FILES) break;
      if (n % 256 === 0) {
        await new Promise((r) => setImmediate(r));
        writing = this.writing(); // opens for writing meanwhile
      }
    }
  }

  /** Registers the layout of `path` (inode `ino`) for native opens when it may be served natively. */
  private layout(path: string, ino: number, writing?: Set<string | number>): void {
    const l = this.layoutOf(path, undefined, writing, ino);
    if (!l || l.refs.length > LAYOUT_CHUNKS) return;
    this.addon.nreadLayout!(this.ctx, ino, l.size, l.offsets, Buffer.concat(l.names));
  }

  /** After a reload: drops the layouts of the changed paths (`peek`: their inodes), or all of them. */
  dropChanged(changed: Iterable<string> | undefined, peek: (path: string) => number | undefined): void {
    const inos = changed ? [...changed].map(peek) : [...this.byIno.keys()];
    for (const i of inos) if (i !== undefined) this.drop(i);
    if (!changed && this.nativeOpens) this.addon.nreadForget?.(this.ctx);
    this.dirsDone.clear();
  }

  private async register(fh: number, ino: number, path: string, flags: number): Promise<void> {
    if (wantsWrite(flags)) return;
    const l = this.layoutOf(path, fh, undefined, ino);
    if (!l) return;
    const { refs, names, size } = l;
    this.addon.nreadOpen(this.ctx, fh, ino, size, l.offsets, Buffer.concat(names));
    const f: OpenFile = { ino, refs, names, next: 0, last: -2, end: 0 };
    this.forget(fh);
    this.files.set(fh, f);
    this.byIno.set(ino, (this.byIno.get(ino) ?? new Set()).add(fh));
    if (this.fromCache) return; // the addon loads warm chunks itself; a cold one's READ comes here (`missed`)
    // A small file is loaded whole before the open is answered, with the pack block around it (as
    // JavaScript's reads of small files do): a cold directory of small files costs a GET per block, not per file.
    const loads = this.load(f, 0, size <= SMALL_FILE ? refs.length : WINDOW, false, size <= SMALL_FILE);
    if (size <= SMALL_FILE) await Promise.all(loads);
  }

  /**
   * A natively served reader of `fh` entered chunk `idx`: load the window after it (with the host
   * cache: chunk `idx + 1` is in neither the addon's store nor the cache: load it).
   */
  ahead(fh: number, idx: number): void {
    const f = this.files.get(fh);
    if (!f) return;
    // With the host cache, the addon names the first chunk in neither its store nor the cache: load
    // that one (the addon loads the warm ones itself, and names the next cold one when it finds it).
    if (this.fromCache) void this.load(f, idx + 1, idx + 2, true);
    else void this.load(f, Math.max(f.next, idx + 1), idx + 1 + WINDOW);
  }

  /** JavaScript served a READ of `fh` at `offset` (the addon could not): load what it needs. */
  missed(fh: number, offset: number, size = 1): void {
    const f = this.files.get(fh);
    if (!f) return;
    let i = 0;
    let end = 0;
    for (; i < f.refs.length; i++) {
      end += f.refs[i]!.length;
      if (offset < end) break;
    }
    if (i >= f.refs.length) return;
    // The chunks the READ covers: [i, j).
    let j = i + 1;
    for (let at = end; j < f.refs.length && at < offset + size; j++) at += f.refs[j]!.length;
    const sequential = i === f.last || i === f.last + 1;
    // A random reader (with the host cache): not sequential (nor near where the last READ ended: a
    // sequential reader's READs may reach us out of order), and not a first READ at the start.
    const near = Math.abs(offset - f.end) <= SEQ_BYTES;
    const random = this.fromCache && !sequential && !near && !(f.last === -2 && i === 0);
    f.last = i;
    f.end = offset + size;
    // With the host cache only the chunk needed: the chunk layer's read-ahead of this READ fills the
    // host cache ahead of the reader, and the addon loads from there.
    // A random reader's chunks (all the READ covers): their outboards too (computed off this thread,
    // written as `<hash>.ob`), so random readers, in this mount and the next, load verified blocks.
    void this.load(f, i, random ? j : sequential && !this.fromCache ? i + 1 + WINDOW : i + 1, true, false, random);
  }

  /** The file of inode `ino` is about to change: no more native reads of its old layout. */
  drop(ino: number): void {
    const fhs = this.byIno.get(ino);
    if (!fhs && !this.nativeOpens) return;
    this.byIno.delete(ino);
    for (const fh of fhs ?? []) this.files.delete(fh);
    this.addon.nreadDrop(this.ctx, ino); // also the inode's layout for native opens
  }

  /** Handle `fh` was released (the addon forgot its layout itself). */
  private forget(fh: number): void {
    const f = this.files.get(fh);
    if (!f) return;
    this.files.delete(fh);
    const fhs = this.byIno.get(f.ino);
    fhs?.delete(fh);
    if (fhs?.size === 0) this.byIno.delete(f.ino);
  }

  stats(): NreadStats {
    return this.addon.nreadStats(this.ctx);
  }

  /**
   * Loads chunks [from, to) of `f` into the addon's store (verified by the chunk layer first).
   * `again`: also chunks before `f.next` (a seek back), else only new ones; `neighbours`: with the
   * pack blocks around them (small files); `outboard`: and their outboards (native/nchunks.c).
   */
  private load(f: OpenFile, from: number, to: number, again = false, neighbours = false, outboard = false): Promise<void>[] {
    const out: Promise<void>[] = [];
    const end = Math.min(to, f.refs.length);
    for (let i = again ? from : Math.max(from, f.next); i < end; i++) {
      if (this.addon.nreadHas(this.ctx, f.names[i]!)) continue;
      const ref = f.refs[i]!;
      const name = f.names[i]!;
      out.push(
        this.source.chunks.readChunk(ref, { neighbours }).then(
          (bytes) => {
            if (bytes.length !== ref.length) return;
            this.addon.nreadPut(this.ctx, name, bytes);
            if (outboard) this.addon.nreadOutboard?.(this.ctx, name);
          },
          () => undefined, // the read that needs it reports the error
        ),
      );
    }
    if (end > f.next) f.next = end;
    return out;
  }
}

/**
 * The session as a chunk source when it is one (a full session is; a test's stand-in may not be).
 *
 * @example const source = chunkSourceOf(session); // pass as the binding's chunkSource
 */
export function chunkSourceOf(s: unknown): ChunkSource | undefined {
  const c = s as Partial<ChunkSource> | undefined;
  return typeof c?.entryAt === 'function' && typeof c.chunks?.readChunk === 'function' ? (c as ChunkSource) : undefined;
}
