/**
 * `s3://BUCKET/PREFIX?endpoint=URL&region=REGION&path_style=true` URLs, parsed without loading
 * the AWS SDK (so commands that never touch S3 start fast).
 */
import { CairnError } from '../errors.js';
import { checkKey } from './keys.js';

export const S3_URL_FORMS = 's3://BUCKET[/PREFIX][?endpoint=http://HOST:PORT&region=REGION&path_style=true&timeout_ms=N]';

/** Bounds of `timeout_ms` (and CAIRN_S3_TIMEOUT_MS): 100 ms … 1 hour. */
export const TIMEOUT_MS_RANGE = { min: 100, max: 3_600_000 } as const;

/** A `timeout_ms` value as a number, or undefined when it is not an integer within TIMEOUT_MS_RANGE. */
export function parseTimeoutMs(value: string): number | undefined {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  return Number.isSafeInteger(n) && n >= TIMEOUT_MS_RANGE.min && n <= TIMEOUT_MS_RANGE.max ? n : undefined;
}

/** A parsed `s3://` URL. */
export interface S3Location {
  bucket: string;
  prefix: string;
  endpoint?: string;
  region?: string;
  pathStyle?: boolean;
  /** `timeout_ms`: how long a call waits on an endpoint that does not answer (see docs/STORE.md). */
  timeoutMs?: number;
}

function invalidUrl(url: string, why: string): CairnError {
  return new CairnError('INVALID_ARGUMENT', `invalid S3 store URL ${JSON.stringify(url)}: ${why}`, {
    store: url,
    hint: `use ${S3_URL_FORMS}`,
  });
}

/**
 * Parses and validates an `s3://` URL (nothing is contacted).
 * @example parseS3Url('s3://data/cairn?region=eu-west-1') // { bucket: 'data', prefix: 'cairn', region: 'eu-west-1' }
 */
export function parseS3Url(url: string): S3Location {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw invalidUrl(url, 'not a URL');
  }
  if (u.protocol !== 's3:') throw invalidUrl(url, 'scheme is not s3://');
  if (u.username || u.password) throw invalidUrl(url, 'credentials do not belong in the URL (use the AWS environment)');
  const bucket = u.hostname;
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw invalidUrl(url, `bad or missing bucket name ${JSON.stringify(bucket)}`);
  if (u.port) throw invalidUrl(url, 'a port belongs in ?endpoint=');
  if (u.hash) throw invalidUrl(url, 'no #fragment allowed');
  // URL parsing resolves `.`/`..` segments; refuse them rather than silently change the prefix.
  const rawPath = url.replace(/^s3:\/\/[^/?#]*/i, '').split(/[?#]/)[0];
  if (rawPath.split('/').some((seg) => /^(\.|%2e){1,2}$/i.test(seg))) throw invalidUrl(url, 'prefix has "." or ".." segments');
  let prefix: string;
  try {
    prefix = decodeURIComponent(u.pathname).replace(/^\/+/, '').replace(/\/+$/, '');
  } catch {
    throw invalidUrl(url, 'bad %-escape in the prefix');
  }
  if (prefix !== '') {
    try {
      checkKey(prefix, 'prefix');
    } catch {
      throw invalidUrl(url, `bad prefix ${JSON.stringify(prefix)}`);
    }
  }
  const loc: S3Location = { bucket, prefix };
  for (const [name, value] of u.searchParams) {
    if (name === 'endpoint') {
      let e: URL;
      try {
        e = new URL(value);
      } catch {
        throw invalidUrl(url, `endpoint ${JSON.stringify(value)} is not a URL`);
      }
      if (e.protocol !== 'http:' && e.protocol !== 'https:') throw invalidUrl(url, 'endpoint must be http:// or https://');
      loc.endpoint = value;
    } else if (name === 'region') {
      if (!/^[a-z0-9-]+$/.test(value)) throw invalidUrl(url, `bad region ${JSON.stringify(value)}`);
      loc.region = value;
    } else if (name === 'path_style') {
      if (value !== 'true' && value !== 'false') throw invalidUrl(url, `path_style must be true or false, not ${JSON.stringify(value)}`);
      loc.pathStyle = value === 'true';
    } else if (name === 'timeout_ms') {
      const ms = parseTimeoutMs(value);
      if (ms === undefined) {
        const { min, max } = TIMEOUT_MS_RANGE;
        throw invalidUrl(url, `timeout_ms must be an integer from ${min} to ${max}, not ${JSON.stringify(value)}`);
      }
      loc.timeoutMs = ms;
    } else {
      const accepted = 'endpoint, region, path_style, timeout_ms';
      throw invalidUrl(url, `unknown parameter ${JSON.stringify(name)} (accepted: ${accepted})`);
    }
  }
  return loc;
}
