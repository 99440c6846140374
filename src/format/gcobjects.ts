/**
 * The objects of retention and GC (docs/FORMAT.md): a volume's retention policy, the pruned
 * floor and condemnations of packs (gc.ts, retention.ts, gcguard.ts). Sealed JSON like the
 * volume metadata, and decoded as strictly.
 */
import { damaged, int, num, onlyKeys, parseObject, seal, unseal, version } from './wire.js';
import { decoding, MAX_MTIME_MS } from './entries.js';
import { FORMAT_VERSION, PACK_ID_RE, seqOfKey } from './keys.js';

// ---- retention, the pruned floor, condemnations (gc.ts, retention.ts) ---------------------------

/** A volume's history retention (`volumes/<id>/retention`). */
export interface RetentionPolicy {
  /** Keep at least the newest this many snapshots (≥ 1). */
  keepLast: number;
  /** Keep every snapshot committed in the last this many days (≥ 0; may be fractional). */
  keepDays: number;
}

/**
 * `volumes/<id>/pruned/<seq>`: snapshots below `seq` were pruned by retention. The floor is the
 * greatest such key (so concurrent GCs can only raise it: each creates its own key, then removes
 * the lower ones).
 */
export interface PrunedFloor {
  seq: number;
  /** When GC wrote it (store clock, ms). */
  time: number;
}

/**
 * `volumes/<id>/gc/<time>-<rand>`: packs a GC found unreferenced and old at store time `time`;
 * a later GC deletes those still unreferenced once the object is `graceMs` old by the store's
 * clock. A writer never publishes a record referencing a condemned pack (sync.ts).
 */
export interface Condemnation {
  time: number;
  graceMs: number;
  packs: string[];
}

/** The largest keepDays accepted (about 27,000 years: a JS Date's range in days / 10). */
export const MAX_KEEP_DAYS = 1e7;

function sealJson(body: object): Buffer {
  return seal(Buffer.from(`${JSON.stringify({ version: FORMAT_VERSION, ...body })}\n`));
}

/** The sealed JSON object at `key` with exactly the fields `fields` (version included), checked. */
function openJson(body: Buffer, key: string, volume: string, what: string, fields: string[]): Record<string, unknown> {
  const payload = unseal(body);
  if (!payload) damaged('it has no checksum line');
  const raw = parseObject(payload.toString('utf8'), `the ${what}`);
  version(raw.version, true, what, key, volume);
  onlyKeys(raw, ['version', ...fields], `the ${what}`);
  return raw;
}

export function encodeRetention(p: RetentionPolicy): Buffer {
  return sealJson({ keepLast: p.keepLast, keepDays: p.keepDays });
}

export function decodeRetention(body: Buffer, key: string, volume: string): RetentionPolicy {
  return decoding('retention policy', key, volume, () => {
    const raw = openJson(body, key, volume, 'retention policy', ['keepLast', 'keepDays']);
    return { keepLast: int(raw.keepLast, 'keepLast', 1), keepDays: num(raw.keepDays, 'keepDays', 0, MAX_KEEP_DAYS) };
  });
}

export function encodePruned(p: PrunedFloor): Buffer {
  return sealJson({ seq: p.seq, time: p.time });
}

export function decodePruned(body: Buffer, key: string, volume: string): PrunedFloor {
  return decoding('pruned floor', key, volume, () => {
    const raw = openJson(body, key, volume, 'pruned floor', ['seq', 'time']);
    const seq = int(raw.seq, 'seq');
    if (seq !== seqOfKey(key)) damaged(`it says seq ${seq}, its key says ${seqOfKey(key)}`);
    return { seq, time: num(raw.time, 'time', 0, MAX_MTIME_MS) };
  });
}

export function encodeCondemnation(c: Condemnation): Buffer {
  return sealJson({ time: c.time, graceMs: c.graceMs, packs: c.packs });
}

export function decodeCondemnation(body: Buffer, key: string, volume: string): Condemnation {
  return decoding('gc condemnation', key, volume, () => {
    const raw = openJson(body, key, volume, 'gc condemnation', ['time', 'graceMs', 'packs']);
    if (!Array.isArray(raw.packs)) damaged('packs is not a list');
    const packs = (raw.packs as unknown[]).map((p, n) => {
      if (typeof p !== 'string' || !PACK_ID_RE.test(p)) damaged(`pack ${n} ${JSON.stringify(p)} is malformed`);
      return p;
    });
    return { time: num(raw.time, 'time', 0, MAX_MTIME_MS), graceMs: int(raw.graceMs, 'graceMs', 1), packs };
  });
}
