/**
 * The framing and the strict field checks every stored object's decoder shares: the checksum
 * seal (format 2), `Damage` (what is wrong with an object, turned into CORRUPT naming it by
 * `decoding`), and checks of plain JSON fields.
 *
 * Invariant: a check either returns a value of the right type and range or throws Damage; the
 * checksum is checked before anything is parsed.
 */
import { CairnError } from '../errors.js';
import { hashChunk } from '../chunks/index.js';
import { FORMAT_VERSION } from './keys.js';

// ---- checksums -------------------------------------------------------------------------------

const TRAILER_RE = /^\{"blake3":"([0-9a-f]{64})"\}$/;

/** Format 2 framing: the payload (lines, each ending in `\n`), then its BLAKE3 as the last line. */
export function seal(payload: Buffer): Buffer {
  return Buffer.concat([payload, Buffer.from(`{"blake3":"${hashChunk(payload)}"}`)]);
}

/** What is wrong with a stored object; decoders turn it into CORRUPT with the object's key. */
export class Damage extends Error {}

export function damaged(why: string): never {
  throw new Damage(why);
}

/**
 * The payload of a sealed (format ≥ 2) object, checked against its checksum line; undefined when
 * the object has no checksum line (format 1, or damage the strict format-1 parse then reports).
 */
export function unseal(body: Buffer): Buffer | undefined {
  const nl = body.lastIndexOf(0x0a);
  if (nl < 0) return undefined;
  const m = TRAILER_RE.exec(body.subarray(nl + 1).toString('latin1'));
  if (!m) return undefined;
  const payload = body.subarray(0, nl + 1);
  if (hashChunk(payload) !== m[1]) damaged('its checksum does not match its contents');
  return payload;
}

/** Parses JSON that must be a plain object. */
export function parseObject(text: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    damaged(`${what} is not valid JSON (${(err as Error).message})`);
  }
  return object(v, what);
}

// ---- field checks ----------------------------------------------------------------------------

export function object(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) damaged(`${what} is not an object`);
  return v as Record<string, unknown>;
}

export function onlyKeys(o: Record<string, unknown>, allowed: readonly string[], what: string): void {
  for (const k in o) if (!allowed.includes(k)) damaged(`${what} has an unknown field ${JSON.stringify(k)}`);
}

export function int(v: unknown, what: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isSafeInteger(v) || (v as number) < min || (v as number) > max) {
    damaged(`${what} ${JSON.stringify(v)} is not an integer in [${min}, ${max}]`);
  }
  return v as number;
}

export function num(v: unknown, what: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    damaged(`${what} ${JSON.stringify(v)} is out of range`);
  }
  return v;
}

export function str(v: unknown, what: string, nonEmpty = false): string {
  if (typeof v !== 'string' || (nonEmpty && v === '')) {
    damaged(`${what} is not a${nonEmpty ? ' non-empty' : ''} string`);
  }
  return v;
}

/** The format version of an object: `1` without a checksum, a newer one with it. */
export function version(v: unknown, sealed: boolean, what: string, key: string, volume: string): number {
  if (!sealed) {
    if (v !== 1) {
      damaged(`${what} has no checksum and a version of ${JSON.stringify(v)} (only format 1 has no checksum)`);
    }
    return 1;
  }
  const n = int(v, `${what} version`, 2);
  if (n > FORMAT_VERSION) {
    const message = `${what} ${key} has format version ${n}; this cairn reads up to ${FORMAT_VERSION}`;
    throw new CairnError('UNSUPPORTED', message, {
      key,
      volume,
      hint: 'upgrade cairn to read this volume',
    });
  }
  return n;
}
