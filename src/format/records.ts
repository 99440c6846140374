/**
 * The on-store formats of a volume's history (docs/FORMAT.md): commit records, checkpoints and
 * volume metadata (`names/<name>`, `volumes/<id>/meta`), and their one strict decoder each. Keys
 * are in ./keys.ts, entries and their validator in ./entries.ts, the checksum framing and field
 * checks in ./wire.ts, retention and GC objects in ./gcobjects.ts.
 *
 * Invariants:
 * - a record's ops are state-independent (absolute `put`s of whole entries and subtree `delete`s),
 *   so re-applying a record on a newer snapshot is well defined and idempotent;
 * - format 2 objects end with a checksum line `{"blake3":"<hex>"}` over every byte before it (for
 *   checkpoints: of the gunzipped text); the checksum is checked before anything is parsed, so a
 *   damaged object, its version number included, is CORRUPT, and UNSUPPORTED means a well-formed
 *   object of a newer version; format 1 objects (no checksum line) are still read;
 * - every object, of either version, is fully validated before use (`checkEntry` is the one
 *   validator of a stored entry, shared by records and checkpoints): damage surfaces as
 *   CairnError('CORRUPT') with `{ key, volume }`, never as wrong bytes, a wrong name or a TypeError;
 * - the encoders run the same validator and refuse (INVALID_ARGUMENT) an entry that would not
 *   read back, so Cairn never writes an object it would reject.
 */
import { CairnError } from '../errors.js';
import { checkVolumeName } from './paths.js';
import { FORMAT_VERSION, VOLUME_ID_RE, keys, seqOfKey } from './keys.js';
import { type Op, MAX_MTIME_MS, checkEntry, checkPath, decoding, encodeChecked } from './entries.js';
import { damaged, int, num, object, onlyKeys, parseObject, seal, str, unseal, version } from './wire.js';

export type { EntryData, Op } from './entries.js';
export {
  type Checkpoint,
  checkpointDamage,
  decodeCheckpoint,
  encodeCheckpoint,
  encodeCheckpointSync,
  streamCheckpoint,
} from './checkpoint.js';

export interface CommitRecord {
  /** Format version (as read; records are always written in FORMAT_VERSION). */
  version: number;
  seq: number;
  /** The seq the writer's session was at when this record landed (seq - 1). */
  base: number;
  /** Milliseconds since the epoch. */
  time: number;
  author: string;
  /** Unique per commit attempt, so a restarted writer can tell its own record. */
  commitId: string;
  ops: Op[];
}

export interface VolumeMeta {
  version: number;
  id: string;
  name: string;
  createdAt: number;
  createdBy: string;
}

// ---- commit records --------------------------------------------------------------------------

const RECORD_KEYS = ['version', 'seq', 'base', 'time', 'author', 'commitId', 'ops'];

/** A record as stored: one JSON line in format FORMAT_VERSION, sealed with its checksum. */
export function encodeRecord(r: CommitRecord): Buffer {
  const ops = r.ops.map((o) =>
    o.op === 'put'
      ? { op: 'put', path: o.path, entry: encodeChecked(o.path, o.entry) }
      : o.op === 'times'
        ? { op: 'times', path: checkedTimes(o.path, o.mtimeMs, o.ctimeMs), mt: o.mtimeMs, ct: o.ctimeMs }
        : { op: 'delete', path: o.path },
  );
  const { seq, base, time, author, commitId } = r;
  const body = { version: FORMAT_VERSION, seq, base, time, author, commitId, ops };
  return seal(Buffer.from(`${JSON.stringify(body)}\n`));
}

/** The path of a `times` op, its times checked as a decoder would (INVALID_ARGUMENT otherwise). */
function checkedTimes(path: string, mt: number, ct: number): string {
  const ok = (t: number) => typeof t === 'number' && Number.isFinite(t) && Math.abs(t) <= MAX_MTIME_MS;
  if (!ok(mt) || !ok(ct)) throw new CairnError('INVALID_ARGUMENT', `cannot store times ${mt}, ${ct} of /${path}`, { path: `/${path}` });
  try {
    return checkPath(path);
  } catch {
    throw new CairnError('INVALID_ARGUMENT', `cannot store /${path}: not a valid volume path`, { path: `/${path}` });
  }
}

/**
 * Decodes and validates the record at `key` of volume `volume` (name or id, for errors): CORRUPT
 * when anything is wrong (checksum, structure, an entry, a seq other than its key's), UNSUPPORTED
 * for a well-formed record of a newer format.
 */
export function decodeRecord(body: Buffer, key: string, volume: string): CommitRecord {
  return decoding('commit record', key, volume, () => {
    const payload = unseal(body);
    const raw = parseObject((payload ?? body).toString('utf8'), 'the record');
    const v = version(raw.version, payload !== undefined, 'commit record', key, volume);
    onlyKeys(raw, RECORD_KEYS, 'the record');
    const seq = int(raw.seq, 'seq', 1);
    if (seq !== seqOfKey(key)) damaged(`it says seq ${seq}, its key says ${seqOfKey(key)}`);
    const base = int(raw.base, 'base', 0, seq - 1);
    const time = num(raw.time, 'time', 0, MAX_MTIME_MS);
    const author = str(raw.author, 'author');
    const commitId = str(raw.commitId, 'commitId', true);
    if (!Array.isArray(raw.ops)) damaged('ops is not a list');
    const ops = (raw.ops as unknown[]).map((x, n): Op => {
      const o = object(x, `op ${n}`);
      const path = checkPath(o.path, `op ${n}: path`);
      if (o.op === 'delete') {
        onlyKeys(o, ['op', 'path'], `op ${n}`);
        return { op: 'delete', path };
      }
      if (o.op === 'times' && v >= 3) {
        onlyKeys(o, ['op', 'path', 'mt', 'ct'], `op ${n}`);
        return {
          op: 'times',
          path,
          mtimeMs: num(o.mt, `op ${n}: mtime`, -MAX_MTIME_MS, MAX_MTIME_MS),
          ctimeMs: num(o.ct, `op ${n}: ctime`, -MAX_MTIME_MS, MAX_MTIME_MS),
        };
      }
      if (o.op !== 'put') damaged(`op ${n} is ${JSON.stringify(o.op)}, not put or delete`);
      onlyKeys(o, ['op', 'path', 'entry'], `op ${n}`);
      return { op: 'put', path, entry: checkEntry(o.entry, path, v) };
    });
    return { version: v, seq, base, time, author, commitId, ops };
  });
}

// ---- checkpoints: ./checkpoint.ts ----------------------------------------------------------

// ---- volume metadata -------------------------------------------------------------------------

const META_KEYS = ['version', 'id', 'name', 'createdAt', 'createdBy'];
const META_KEY_RE = /^volumes\/([^/]+)\/meta$/;

/** `names/<name>` and `volumes/<id>/meta` as stored: the metadata in FORMAT_VERSION, sealed. */
export function encodeMeta(m: VolumeMeta): Buffer {
  const body = { version: FORMAT_VERSION, id: m.id, name: m.name, createdAt: m.createdAt, createdBy: m.createdBy };
  return seal(Buffer.from(`${JSON.stringify(body)}\n`));
}

/**
 * Decodes and validates `names/<name>` or `volumes/<id>/meta` (`key` says which; a name object
 * must carry its own name, a meta object its own id). CORRUPT / UNSUPPORTED as for records.
 */
export function decodeMeta(body: Buffer, key: string, volume: string): VolumeMeta {
  return decoding('volume metadata', key, volume, () => {
    const payload = unseal(body);
    const raw = parseObject((payload ?? body).toString('utf8'), 'the metadata');
    const v = version(raw.version, payload !== undefined, 'volume metadata', key, volume);
    onlyKeys(raw, META_KEYS, 'the metadata');
    const id = str(raw.id, 'id');
    if (!VOLUME_ID_RE.test(id)) damaged(`id ${JSON.stringify(id)} is malformed`);
    const name = str(raw.name, 'name');
    try {
      checkVolumeName(name);
    } catch {
      damaged(`name ${JSON.stringify(name)} is not a valid volume name`);
    }
    const ownName = key.startsWith(keys.names()) ? key.slice(keys.names().length) : name;
    if (name !== ownName) damaged(`it names volume ${JSON.stringify(name)}`);
    const m = META_KEY_RE.exec(key);
    if (m && m[1] !== id) damaged(`it is the metadata of volume id ${JSON.stringify(id)}`);
    const createdAt = num(raw.createdAt, 'createdAt', 0, MAX_MTIME_MS);
    const createdBy = str(raw.createdBy, 'createdBy');
    return { version: v, id, name, createdAt, createdBy };
  });
}
