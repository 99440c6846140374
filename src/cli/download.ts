/**
 * `cairn volume get`: a file or a directory tree from one snapshot of a volume to local disk (or a
 * file to stdout), files fetched and written in parallel.
 *
 * Invariants: everything comes from one read-only session, so a directory is one consistent
 * snapshot and no file costs a reload; without `force` no local file is touched unless none of the
 * targets exists (checked before anything is written); a file appears under its name only when
 * complete (written to a temporary name, then renamed); on a failure no new work starts and the
 * command waits for the files in flight before it reports.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pLimit from 'p-limit';
import { CairnError } from '../errors.js';
import type { Session, Stat } from '../volume/index.js';
import { counts, notice, progressBar } from './output.js';

/** Files written at once: enough to hide per-file latency (store GETs, open/rename), few enough for fds. */
const PARALLEL_FILES = 16;

const exists = (p: string) =>
  fs.lstat(p).then(
    () => true,
    () => false,
  );

/** Downloads `remote` of session `s` (volume `name`) to `dest` ("-": stdout). */
export async function download(s: Session, name: string, remote: string, dest: string | undefined, force: boolean): Promise<void> {
  const entry = s.lookup(remote);
  if (!entry) {
    throw new CairnError('NOT_FOUND', `no such file or directory: ${name}:${remote}`, { volume: name, path: remote });
  }
  if (dest === '-') {
    if (entry.type !== 'file') {
      throw new CairnError('IS_A_DIRECTORY', `${remote} is not a file; only files can go to stdout`, { path: remote });
    }
    await pipeline(Readable.from(s.stream(entry.path, 8)), process.stdout);
    return;
  }
  const destBase = dest ?? '.';
  const destIsDir = (await fs.stat(destBase).catch(() => undefined))?.isDirectory();
  const root = destIsDir ? path.join(destBase, path.basename(entry.path) || '.') : destBase;
  const tree = entry.type === 'directory' ? [entry, ...s.descendants(entry.path)] : [entry];
  const local = (e: Stat) => (e === entry ? root : path.join(root, path.relative(entry.path, e.path)));
  const dirs = tree.filter((e) => e.type === 'directory');
  const files = tree.filter((e) => e.type === 'file' || e.type === 'symlink');
  const skipped = tree.length - dirs.length - files.length;
  const limit = pLimit(PARALLEL_FILES);
  if (!force) {
    const found = await Promise.all(files.map((f) => limit(async () => ((await exists(local(f))) ? local(f) : ''))));
    const clash = found.find(Boolean);
    if (clash) {
      const hint = 'pass --force to overwrite it';
      throw new CairnError('ALREADY_EXISTS', `${clash} already exists`, { path: clash, hint });
    }
  }
  const total = files.reduce((n, f) => n + (f.type === 'file' ? f.size : 0), 0);
  const bar = total >= 8 << 20 ? progressBar('get', total) : undefined;
  let done = 0;
  for (const d of dirs) await fs.mkdir(local(d), { recursive: true }); // path order: parents first
  if (entry.type !== 'directory') await fs.mkdir(path.dirname(root), { recursive: true });
  let failed = false;
  const one = async (f: Stat): Promise<void> => {
    if (failed) return;
    const to = local(f);
    if (f.type === 'symlink') {
      await fs.rm(to, { force: true });
      await fs.symlink(f.target ?? '', to);
      return;
    }
    const tmp = `${to}.cairn-${process.pid}.tmp`;
    const out = await fs.open(tmp, 'w', f.mode & 0o777);
    try {
      for await (const buf of s.stream(f.path, 4)) {
        await out.write(buf);
        done += buf.length;
        bar?.update(done);
      }
      await out.close();
    } catch (err) {
      await out.close().catch(() => undefined);
      await fs.rm(tmp, { force: true });
      throw err;
    }
    await fs.rename(tmp, to);
  };
  const stopOnFailure = (f: Stat) =>
    one(f).catch((err: unknown) => {
      failed = true;
      throw err;
    });
  const results = await Promise.allSettled(files.map((f) => limit(() => stopOnFailure(f))));
  bar?.stop();
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) throw failure.reason;
  const special = skipped ? `; skipped ${skipped} fifo${skipped === 1 ? ' or socket' : 's or sockets'}` : '';
  notice(`downloaded ${name}:${remote} to ${root} (${counts(files.length, total)})${special}`);
}
