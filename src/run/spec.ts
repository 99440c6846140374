/**
 * `-v VOLUME:/path[:ro]` specs of `cairn run`, parsed and checked before anything starts.
 *
 * Invariants: a parsed spec has a valid volume name, an absolute normalised container path that
 * is not `/`, and no spec's path is another's or inside another's: the mounts of a run are served
 * by one process, and mounting inside a mount it serves would have it wait on itself (libfuse's
 * mount looks the path up synchronously on the event loop that serves the outer mount).
 */
import path from 'node:path';
import { CairnError } from '../errors.js';
import { checkVolumeName } from '../format/paths.js';

export interface VolumeSpec {
  volume: string;
  /** Absolute path inside the container. */
  path: string;
  readOnly: boolean;
}

const FORM = 'VOLUME:/absolute/path or VOLUME:/absolute/path:ro';

/**
 * Parses one `-v` value.
 * @example parseVolumeSpec('data:/data:ro') // { volume: 'data', path: '/data', readOnly: true }
 */
export function parseVolumeSpec(raw: string): VolumeSpec {
  const bad = (why: string): never => {
    throw new CairnError('INVALID_ARGUMENT', `bad volume spec ${JSON.stringify(raw)}: ${why}`, { hint: `write -v ${FORM}` });
  };
  if (typeof raw !== 'string' || raw === '') bad('empty');
  const parts = raw.split(':');
  let readOnly = false;
  if (parts.length === 3) {
    if (parts[2] === 'ro') readOnly = true;
    else if (parts[2] !== 'rw') bad(`unknown mode "${parts[2]}" (use ro or rw)`);
  } else if (parts.length !== 2) bad(parts.length < 2 ? 'no container path' : 'too many ":"');
  const [volume, where] = parts as [string, string];
  try {
    checkVolumeName(volume);
  } catch (err) {
    bad((err as Error).message);
  }
  if (!where) bad('no container path');
  if (!where.startsWith('/')) bad('the container path must be absolute');
  if (where.includes('\0')) bad('NUL in the path');
  const norm = path.posix.normalize(where).replace(/\/+$/, '');
  if (norm === '' || norm === '/') bad('cannot mount over /');
  return { volume, path: norm, readOnly };
}

/**
 * True when absolute normalised path `a` is `b` or inside it, or the other way round.
 * @example pathsOverlap('/data', '/data/sub') // true
 */
export function pathsOverlap(a: string, b: string): boolean {
  const under = (x: string, y: string) => x === y || x.startsWith(y.endsWith('/') ? y : `${y}/`);
  return under(a, b) || under(b, a);
}

/** Parses every spec and rejects two mounts at one path, or one inside another. */
export function parseVolumeSpecs(raws: string[]): VolumeSpec[] {
  const specs = raws.map(parseVolumeSpec);
  specs.forEach((s, i) => {
    const other = specs.slice(0, i).find((o) => pathsOverlap(o.path, s.path));
    if (!other) return;
    if (other.path === s.path) {
      throw new CairnError('INVALID_ARGUMENT', `two volumes at ${s.path}`, { path: s.path, hint: 'give each -v its own path' });
    }
    const [outer, inner] = other.path.length < s.path.length ? [other, s] : [s, other];
    const why = `${inner.volume} at ${inner.path} would be inside ${outer.volume} at ${outer.path}`;
    throw new CairnError('INVALID_ARGUMENT', why, {
      path: inner.path,
      hint: 'mount volumes side by side (for example -v a:/data -v b:/data-b), not one inside another',
    });
  });
  return specs;
}
