/**
 * The checkpoint codec (docs/FORMAT.md): gzip'd JSON lines, a header `{"version","seq"}`, one
 * `[path, entry]` line per path, and (format 2) the checksum line over every byte before it.
 * Both directions stream, so memory stays bounded whatever the volume's size: the encoder takes
 * entries one at a time and gzips ~1 MiB of text at a time (one gzip member each: a gzip stream may
 * hold several, and every gunzip reads them in order); the decoder gunzips and parses line by line.
 *
 * Invariants:
 * - the encoder is synchronous (a caller may hold a read transaction over its entries) and runs
 *   the entry validator (`encodeChecked`), so Cairn never writes a checkpoint it would reject;
 * - the decoder hands entries to `visit` as it parses them, but its promise resolves only once the
 *   whole stream is read, the checksum matches and every check passed; until then what `visit`
 *   received is untrusted: callers apply it only where nothing uses it before (a journal not yet
 *   claimed, a temporary journal adopted afterwards, GC's mark, which aborts before any deletion);
 * - damage is CORRUPT naming the key, and a checksum mismatch is reported before any other damage
 *   (as the whole-object decoders do); UNSUPPORTED for a well-formed checkpoint of a newer format;
 * - unique paths are the caller's check for the streaming decoder (a journal counts its rows:
 *   `checkpointDamage`); `decodeCheckpoint` checks them itself.
 */
import { Readable } from 'node:stream';
import { createGunzip, gzipSync } from 'node:zlib';
import { createRequire } from 'node:module';
import { parentOf } from './paths.js';
import { FORMAT_VERSION, seqOfKey } from './keys.js';
import { type EntryData, checkEntry, checkPath, decoding, encodeChecked } from './entries.js';
import { Damage, damaged, int, onlyKeys, parseObject, version } from './wire.js';

export interface Checkpoint {
  /** Format version (as read). */
  version: number;
  seq: number;
  entries: [string, EntryData][];
}

/** Text gzipped as one member. */
const BLOCK_BYTES = 1 << 20;
/** Entries handed to `visit` at once. */
const BATCH = 2048;
const TRAILER_RE = /^\{"blake3":"([0-9a-f]{64})"\}$/;

interface Hasher {
  update(b: Uint8Array): void;
  digest(encoding: 'hex'): string;
  dispose?(): void;
}
/** Incremental BLAKE3 (the `blake3` package; the same digest as chunks/hash.ts). */
const createHash = (createRequire(import.meta.url)('blake3') as { createHash(): Hasher }).createHash;

/**
 * A checkpoint of snapshot `seq` as stored (gzip of the sealed lines), built one entry at a time.
 * @example const body = encodeCheckpointSync(7, journalEntries());
 */
export function encodeCheckpointSync(seq: number, entries: Iterable<[string, EntryData]>): Buffer {
  const hash = createHash();
  const out: Buffer[] = [];
  let text: string[] = [];
  let size = 0;
  const flush = (last: boolean) => {
    const block = Buffer.from(text.join(''));
    hash.update(block);
    const tail = last ? Buffer.from(`{"blake3":"${hash.digest('hex')}"}`) : undefined;
    if (block.length || tail) out.push(gzipSync(tail ? Buffer.concat([block, tail]) : block));
    text = [];
    size = 0;
  };
  const add = (line: string) => {
    text.push(line, '\n');
    size += line.length + 1;
    if (size >= BLOCK_BYTES) flush(false);
  };
  try {
    add(JSON.stringify({ version: FORMAT_VERSION, seq }));
    for (const [path, e] of entries) add(JSON.stringify([path, encodeChecked(path, e)]));
    flush(true);
  } finally {
    hash.dispose?.();
  }
  return Buffer.concat(out);
}

/** {@link encodeCheckpointSync}, as a promise. */
export function encodeCheckpoint(seq: number, entries: Iterable<[string, EntryData]>): Promise<Buffer> {
  try {
    return Promise.resolve(encodeCheckpointSync(seq, entries));
  } catch (err) {
    return Promise.reject(err as Error);
  }
}

/** CORRUPT for checkpoint `key` of `volume` (a check made by the caller of the streaming decoder). */
export function checkpointDamage(key: string, volume: string, why: string): Error {
  try {
    return decoding('checkpoint', key, volume, () => damaged(why));
  } catch (err) {
    return err as Error;
  }
}

/**
 * Decodes checkpoint `body` (stored at `key` of volume `volume`) as a stream: the gzip stream, the
 * checksum, the header (its seq must be the key's), every line, and every path's parent present as
 * a directory; entries go to `visit` in batches as they are parsed (untrusted until the promise
 * resolves: see the module invariants). Resolves to the version, seq and number of entries.
 * @example const { seq, count } = await streamCheckpoint(body, key, id, (batch) => journal.loadEntries(batch));
 */
export async function streamCheckpoint(
  body: Buffer,
  key: string,
  volume: string,
  visit: (batch: [string, EntryData][]) => void,
): Promise<{ version: number; seq: number; count: number }> {
  const hash = createHash();
  let rawHead: Record<string, unknown> | undefined;
  let lineNo = 0;
  let count = 0;
  let firstDamage: Damage | undefined;
  let batch: [string, EntryData][] = [];
  const dirs = new Set<string>(['']);
  const parents = new Set<string>();
  // The newest complete line is held back (unhashed) until the next one ends: the last line may be
  // the checksum, which is not part of what it covers.
  let held: Buffer | undefined;
  let entryVersion = FORMAT_VERSION;
  let sawRoot = false;
  let carry: Buffer = Buffer.alloc(0);
  const parseLine = (line: Buffer) => {
    lineNo++;
    if (firstDamage) return;
    try {
      if (lineNo === 1) {
        rawHead = parseObject(line.toString('utf8'), 'the header');
        // Entries are read by the rules of their format (checked against the seal at the end).
        if (typeof rawHead.version === 'number' && Number.isInteger(rawHead.version)) entryVersion = rawHead.version;
        return;
      }
      let v: unknown;
      try {
        v = JSON.parse(line.toString('utf8'));
      } catch (err) {
        damaged(`it is not valid JSON (${(err as Error).message})`);
      }
      if (!Array.isArray(v) || v.length !== 2) damaged('it is not [path, entry]');
      const path = checkPath(v[0]);
      const e = checkEntry(v[1], path, entryVersion);
      if (e.type === 'directory') dirs.add(path);
      // The root's line (format 3) is not counted: callers compare the count with their rows but the root.
      if (path === '') {
        if (sawRoot) damaged('the root appears twice');
        sawRoot = true;
      } else {
        parents.add(parentOf(path));
        count++;
      }
      batch.push([path, e]);
      if (batch.length >= BATCH) {
        visit(batch);
        batch = [];
      }
    } catch (err) {
      if (!(err instanceof Damage)) throw err;
      firstDamage = lineNo === 1 ? err : new Damage(`line ${lineNo}: ${err.message}`);
    }
  };
  const take = (line: Buffer) => {
    if (held) {
      hash.update(held);
      hash.update(NL);
      parseLine(held);
    }
    held = line;
  };
  let gzipError: Error | undefined;
  try {
    try {
      for await (const chunk of Readable.from([body]).pipe(createGunzip()) as AsyncIterable<Buffer>) {
        let buf = carry.length ? Buffer.concat([carry, chunk]) : chunk;
        for (let nl = buf.indexOf(0x0a); nl >= 0; nl = buf.indexOf(0x0a)) {
          take(buf.subarray(0, nl));
          buf = buf.subarray(nl + 1);
        }
        carry = Buffer.from(buf);
      }
    } catch (err) {
      gzipError = err as Error;
    }
    return decoding('checkpoint', key, volume, () => {
      if (gzipError) damaged(`its gzip stream is broken (${gzipError.message})`);
      // The text ends either with the checksum line (no newline after it) or, format 1, with a
      // last line of its own.
      const m = TRAILER_RE.exec(carry.toString('latin1'));
      const sealed = m !== null && held !== undefined;
      if (sealed) {
        hash.update(held!);
        hash.update(NL);
        if (hash.digest('hex') !== m[1]) damaged('its checksum does not match its contents');
        parseLine(held!);
      } else {
        if (held) parseLine(held);
        parseLine(carry);
      }
      if (firstDamage) throw firstDamage;
      if (!rawHead) damaged('it has no header');
      const v = version(rawHead.version, sealed, 'checkpoint', key, volume);
      onlyKeys(rawHead, ['version', 'seq'], 'the header');
      const seq = int(rawHead.seq, 'seq');
      if (seq !== seqOfKey(key)) damaged(`it says seq ${seq}, its key says ${seqOfKey(key)}`);
      for (const p of parents) if (!dirs.has(p)) damaged(`${JSON.stringify(p)}, the parent of paths in it, is not a directory in it`);
      if (batch.length) visit(batch);
      return { version: v, seq, count };
    });
  } finally {
    hash.dispose?.();
  }
}

const NL = Buffer.from('\n');

/**
 * Decodes and validates the whole checkpoint at `key` of volume `volume` into memory (verify and
 * tools; sessions and GC stream it): as {@link streamCheckpoint}, plus unique paths.
 */
export async function decodeCheckpoint(body: Buffer, key: string, volume: string): Promise<Checkpoint> {
  const entries: [string, EntryData][] = [];
  const { version: v, seq } = await streamCheckpoint(body, key, volume, (batch) => {
    for (const x of batch) entries.push(x);
  });
  const seen = new Set<string>();
  for (const [path] of entries) {
    if (seen.has(path)) throw checkpointDamage(key, volume, `path ${JSON.stringify(path)} appears twice`);
    seen.add(path);
  }
  return { version: v, seq, entries };
}
