/**
 * Types shared by the volume layer and its users (the FUSE adapter, the CLI, embedders).
 *
 * Paths handed to a Session are volume paths: `/`-separated, relative to the volume root, and
 * normalised by `normalizePath` (leading `/` optional, `''` or `/` is the root).
 */

export type EntryType = 'file' | 'directory' | 'symlink' | 'fifo' | 'socket';

/** Modal's FileEntry: `mtime` in whole seconds, `size` in bytes. */
export interface FileEntry {
  path: string;
  type: EntryType;
  mtime: number;
  size: number;
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
  /** Symlink target, for symlinks. */
  target?: string;
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
