/**
 * Opens an ObjectStore from a URL: `file:///abs/path`, `s3://bucket/prefix?…`, or `memory://`
 * (tests only). The URL defaults to `$CAIRN_STORE`, else the embedded file store under
 * `$CAIRN_HOME`.
 *
 * Invariant: a malformed URL fails with INVALID_ARGUMENT (with the accepted forms as hint)
 * before anything is created or contacted.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultStoreUrl } from '../config.js';
import { CairnError } from '../errors.js';
import { FileStore } from './file.js';
import { MemoryStore } from './memory.js';
import { parseS3Url, S3_URL_FORMS } from './s3url.js';
import type { ObjectStore } from './types.js';

/** The URL forms openStore accepts, for hints and docs. */
export const STORE_URL_FORMS = `file:///absolute/path | ${S3_URL_FORMS} | memory:// (tests)`;

function invalid(url: string, why: string): CairnError {
  return new CairnError('INVALID_ARGUMENT', `invalid store URL ${JSON.stringify(url)}: ${why}`, {
    store: url,
    hint: `use ${STORE_URL_FORMS}`,
  });
}

/** Validates a `file://` URL and returns its absolute directory. */
export function parseFileUrl(url: string): string {
  if (!url.startsWith('file:///')) {
    throw invalid(url, url.startsWith('file://') ? 'the path must be absolute (file:///abs/path)' : 'not a file URL');
  }
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw invalid(url, 'not a URL');
  }
  if (u.search || u.hash) throw invalid(url, 'file URLs take no query or fragment');
  let dir: string;
  try {
    dir = fileURLToPath(u);
  } catch (err) {
    throw invalid(url, (err as Error).message);
  }
  if (dir.includes('\0')) throw invalid(url, 'path contains NUL');
  if (!path.isAbsolute(dir)) throw invalid(url, 'the path must be absolute');
  return path.resolve(dir);
}

/**
 * Opens the store at `url` (default: `config.defaultStoreUrl()`), creating a file store's root.
 * S3 stores are checked (bucket exists) and probed for conditional writes at open.
 * @example
 * const store = await openStore('s3://data/cairn?endpoint=http://127.0.0.1:9000&path_style=true');
 * if (!store.conditionalWrites) console.warn('single writer only');
 */
export async function openStore(url?: string): Promise<ObjectStore> {
  const target = url ?? defaultStoreUrl();
  if (typeof target !== 'string' || target === '') throw invalid(String(target), 'empty');
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(target)?.[1]?.toLowerCase();
  switch (scheme) {
    case 'file':
      return FileStore.open(parseFileUrl(target));
    case 's3':
      parseS3Url(target);
      return (await import('./s3.js')).S3Store.open(target);
    case 'memory':
      if (target !== 'memory://') throw invalid(target, 'memory stores take no path or query');
      return new MemoryStore();
    default:
      throw invalid(target, scheme ? `unknown scheme ${scheme}://` : 'no scheme');
  }
}
