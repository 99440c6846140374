/**
 * The on-store formats of the volume layer (docs/FORMAT.md): commit records, checkpoints and
 * volume metadata (`names/<name>`, `volumes/<id>/meta`), their keys, and their one strict decoder.
 *
 * Invariants:
 * - a record's ops are state-independent (absolute `put`s of whole entries and subtree `delete`s),
 *   so re-applying a record on a newer snapshot is well defined and idempotent; seqs are
 *   zero-padded in keys so byte order is numeric order;
 * - format 2 objects end with a checksum line `{"blake3":"<hex>"}` over every byte before it (for
 *   checkpoints: of the gunzipped text); the checksum is checked before anything is parsed, so a
 *   damaged object, its version number included, is CORRUPT, and UNSUPPORTED means a well-formed
 *   object of a newer version; format 1 objects (no checksum line) are still read;
 * - every object, of either version, is fully validated before use (`checkEntry` is the one
 *   validator of a stored entry, shared by records and checkpoints): damage surfaces as
 *   CairnError('CORRUPT') with `{ key, volume }`, never as wrong bytes, a wrong name or a TypeError;
 * - retention, pruned and condemnation objects (GC, see gc.ts) are sealed JSON like the metadata;
 * - the encoders run the same validator and refuse (INVALID_ARGUMENT) an entry that would not
 *   read back, so Cairn never writes an object it would reject.
 */
import { gunzip, gzip } from 'node:zlib';
import { promisify } from 'node:util';
import { CairnError } from '../errors.js';
import { hashChunk, isChunkHash, type ChunkRef } from '../chunks/index.js';
import type { EntryType } from './types.js';
import { checkVolumeName, normalizePath, parentOf } from './paths.js';

/** The format version this code writes; it reads this one and every older one (1). */
export const FORMAT_VERSION = 2;
const SEQ_DIGITS = 12;

/** The stored state of one path. */
export interface EntryData {
  type: EntryType;
  mode: number;
  mtimeMs: number;
  size: number;
  chunks?: ChunkRef[];
  inline?: Buffer;
  target?: string;
}

export type Op = { op: 'put'; path: string; entry: EntryData } | { op: 'delete'; path: string };

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

export interface Checkpoint {
  /** Format version (as read). */
  version: number;
  seq: number;
  entries: [string, EntryData][];
}

export const keys = {
  name: (name: string) => `names/${name}`,
  names: () => 'names/',
  meta: (id: string) => `volumes/${id}/meta`,
  volume: (id: string) => `volumes/${id}/`,
  logPrefix: (id: string) => `volumes/${id}/log/`,
  log: (id: string, seq: number) => `volumes/${id}/log/${padSeq(seq)}`,
  checkpointPrefix: (id: string) => `volumes/${id}/checkpoint/`,
  checkpoint: (id: string, seq: number) => `volumes/${id}/checkpoint/${padSeq(seq)}`,
  packPrefix: (id: string) => `volumes/${id}/packs/`,
  retention: (id: string) => `volumes/${id}/retention`,
  prunedPrefix: (id: string) => `volumes/${id}/pruned/`,
  pruned: (id: string, seq: number) => `volumes/${id}/pruned/${padSeq(seq)}`,
  condemnedPrefix: (id: string) => `volumes/${id}/gc/`,
};

/** Condemnation keys: `gc/<store time, 15 digits>-<16 hex>` (byte order is time order). */
export const CONDEMNED_NAME_RE = /^\d{15}-[0-9a-f]{16}$/;

/** Volume ids: `vo-` plus time and random, checked as in `Catalog.byId`. */
export const VOLUME_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
/** Pack ids: 128 random bits in lowercase hex (`newPackId` in chunks/pack.ts). */
export const PACK_ID_RE = /^[0-9a-f]{32}$/;
const SEQ_KEY_RE = /^\d{12}$/;

export function padSeq(seq: number): string {
  return String(seq).padStart(SEQ_DIGITS, '0');
}

/** The seq at the end of a log or checkpoint key (NaN when that is not a 12-digit seq). */
export function seqOfKey(key: string): number {
  const last = key.slice(key.lastIndexOf('/') + 1);
  return SEQ_KEY_RE.test(last) ? Number(last) : NaN;
}

// ---- checksums -------------------------------------------------------------------------------

const TRAILER_RE = /^\{"blake3":"([0-9a-f]{64})"\}$/;

/** Format 2 framing: the payload (lines, each ending in `\n`), then its BLAKE3 as the last line. */
function seal(payload: Buffer): Buffer {
  return Buffer.concat([payload, Buffer.from(`{"blake3":"${hashChunk(payload)}"}`)]);
}

/** What is wrong with a stored object; decoders turn it into CORRUPT with the object's key. */
class Damage extends Error {}

function damaged(why: string): never {
  throw new Damage(why);
}

/**
 * The payload of a sealed (format ≥ 2) object, checked against its checksum line; undefined when
 * the object has no checksum line (format 1, or damage the strict format-1 parse then reports).
 */
function unseal(body: Buffer): Buffer | undefined {
  const nl = body.lastIndexOf(0x0a);
  if (nl < 0) return undefined;
  const m = TRAILER_RE.exec(body.subarray(nl + 1).toString('latin1'));
  if (!m) return undefined;
  const payload = body.subarray(0, nl + 1);
  if (hashChunk(payload) !== m[1]) damaged('its checksum does not match its contents');
  return payload;
}

/** Parses JSON that must be a plain object. */
function parseObject(text: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    damaged(`${what} is not valid JSON (${(err as Error).message})`);
  }
  return object(v, what);
}

// ---- field checks ----------------------------------------------------------------------------

function object(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) damaged(`${what} is not an object`);
  return v as Record<string, unknown>;
}

function onlyKeys(o: Record<string, unknown>, allowed: readonly string[], what: string): void {
  for (const k in o) if (!allowed.includes(k)) damaged(`${what} has an unknown field ${JSON.stringify(k)}`);
}

function int(v: unknown, what: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isSafeInteger(v) || (v as number) < min || (v as number) > max) {
    damaged(`${what} ${JSON.stringify(v)} is not an integer in [${min}, ${max}]`);
  }
  return v as number;
}

function num(v: unknown, what: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    damaged(`${what} ${JSON.stringify(v)} is out of range`);
  }
  return v;
}

function str(v: unknown, what: string, nonEmpty = false): string {
  if (typeof v !== 'string' || (nonEmpty && v === '')) {
    damaged(`${what} is not a${nonEmpty ? ' non-empty' : ''} string`);
  }
  return v;
}

/** The format version of an object: `1` without a checksum, a newer one with it. */
function version(v: unknown, sealed: boolean, what: string, key: string, volume: string): number {
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

/**
 * Paths of letters, digits, `_`, `-` and `.` whose segments do not start with `.`, at most 255
 * characters: valid by the rules of `normalizePath` at a glance (the common case, and a checkpoint
 * has a million of them); every other path goes through `normalizePath` itself.
 */
const PLAIN_PATH_RE = /^[\w-][\w.-]*(?:\/[\w-][\w.-]*)*$/;

/** A stored path: already normalised (no leading `/`, no empty, `.` or `..` segment, no NUL). */
function checkPath(v: unknown, what = 'path'): string {
  const p = str(v, what);
  if (p.length <= 255 && PLAIN_PATH_RE.test(p)) return p;
  let norm: string | undefined;
  try {
    norm = normalizePath(p);
  } catch {
    norm = undefined;
  }
  if (norm !== p) damaged(`${what} ${JSON.stringify(p)} is not a valid volume path`);
  return p;
}

const ENTRY_TYPES: readonly EntryType[] = ['file', 'directory', 'symlink', 'fifo', 'socket'];
const ENTRY_KEYS = ['t', 'm', 'mt', 's', 'c', 'i', 'l'];
/** mtimes within the range of a JS Date (±8.64e15 ms). */
const MAX_MTIME_MS = 8.64e15;
/** Base64 as Buffer writes it: the alphabet, then up to two `=`; the length a multiple of 4. */
const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

type WireRef = [string, string, number, number];
type WireEntry = { t: EntryType; m: number; mt: number; s: number; c?: WireRef[]; i?: string; l?: string };

/**
 * The one validator of a stored entry (records and checkpoints): decodes wire entry `w` of `path`,
 * or throws Damage saying what is wrong. Sizes agree with the content (inline length, or the sum
 * of the chunk lengths), chunk refs are well-formed, types, modes and mtimes are in range.
 */
function checkEntry(w: unknown, path: string): EntryData {
  try {
    return entryOf(w, path);
  } catch (err) {
    if (err instanceof Damage) damaged(`entry of ${JSON.stringify(path)}: ${err.message}`);
    throw err;
  }
}

function entryOf(w: unknown, path: string): EntryData {
  const o = object(w, 'it');
  onlyKeys(o, ENTRY_KEYS, 'it');
  const type = o.t as EntryType;
  if (!ENTRY_TYPES.includes(type)) damaged(`type ${JSON.stringify(o.t)}`);
  if (path === '' && type !== 'directory') damaged(`the root is a ${type}`);
  const e: EntryData = {
    type,
    // Permission bits; a caller of putEntries may have stored a whole st_mode (type bits too).
    mode: int(o.m, 'mode', 0, 0o177777),
    mtimeMs: num(o.mt, 'mtime', -MAX_MTIME_MS, MAX_MTIME_MS),
    size: int(o.s, 'size'),
  };
  if (type !== 'file' && (o.c !== undefined || o.i !== undefined)) damaged(`a ${type} with file content`);
  if (type !== 'symlink' && o.l !== undefined) damaged(`a ${type} with a symlink target`);
  if (type === 'file') {
    if (o.c !== undefined && o.i !== undefined) damaged('both chunks and inline data');
    if (o.i !== undefined) {
      const b64 = str(o.i, 'inline data');
      if (b64.length % 4 !== 0 || !BASE64_RE.test(b64)) damaged('inline data is not base64');
      e.inline = Buffer.from(b64, 'base64');
      if (e.inline.length !== e.size) damaged(`size ${e.size} but ${e.inline.length} inline bytes`);
    } else if (o.c !== undefined) {
      if (!Array.isArray(o.c)) damaged('chunks is not a list');
      let sum = 0;
      e.chunks = (o.c as unknown[]).map((r, n) => {
        const ref = checkRef(r, n);
        sum += ref.length;
        return ref;
      });
      if (sum !== e.size) damaged(`size ${e.size} but its chunks hold ${sum} bytes`);
    } else if (e.size !== 0) damaged(`size ${e.size} but no content`);
  } else if (type === 'symlink') {
    e.target = str(o.l, 'symlink target', true);
    if (e.target.includes('\0')) damaged('symlink target contains NUL');
    const bytes = Buffer.byteLength(e.target);
    if (bytes !== e.size) damaged(`size ${e.size} but a ${bytes}-byte target`);
  }
  return e;
}

function checkRef(r: unknown, n: number): ChunkRef {
  const what = `chunk ${n}`;
  if (!Array.isArray(r) || r.length !== 4) damaged(`${what} is not [hash, pack, offset, length]`);
  const [hash, pack, offset, length] = r as unknown[];
  if (!isChunkHash(hash)) damaged(`${what}: hash ${JSON.stringify(hash)} is not 64 lowercase hex characters`);
  if (typeof pack !== 'string' || !PACK_ID_RE.test(pack)) {
    damaged(`${what}: pack id ${JSON.stringify(pack)} is malformed`);
  }
  return { hash, pack, offset: int(offset, `${what}: offset`), length: int(length, `${what}: length`) };
}

export function encodeEntry(e: EntryData): WireEntry {
  const w: WireEntry = { t: e.type, m: e.mode, mt: e.mtimeMs, s: e.size };
  if (e.chunks) w.c = e.chunks.map((r) => [r.hash, r.pack, r.offset, r.length]);
  if (e.inline) w.i = e.inline.toString('base64');
  if (e.target !== undefined) w.l = e.target;
  return w;
}

/** Encodes an entry, refusing one that would not read back (INVALID_ARGUMENT, nothing written). */
function encodeChecked(path: string, e: EntryData): WireEntry {
  const w = encodeEntry(e);
  try {
    checkPath(path);
    checkEntry(w, path);
  } catch (err) {
    if (!(err instanceof Damage)) throw err;
    throw new CairnError('INVALID_ARGUMENT', `cannot store /${path}: ${err.message}`, {
      path: `/${path}`,
      hint: 'this is a bug or bad input to putEntries; nothing was written',
    });
  }
  return w;
}

/** Runs a decoder, turning Damage (and anything unexpected) into CORRUPT naming the object. */
function decoding<T>(what: string, key: string, volume: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof CairnError) throw err;
    const why = err instanceof Damage ? err.message : `it is not readable (${String((err as Error)?.message ?? err)})`;
    throw new CairnError('CORRUPT', `${what} ${key} of volume ${volume} is damaged: ${why}`, {
      key,
      volume,
      hint: `the object was changed on the store; \`cairn volume verify\` lists every damaged object`,
    }, { cause: err });
  }
}

// ---- commit records --------------------------------------------------------------------------

const RECORD_KEYS = ['version', 'seq', 'base', 'time', 'author', 'commitId', 'ops'];

/** A record as stored: one JSON line in format FORMAT_VERSION, sealed with its checksum. */
export function encodeRecord(r: CommitRecord): Buffer {
  const ops = r.ops.map((o) =>
    o.op === 'put'
      ? { op: 'put', path: o.path, entry: encodeChecked(o.path, o.entry) }
      : { op: 'delete', path: o.path },
  );
  const { seq, base, time, author, commitId } = r;
  const body = { version: FORMAT_VERSION, seq, base, time, author, commitId, ops };
  return seal(Buffer.from(`${JSON.stringify(body)}\n`));
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
      if (o.op !== 'put') damaged(`op ${n} is ${JSON.stringify(o.op)}, not put or delete`);
      onlyKeys(o, ['op', 'path', 'entry'], `op ${n}`);
      return { op: 'put', path, entry: checkEntry(o.entry, path) };
    });
    return { version: v, seq, base, time, author, commitId, ops };
  });
}

// ---- checkpoints -----------------------------------------------------------------------------

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/**
 * A checkpoint: the full state at `seq`, as gzip'd JSON lines: a header, one `[path, entry]` line
 * per path, and (format 2) the checksum line over the lines before it.
 */
export async function encodeCheckpoint(seq: number, entries: Iterable<[string, EntryData]>): Promise<Buffer> {
  const lines = [JSON.stringify({ version: FORMAT_VERSION, seq })];
  for (const [path, e] of entries) lines.push(JSON.stringify([path, encodeChecked(path, e)]));
  lines.push('');
  return gzipAsync(seal(Buffer.from(lines.join('\n'))));
}

/**
 * Decodes and validates the checkpoint at `key` of volume `volume`: the gzip stream (its CRC),
 * the checksum, the header (its seq must be the key's), every line, unique paths, and every
 * path's parent present as a directory. CORRUPT names the key; UNSUPPORTED for a newer format.
 */
export async function decodeCheckpoint(body: Buffer, key: string, volume: string): Promise<Checkpoint> {
  let text: Buffer | undefined;
  let gzipError: unknown;
  try {
    text = await gunzipAsync(body);
  } catch (err) {
    gzipError = err;
  }
  return decoding('checkpoint', key, volume, () => {
    if (!text) damaged(`its gzip stream is broken (${(gzipError as Error).message})`);
    const payload = unseal(text);
    const lines = (payload ?? text).toString('utf8').split('\n');
    if (payload) lines.pop(); // the payload's lines each end with '\n'
    const head = parseObject(lines[0]!, 'the header');
    const v = version(head.version, payload !== undefined, 'checkpoint', key, volume);
    onlyKeys(head, ['version', 'seq'], 'the header');
    const seq = int(head.seq, 'seq');
    if (seq !== seqOfKey(key)) damaged(`it says seq ${seq}, its key says ${seqOfKey(key)}`);
    const entries: [string, EntryData][] = [];
    const seen = new Set<string>();
    const dirs = new Set<string>(['']);
    for (let n = 1; n < lines.length; n++) {
      try {
        const line: unknown = JSON.parse(lines[n]!);
        if (!Array.isArray(line) || line.length !== 2) damaged('it is not [path, entry]');
        const path = checkPath(line[0]);
        if (seen.has(path)) damaged(`path ${JSON.stringify(path)} appears twice`);
        seen.add(path);
        const e = checkEntry(line[1], path);
        if (e.type === 'directory') dirs.add(path);
        entries.push([path, e]);
      } catch (err) {
        const why = err instanceof Damage ? err.message : `it is not valid JSON (${(err as Error).message})`;
        damaged(`line ${n + 1}: ${why}`);
      }
    }
    for (const [path] of entries) {
      if (path !== '' && !dirs.has(parentOf(path))) {
        damaged(`the parent of ${JSON.stringify(path)} is not a directory in it`);
      }
    }
    return { version: v, seq, entries };
  });
}

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
