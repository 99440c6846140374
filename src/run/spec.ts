/**
 * `-v VOLUME:/path[:ro]` specs of `cairn run`, parsed and checked before anything starts.
 *
 * Invariants: a parsed spec has a valid volume name, an absolute normalised container path that
 * is not `/`, and no two specs share a path.
 */
import path from 'node:path';
import { CairnError } from '../errors.js';
import { checkVolumeName } from '../volume/paths.js';

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

/** Parses every spec and rejects two mounts at one path. */
export function parseVolumeSpecs(raws: string[]): VolumeSpec[] {
  const specs = raws.map(parseVolumeSpec);
  const seen = new Set<string>();
  for (const s of specs) {
    if (seen.has(s.path)) {
      throw new CairnError('INVALID_ARGUMENT', `two volumes at ${s.path}`, { path: s.path, hint: 'give each -v its own path' });
    }
    seen.add(s.path);
  }
  return specs;
}
