/**
 * An in-memory FsSession for tests: entries in a Map, file bytes in Buffers. It is small but
 * keeps the session contract the adapter relies on (typed errors, POSIX rename, read-only,
 * open-file tracking, VOLUME_BUSY on reload with open files), so the FUSE layer can be tested
 * before, and independently of, the real session. A unit-test stand-in driven directly
 * (test/fuse/adapter.test.ts); mounts always serve the real session.
 */
import { CairnError } from '../../src/errors.js';
import { normalizePath, parentOf, isWithin } from '../../src/format/paths.js';
import type { CommitResult, EntryType, FsSession, ReloadResult, Stat } from '../../src/format/types.js';

interface Node {
  type: EntryType;
  mode: number;
  mtimeMs: number;
  size: number;
  data?: Buffer;
  target?: string;
}

type Tree = Map<string, Node>;

export interface MemSessionOptions {
  volumeName?: string;
  readOnly?: boolean;
}

function dirNode(mode = 0o755): Node {
  return { type: 'directory', mode, mtimeMs: Date.now(), size: 0 };
}

function err(code: ConstructorParameters<typeof CairnError>[0], msg: string, p: string): CairnError {
  return new CairnError(code, msg, { path: `/${p}` });
}

/** The in-memory session. */
export class MemSession implements FsSession {
  readonly readOnly: boolean;
  readonly volumeName: string;
  seq = 0;
  private tree: Tree = new Map([['', dirNode()]]);
  private dirty = new Set<string>();
  private closed = false;
  commits = 0;

  constructor(opts: MemSessionOptions = {}) {
    this.readOnly = !!opts.readOnly;
    this.volumeName = opts.volumeName ?? 'mem';
  }

  status(): object {
    return { kind: 'memory', volume: this.volumeName, seq: this.seq, pending: this.dirty.size, commits: this.commits };
  }

  // --- helpers ---------------------------------------------------------------------------

  private live(): void {
    if (this.closed) throw new CairnError('CLOSED', 'session is closed', { volume: this.volumeName });
  }

  private writable(p: string): void {
    this.live();
    if (this.readOnly) throw new CairnError('READ_ONLY', `volume ${this.volumeName} is mounted read-only`, { path: `/${p}` });
  }

  private get(p: string): Node {
    const n = this.tree.get(p);
    if (!n) throw err('NOT_FOUND', `no such file or directory: /${p}`, p);
    return n;
  }

  private file(p: string): Node {
    const n = this.get(p);
    if (n.type === 'directory') throw err('IS_A_DIRECTORY', `/${p} is a directory`, p);
    return n;
  }

  /** The parent directory must exist and be a directory. */
  private parentDir(p: string): Node {
    if (p === '') throw err('INVALID_ARGUMENT', 'the root cannot be changed', p);
    const parent = this.tree.get(parentOf(p));
    if (!parent) throw err('NOT_FOUND', `parent directory of /${p} does not exist`, p);
    if (parent.type !== 'directory') throw err('NOT_A_DIRECTORY', `parent of /${p} is not a directory`, p);
    return parent;
  }

  private touchParent(p: string): void {
    const parent = this.tree.get(parentOf(p));
    if (parent) parent.mtimeMs = Date.now();
  }

  private mark(p: string): void {
    this.dirty.add(p);
  }

  private children(p: string): string[] {
    const out: string[] = [];
    for (const k of this.tree.keys()) if (k !== p && parentOf(k) === p && k !== '') out.push(k);
    return out;
  }

  private toStat(p: string, n: Node): Stat {
    return {
      path: p,
      type: n.type,
      mode: n.mode,
      size: n.type === 'file' ? n.size : 0,
      mtimeMs: n.mtimeMs,
      atimeMs: n.mtimeMs,
      ctimeMs: n.mtimeMs,
      uid: process.getuid?.() ?? 0,
      gid: process.getgid?.() ?? 0,
      nlink: n.type === 'directory' ? 2 : 1,
      ...(n.target !== undefined ? { target: n.target } : {}),
    };
  }

  // --- reads -----------------------------------------------------------------------------

  async stat(p0: string): Promise<Stat> {
    this.live();
    const p = normalizePath(p0);
    return this.toStat(p, this.get(p));
  }

  async readdir(p0: string): Promise<Stat[]> {
    this.live();
    const p = normalizePath(p0);
    const n = this.get(p);
    if (n.type !== 'directory') throw err('NOT_A_DIRECTORY', `/${p} is not a directory`, p);
    return this.children(p)
      .sort()
      .map((c) => this.toStat(c, this.tree.get(c)!));
  }

  async read(p0: string, offset: number, length: number): Promise<Buffer> {
    this.live();
    const p = normalizePath(p0);
    const n = this.file(p);
    if (offset >= n.size || !n.data) return Buffer.alloc(0);
    const end = Math.min(n.size, offset + length);
    return Buffer.from(n.data.subarray(offset, end));
  }

  async readlink(p0: string): Promise<string> {
    this.live();
    const p = normalizePath(p0);
    const n = this.get(p);
    if (n.type !== 'symlink') throw err('INVALID_ARGUMENT', `/${p} is not a symlink`, p);
    return n.target ?? '';
  }

  // --- writes ----------------------------------------------------------------------------

  async create(p0: string, mode: number): Promise<void> {
    const p = normalizePath(p0);
    this.writable(p);
    this.parentDir(p);
    const old = this.tree.get(p);
    if (old?.type === 'directory') throw err('IS_A_DIRECTORY', `/${p} is a directory`, p);
    this.tree.set(p, { type: 'file', mode, mtimeMs: Date.now(), size: 0 });
    this.touchParent(p);
    this.mark(p);
  }

  async write(p0: string, offset: number, data: Uint8Array): Promise<void> {
    const p = normalizePath(p0);
    this.writable(p);
    const n = this.file(p);
    const end = offset + data.length;
    if (!n.data || n.data.length < end) {
      const grown = Buffer.alloc(Math.max(end, (n.data?.length ?? 0) * 2));
      if (n.data) n.data.copy(grown, 0, 0, n.size);
      n.data = grown;
    }
    n.data.set(data, offset);
    n.size = Math.max(n.size, end);
    n.mtimeMs = Date.now();
    this.mark(p);
  }

  async truncate(p0: string, size: number): Promise<void> {
    const p = normalizePath(p0);
    this.writable(p);
    const n = this.file(p);
    if (size < 0) throw err('INVALID_ARGUMENT', 'negative size', p);
    if (size < n.size && n.data) n.data.fill(0, size, n.size);
    if (size > (n.data?.length ?? 0)) {
      const grown = Buffer.alloc(size);
      if (n.data) n.data.copy(grown, 0, 0, Math.min(n.size, size));
      n.data = grown;
    }
    n.size = size;
    n.mtimeMs = Date.now();
    this.mark(p);
  }

  async fsync(p0: string): Promise<void> {
    this.live();
    this.get(normalizePath(p0));
  }

  async mkdir(p0: string, mode: number): Promise<void> {
    const p = normalizePath(p0);
    this.writable(p);
    this.parentDir(p);
    if (this.tree.has(p)) throw err('ALREADY_EXISTS', `/${p} already exists`, p);
    this.tree.set(p, dirNode(mode));
    this.touchParent(p);
    this.mark(p);
  }

  async unlink(p0: string): Promise<void> {
    const p = normalizePath(p0);
    this.writable(p);
    this.file(p);
    this.tree.delete(p);
    this.touchParent(p);
    this.mark(p);
  }

  async rmdir(p0: string): Promise<void> {
    const p = normalizePath(p0);
    this.writable(p);
    const n = this.get(p);
    if (n.type !== 'directory') throw err('NOT_A_DIRECTORY', `/${p} is not a directory`, p);
    if (p === '') throw err('VOLUME_BUSY', 'cannot remove the root', p);
    if (this.children(p).length) throw err('NOT_EMPTY', `directory /${p} is not empty`, p);
    this.tree.delete(p);
    this.touchParent(p);
    this.mark(p);
  }

  async rename(from0: string, to0: string): Promise<void> {
    const from = normalizePath(from0);
    const to = normalizePath(to0);
    this.writable(from);
    const src = this.get(from);
    this.parentDir(to);
    if (from === to) return;
    if (src.type === 'directory' && isWithin(to, from)) throw err('INVALID_ARGUMENT', `cannot move /${from} into itself`, to);
    const dst = this.tree.get(to);
    if (dst) {
      if (src.type === 'directory' && dst.type !== 'directory') throw err('NOT_A_DIRECTORY', `/${to} is not a directory`, to);
      if (src.type !== 'directory' && dst.type === 'directory') throw err('IS_A_DIRECTORY', `/${to} is a directory`, to);
      if (dst.type === 'directory' && this.children(to).length) throw err('NOT_EMPTY', `directory /${to} is not empty`, to);
    }
    const moves: [string, string][] = [];
    for (const k of this.tree.keys()) if (k !== '' && isWithin(k, from)) moves.push([k, to + k.slice(from.length)]);
    const nodes = moves.map(([k]) => this.tree.get(k)!);
    for (const [k] of moves) {
      this.tree.delete(k);
      this.mark(k);
    }
    moves.forEach(([, k2], i) => {
      this.tree.set(k2, nodes[i]);
      this.mark(k2);
    });
    this.touchParent(from);
    this.touchParent(to);
  }

  async symlink(target: string, p0: string): Promise<void> {
    const p = normalizePath(p0);
    this.writable(p);
    this.parentDir(p);
    if (this.tree.has(p)) throw err('ALREADY_EXISTS', `/${p} already exists`, p);
    this.tree.set(p, { type: 'symlink', mode: 0o777, mtimeMs: Date.now(), size: 0, target });
    this.touchParent(p);
    this.mark(p);
  }

  async chmod(p0: string, mode: number): Promise<void> {
    const p = normalizePath(p0);
    this.writable(p);
    this.get(p).mode = mode & 0o7777;
    this.mark(p);
  }

  async utimes(p0: string, mtimeMs: number): Promise<void> {
    const p = normalizePath(p0);
    this.writable(p);
    this.get(p).mtimeMs = mtimeMs;
    this.mark(p);
  }

  // --- commit, reload ----------------------------------------------------------------------

  pendingCount(): number {
    return this.dirty.size;
  }

  async commit(): Promise<CommitResult> {
    this.live();
    const paths = [...this.dirty].sort().map((p) => `/${p}`);
    if (!this.dirty.size) return { seq: this.seq, committed: false, paths: [], overwrote: [], bytesUploaded: 0 };
    let bytes = 0;
    for (const p of this.dirty) bytes += this.tree.get(p)?.size ?? 0;
    this.seq += 1;
    this.dirty.clear();
    this.commits += 1;
    return { seq: this.seq, committed: true, paths, overwrote: [], bytesUploaded: bytes };
  }

  async reload(): Promise<ReloadResult> {
    this.live();
    const from = this.seq;
    const commit = this.dirty.size ? await this.commit() : undefined;
    return { from, seq: this.seq, ...(commit ? { commit } : {}) };
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
