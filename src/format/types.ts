/**
 * Types shared by the volume layer and its users (the FUSE adapter, the CLI, embedders).
 *
 * Paths handed to a Session are volume paths: `/`-separated, relative to the volume root, and
 * normalised by `normalizePath` (leading `/` optional, `''` or `/` is the root).
 */
import type { ReadCursor } from '../chunks/index.js';

export type EntryType = 'file' | 'directory' | 'symlink' | 'fifo' | 'socket' | 'chardev' | 'blockdev';

/**
 * Modal's FileEntry (`mtime` in whole seconds, `size` in bytes), with what `fs.stat` users expect
 * besides: permission bits, owner, group, link count, and the other two times (whole seconds too).
 */
export interface FileEntry {
  path: string;
  type: EntryType;
  mtime: number;
  size: number;
  /** Permission bits (0 to 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  atime: number;
  ctime: number;
}

/** What a session knows about one path. */
export interface Stat {
  /** Normalised path ('' for the root). */
  path: string;
  type: EntryType;
  /** Permission bits (e.g. 0o644), without the file-type bits. */
  mode: number;
  size: number;
  /** Modification time in milliseconds since the epoch. */
  mtimeMs: number;
  /** Access and change times (ms); equal to the mtime for entries that never stored them. */
  atimeMs: number;
  ctimeMs: number;
  /** Owner and group; for entries that never stored them, the user and group of the process serving the session. */
  uid: number;
  gid: number;
  /**
   * Link count: the names of the file (hard links: 1 unless linked), or for a directory 2 plus
   * its subdirectories.
   */
  nlink: number;
  /** The inode identity shared by every name of a hard-linked file (absent: a file with one name). */
  linkId?: string;
  /** Device number, for character and block devices. */
  rdev?: number;
  /** Symlink target, for symlinks. */
  target?: string;
}

/**
 * Who asks for a change (a FUSE request's caller). Calls made without credentials act with
 * full rights (the library's own calls; a mount passes the caller's).
 */
export interface Credentials {
  uid: number;
  gid: number;
  /** Supplementary groups (the primary `gid` counts too). */
  groups?: readonly number[];
}

export interface CommitResult {
  /** The seq this commit created, or the session's seq when there was nothing to commit. */
  seq: number;
  /** Whether a log record was written. */
  committed: boolean;
  /** Paths this commit changed. */
  paths: string[];
  /** Paths this commit overwrote that another writer had changed since this session's base. */
  overwrote: string[];
  /** Bytes of new pack data uploaded. */
  bytesUploaded: number;
}

export interface ReloadResult {
  /** Seq before and after. */
  from: number;
  seq: number;
  /** The commit that reload made first, if there was anything pending. */
  commit?: CommitResult;
  /** Paths that other writers' records applied by this reload changed (normalised). */
  paths?: string[];
  /**
   * Volume paths whose entry the reload changed in this session's view (put or deleted by the
   * records it applied), so a mount can drop exactly those from the kernel's caches. Absent when
   * the session cannot tell: then anything may have changed.
   */
  changed?: string[];
  /**
   * Set when the view was below the volume's pruned floor (a gc pruned the records it would have
   * applied): the reload re-bootstrapped from the newest checkpoint (its seq), pending changes kept.
   */
  rebootstrapped?: { floor: number; checkpoint: number };
}

export interface OpenFile {
  path: string;
  pid?: number;
}

export interface HistoryEntry {
  seq: number;
  /** Milliseconds since the epoch. */
  time: number;
  author: string;
  paths: string[];
}

/**
 * What a mount needs of a session: POSIX-shaped calls on volume paths. The FUSE adapter calls
 * only these and maps CairnError codes to errno. Every call validates its paths; writes on a
 * read-only session throw READ_ONLY. Writes are visible to this session at once and to others
 * only after `commit()`.
 */
export interface FsSession {
  readonly readOnly: boolean;
  /** The snapshot this session is based on. */
  readonly seq: number;

  stat(path: string): Promise<Stat>;
  /** `stat` without a promise: the entry, or undefined where `stat` would fail with NOT_FOUND. */
  lookup?(path: string): Stat | undefined;
  /** Direct children of a directory (NOT_FOUND, NOT_A_DIRECTORY). */
  readdir(path: string): Promise<Stat[]>;
  /**
   * Up to `length` bytes at `offset` (short at end of file). `cursor` is the reader's own read
   * state (`cursor()`: one per open file handle); without one, the readers of a path share one.
   */
  read(path: string, offset: number, length: number, cursor?: ReadCursor): Promise<Buffer>;
  /**
   * Fast path of `read` for the FUSE adapter: when the bytes are at hand in memory (no I/O),
   * copies them into `into` synchronously and returns their count (0 at end of file); otherwise
   * (or on any error) returns undefined and changes nothing: the caller then uses `read`.
   */
  readCached?(path: string, offset: number, length: number, into: Buffer, cursor?: ReadCursor): number | undefined;
  /** A new read state for one reader (sequential detection, its read-ahead window). */
  cursor?(): ReadCursor;
  readlink(path: string): Promise<string>;

  /** Creates an empty file, replacing an existing file (IS_A_DIRECTORY if a directory is there). */
  create(path: string, mode: number, cred?: Credentials): Promise<void>;
  /**
   * Writes bytes at an offset of an existing file, extending it as needed; with `keepTimes` its
   * mtime and ctime stay (the kernel's writeback cache sets them itself with a setattr).
   */
  write(path: string, offset: number, data: Uint8Array, cred?: Credentials, keepTimes?: boolean): Promise<void>;
  /** Sets the size (zeros past the old end); mtime and ctime become now even when it is unchanged; `cred` other than root clears setuid/setgid. */
  truncate(path: string, size: number, cred?: Credentials): Promise<void>;
  /** Makes this path's written data durable in the session directory (survives SIGKILL). */
  fsync(path: string): Promise<void>;
  mkdir(path: string, mode: number, cred?: Credentials): Promise<void>;
  /**
   * link(2): a second name `newPath` for the non-directory `existing` (NOT_PERMITTED for a
   * directory, ALREADY_EXISTS, NOT_FOUND); both names are one file from then on.
   */
  link?(existing: string, newPath: string): Promise<void>;
  /** Removes a file or symlink (IS_A_DIRECTORY for directories). */
  unlink(path: string): Promise<void>;
  /** Removes an empty directory (NOT_EMPTY otherwise). */
  rmdir(path: string): Promise<void>;
  /** POSIX rename: replaces a file, or an empty directory with a directory. */
  rename(from: string, to: string): Promise<void>;
  symlink(target: string, path: string, cred?: Credentials): Promise<void>;
  chmod(path: string, mode: number, cred?: Credentials): Promise<void>;
  utimes(path: string, mtimeMs: number): Promise<void>;
  /** Sets atime and/or mtime (an absent one stays). */
  setTimes?(path: string, t: { atimeMs?: number; mtimeMs?: number }): Promise<void>;
  /** chown(2): -1 leaves an id unchanged; with `cred`, POSIX rules (NOT_PERMITTED). */
  chown?(path: string, uid: number, gid: number, cred?: Credentials): Promise<void>;
  /** mknod(2) of a FIFO, socket or device (`rdev`), or a regular file. */
  mknod?(path: string, type: EntryType, mode: number, rdev?: number, cred?: Credentials): Promise<void>;
  setxattr?(path: string, name: string, value: Buffer, flags?: 'create' | 'replace', cred?: Credentials): Promise<void>;
  getxattr?(path: string, name: string, cred?: Credentials): Promise<Buffer>;
  listxattr?(path: string, cred?: Credentials): Promise<string[]>;
  removexattr?(path: string, name: string, cred?: Credentials): Promise<void>;
  /** Whether an entry (of `paths`, or of the whole view) has extended attribute `name`. */
  hasXattr?(name: string, paths?: Iterable<string>): boolean;

  commit(): Promise<CommitResult>;
  /** Commits pending changes, then moves to the newest snapshot; VOLUME_BUSY with open files. */
  reload(): Promise<ReloadResult>;
  /** Number of pending (uncommitted) operations. */
  pendingCount(): number;
  close(): Promise<void>;
}
