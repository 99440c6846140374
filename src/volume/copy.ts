/**
 * `Volume.copyFiles`: `cp` semantics inside one volume (SRC... DST; a DST ending in `/` is a
 * directory, made with its parents when missing), copying references, never bytes. Every check
 * runs before anything is copied.
 */
import { CairnError } from '../errors.js';
import { baseName, joinPath, normalizePath, parentOf } from '../format/index.js';
import type { Session } from '../session/index.js';

/** The checked arguments of a copy. */
export interface CopyPlan {
  srcs: string[];
  dst: string;
  dirDst: boolean;
  recursive: boolean;
}

/** Checks the arguments (INVALID_ARGUMENT) before any session is touched. */
export function planCopyFiles(srcPaths: string[], dstPath: string, recursive: boolean): CopyPlan {
  if (!Array.isArray(srcPaths) || srcPaths.length === 0)
    throw new CairnError('INVALID_ARGUMENT', 'copyFiles needs at least one source path');
  const srcs = srcPaths.map((p) => normalizePath(p, 'source path'));
  const dst = normalizePath(dstPath, 'destination path');
  const dirDst = dstPath.endsWith('/');
  return { srcs, dst, dirDst, recursive };
}

/** Copies as `plan` says in session `s` (the caller commits). */
export async function copyFiles(s: Session, { srcs, dst, dirDst, recursive }: CopyPlan): Promise<void> {
  const dstStat = s.lookup(dst);
  if (dirDst && dstStat && dstStat.type !== 'directory') {
    throw new CairnError('NOT_A_DIRECTORY', `/${dst} is not a directory`, { path: `/${dst}` });
  }
  const into = dirDst || dstStat?.type === 'directory';
  if (!into && srcs.length > 1) {
    throw new CairnError(
      dstStat ? 'NOT_A_DIRECTORY' : 'NOT_FOUND',
      `copying several files needs an existing directory as the destination: /${dst}`,
      { path: `/${dst}` },
    );
  }
  const plan: [string, string][] = [];
  for (const src of srcs) {
    const st = await s.stat(src);
    if (st.type === 'directory' && !recursive) {
      throw new CairnError('IS_A_DIRECTORY', `/${src} is a directory`, {
        path: `/${src}`,
        hint: 'pass recursive: true to copy directories',
      });
    }
    const target = into ? joinPath(dst, baseName(src)) : dst;
    const existing = s.lookup(target);
    if (existing?.type === 'directory' && st.type !== 'directory')
      throw new CairnError('IS_A_DIRECTORY', `/${target} is a directory`, { path: `/${target}` });
    if (existing && existing.type !== 'directory' && st.type === 'directory')
      throw new CairnError('NOT_A_DIRECTORY', `/${target} is not a directory`, { path: `/${target}` });
    if (!into && !s.lookup(parentOf(target)))
      throw new CairnError('NOT_FOUND', `no such directory: /${parentOf(target)}`, { path: `/${parentOf(target)}` });
    plan.push([src, target]);
  }
  if (dirDst && !dstStat) await s.mkdirp(dst);
  for (const [src, target] of plan) {
    if (s.lookup(target)?.type === 'directory') {
      for (const child of await s.readdir(src)) await s.copy(child.path, joinPath(target, baseName(child.path)));
    } else await s.copy(src, target);
  }
}
