/**
 * Batch uploads (`vol.batchUpload`): local files, buffers and directories put into a volume in
 * one all-or-nothing commit.
 *
 * Invariants: every remote path and mode is validated when it is added (a trailing `/` on
 * putFile is an error, a mode outside 0..0o7777 too); a local file past the maximum file size is
 * TOO_LARGE; nothing is applied until every check passed and every byte is uploaded; a directory
 * is never overwritten; an existing file is overwritten only with `force`; parents are created.
 */
import { createReadStream, type Stats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { CairnError, asCairnError } from '../errors.js';
import type { ChunkStore } from '../chunks/index.js';
import { type EntryData, ancestors, joinPath, normalizePath } from '../format/index.js';
import { type ContentSource, type Session, WHOLE_READ_MAX, contentEncoder } from '../session/index.js';
import { checkFileEnd, checkMode } from '../util/limits.js';

type Source = string | Uint8Array;

interface FileSpec {
  kind: 'file';
  source: Source;
  remote: string;
  mode?: number;
}

interface DirSpec {
  kind: 'dir';
  local: string;
  remote: string;
  recursive: boolean;
}

/** What the batchUpload callback receives. */
export class Batch {
  readonly specs: (FileSpec | DirSpec)[] = [];

  /**
   * Adds a local file (path) or bytes at a remote file path.
   * @example batch.putFile('./model.bin', '/models/model.bin', { mode: 0o600 });
   */
  putFile(source: Source, remotePath: string, options: { mode?: number } = {}): void {
    if (typeof remotePath !== 'string' || remotePath.endsWith('/')) {
      throw new CairnError('INVALID_ARGUMENT', `remote path ${JSON.stringify(remotePath)} ends with "/"`, {
        path: String(remotePath),
        hint: 'give the full remote file path, e.g. "/dir/name.txt"',
      });
    }
    const remote = normalizePath(remotePath, 'remote path');
    if (remote === '') throw new CairnError('INVALID_ARGUMENT', 'the remote path of a file cannot be the root', { path: '/' });
    if (typeof source !== 'string' && !(source instanceof Uint8Array)) {
      throw new CairnError('INVALID_ARGUMENT', 'putFile takes a local path or bytes', { path: `/${remote}` });
    }
    if (options.mode !== undefined) checkMode(options.mode, { path: `/${remote}` });
    this.specs.push({ kind: 'file', source, remote, mode: options.mode });
  }

  /**
   * Adds a local directory's files under a remote directory.
   * @example batch.putDirectory('./data', '/data');
   */
  putDirectory(localDir: string, remotePath: string, options: { recursive?: boolean } = {}): void {
    const remote = normalizePath(remotePath, 'remote path');
    if (typeof localDir !== 'string' || localDir === '') throw new CairnError('INVALID_ARGUMENT', 'putDirectory needs a local directory');
    this.specs.push({ kind: 'dir', local: localDir, remote, recursive: options.recursive ?? true });
  }
}

/** What a batch upload put: files (inlined small ones included) and their bytes. */
export interface BatchResult {
  files: number;
  bytes: number;
  /**
   * Entries of the directories put that were left out: symlinks to directories (never followed:
   * a cycle, or a tree elsewhere), dangling symlinks (and loops), fifos, sockets and devices. A
   * symlink to a file is uploaded as that file, as `modal volume put` does; one that cannot be
   * followed for another reason (EACCES, EIO) fails the upload.
   */
  skipped: number;
}

/** Progress of a batch upload: bytes read from the sources so far, of the total. */
export type BatchProgress = (p: { bytes: number; totalBytes: number }) => void;

/** A local file's bytes, reporting each piece as it is read. */
async function* counted(file: string, progress: (n: number) => void): AsyncGenerator<Uint8Array> {
  const stream = createReadStream(file, { highWaterMark: 1 << 20 });
  try {
    for await (const piece of stream) {
      progress((piece as Buffer).length);
      yield piece as Buffer;
    }
  } catch (err) {
    throw asCairnError(err, 'IO', `cannot read ${file}`, { path: file });
  } finally {
    stream.destroy();
  }
}

async function readLocal(file: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (err) {
    throw asCairnError(err, 'IO', `cannot read ${file}`, { path: file });
  }
}

interface Planned {
  remote: string;
  source: Source;
  mode: number;
  mtimeMs: number;
}

/**
 * stat(2) of local path `p` (NOT_FOUND, PERMISSION_DENIED for EACCES, else IO). With `link`, `p` is
 * a symlink being followed: one that leads nowhere (dangling, a loop) is undefined, while any other
 * failure (EACCES, EIO) stays an error: skipping it would leave a file out unsaid.
 */
async function localStat(p: string): Promise<Stats>;
async function localStat(p: string, link: true): Promise<Stats | undefined>;
async function localStat(p: string, link = false): Promise<Stats | undefined> {
  try {
    return await fs.stat(p);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (link && (code === 'ENOENT' || code === 'ELOOP' || code === 'ENOTDIR')) return undefined;
    if (code === 'ENOENT') throw new CairnError('NOT_FOUND', `no local file or directory ${p}`, { path: p });
    const doing = link ? 'cannot follow the symlink' : 'cannot read';
    throw asCairnError(err, code === 'EACCES' ? 'PERMISSION_DENIED' : 'IO', `${doing} ${p}`, { path: p });
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A local directory entry's name as a string: INVALID_ARGUMENT when its bytes are not UTF-8
 * (volume paths are UTF-8; decoded loosely, two names could become one, or the file be missed).
 */
function localName(name: Buffer, dir: string): string {
  try {
    return strictUtf8.decode(name);
  } catch {
    const shown = [...name].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('');
    throw new CairnError('INVALID_ARGUMENT', `a local file name is not UTF-8: ${path.join(dir, shown)}`, {
      path: path.join(dir, shown),
      hint: 'volume paths are UTF-8: rename the file (convmv -f latin1 -t utf-8 -r --notest DIR converts a tree)',
    });
  }
}

/** Expands the specs into files, checking local sources. */
async function plan(batch: Batch): Promise<{ files: Planned[]; dirs: string[]; skipped: number }> {
  const files: Planned[] = [];
  const dirs: string[] = [];
  let skipped = 0;
  const walk = async (local: string, remote: string, recursive: boolean): Promise<void> => {
    dirs.push(remote);
    for (const d of await fs.readdir(local, { withFileTypes: true, encoding: 'buffer' })) {
      const name = localName(d.name, local);
      const lp = path.join(local, name);
      const rp = joinPath(remote, normalizePath(name, 'file name'));
      // A symlink is followed to a file only (BatchResult.skipped); a dangling one is no error.
      const st = d.isSymbolicLink() ? await localStat(lp, true) : await localStat(lp);
      if (st?.isDirectory() && !d.isSymbolicLink()) {
        if (recursive) await walk(lp, rp, recursive);
      } else if (st?.isFile()) {
        checkFileEnd(st.size, { path: lp });
        files.push({ remote: rp, source: lp, mode: st.mode & 0o7777, mtimeMs: st.mtimeMs });
      } else skipped++;
    }
  };
  for (const s of batch.specs) {
    if (s.kind === 'file') {
      if (typeof s.source === 'string') {
        const st = await localStat(s.source);
        if (!st.isFile())
          throw new CairnError('IS_A_DIRECTORY', `${s.source} is not a regular file`, {
            path: s.source,
            hint: 'use putDirectory for directories',
          });
        checkFileEnd(st.size, { path: s.source });
        files.push({ remote: s.remote, source: s.source, mode: s.mode ?? st.mode & 0o7777, mtimeMs: st.mtimeMs });
      } else files.push({ remote: s.remote, source: s.source, mode: s.mode ?? 0o644, mtimeMs: Date.now() });
    } else {
      const st = await localStat(s.local);
      if (!st.isDirectory())
        throw new CairnError('NOT_A_DIRECTORY', `${s.local} is not a directory`, { path: s.local, hint: 'use putFile for files' });
      await walk(s.local, s.remote, s.recursive);
    }
  }
  return { files, dirs, skipped };
}

/** Checks every target against the session, uploads the data, then applies everything. */
export async function uploadBatch(
  s: Session,
  chunks: ChunkStore,
  batch: Batch,
  force: boolean,
  onProgress?: BatchProgress,
): Promise<BatchResult> {
  const { files, dirs, skipped } = await plan(batch);
  const sizes = await Promise.all(
    files.map(async (f) => (typeof f.source === 'string' ? (await localStat(f.source)).size : f.source.length)),
  );
  const total = sizes.reduce((a, b) => a + b, 0);
  let done = 0;
  const progress = (n: number) => {
    done += n;
    onProgress?.({ bytes: done, totalBytes: total });
  };
  const batchFiles = new Set(files.map((f) => f.remote));
  for (const f of files) {
    const cur = s.lookup(f.remote);
    if (cur?.type === 'directory') {
      throw new CairnError('IS_A_DIRECTORY', `/${f.remote} is a directory and is never overwritten`, {
        path: `/${f.remote}`,
        volume: s.volume.name,
      });
    }
    if (cur && !force) {
      throw new CairnError('ALREADY_EXISTS', `/${f.remote} already exists`, {
        path: `/${f.remote}`,
        volume: s.volume.name,
        hint: 'pass force: true to overwrite',
      });
    }
  }
  for (const p of [...dirs, ...files.flatMap((f) => ancestors(f.remote))]) {
    const cur = s.lookup(p);
    if ((cur && cur.type !== 'directory') || batchFiles.has(p)) {
      throw new CairnError('NOT_A_DIRECTORY', `/${p} is a file, not a directory`, { path: `/${p}`, volume: s.volume.name });
    }
  }
  const writer = chunks.writer({ known: (h) => s.knownChunk(h) });
  const entries: [string, EntryData][] = [];
  // Small local files are read whole and ahead, bigger ones stream (../session/content.ts).
  const sourceAt = (j: number): ContentSource => {
    const src = files[j]!.source;
    if (typeof src !== 'string') return { key: String(j), readWhole: async () => src, streamed: () => src as never };
    return {
      key: String(j),
      readWhole: async () => (sizes[j]! <= WHOLE_READ_MAX ? readLocal(src) : undefined),
      streamed: () => counted(src, progress),
    };
  };
  const encode = contentEncoder(writer, files.length, sourceAt);
  try {
    for (const [i, f] of files.entries()) {
      const content = await encode(i, sourceAt(i));
      if (typeof f.source !== 'string' || sizes[i]! <= WHOLE_READ_MAX) progress(content.size);
      entries.push([f.remote, { type: 'file', mode: f.mode, mtimeMs: f.mtimeMs, ...content }]);
    }
    await writer.finish();
  } catch (err) {
    writer.abort();
    throw err;
  }
  s.putEntries(dirs, entries);
  return { files: files.length, bytes: total, skipped };
}
