/**
 * Pack forwarding: where the live chunks of a pack GC compacted went (docs/ARCHITECTURE.md,
 * "Compaction"; docs/FORMAT.md, "Forwarding objects").
 *
 * Compaction copies the chunks still referenced out of a mostly-dead pack P into a new pack and
 * writes `forward/P` (create-if-absent, immutable): chunk hash -> its new (pack, offset, length).
 * Records and checkpoints keep naming P; once P is deleted (a grace later), a read whose GET of P
 * is NOT_FOUND looks the chunk up here and reads it from its new place. The new place may have
 * been compacted in turn: the lookup follows the chain (at most MAX_HOPS).
 *
 * Invariants: a forwarding object is sealed like the other metadata (its JSON, then a
 * `{"blake3":…}` line over it, as format/wire.ts seals: this layer sits below format/), and
 * decoded strictly (CORRUPT otherwise); it never makes wrong bytes possible, as every chunk read
 * through it is still verified against its hash by the caller (fetch.ts); tables are cached per
 * process (immutable), missing ones are not (a read that finds none fails as the pack's GET did).
 */
import { CairnError, isCairnError } from '../errors.js';
import type { ObjectStore } from '../store/types.js';
import { hashChunk, isChunkHash } from './hash.js';
import type { ChunkRef } from './types.js';

/** Longest chain of forwarding objects a read follows (each compaction of a target adds one). */
export const MAX_HOPS = 8;
/** Version of the forwarding object this code writes and reads. */
export const FORWARD_VERSION = 1;
const PACK_RE = /^[0-9a-f]{32}$/;
const TRAILER_RE = /^\{"blake3":"([0-9a-f]{64})"\}$/;

/** A forwarding object: the chunks of `pack` that were copied, by hash, and where to. */
export interface Forward {
  /** The compacted (old) pack. */
  pack: string;
  /** Store time (ms) of the compaction. */
  time: number;
  /** Hash -> the chunk's new place (its `pack` is the new pack). */
  chunks: Map<string, ChunkRef>;
}

/**
 * The key of pack `pack`'s forwarding object, given the volume's pack prefix
 * (`volumes/<id>/packs/` -> `volumes/<id>/forward/<pack>`).
 * @example forwardKey('volumes/vo-1/packs/', p) === `volumes/vo-1/forward/${p}`
 */
export function forwardKey(packPrefix: string, pack: string): string {
  return `${packPrefix.replace(/packs\/$/, '')}forward/${pack}`;
}

/**
 * Encodes a forwarding object (sealed JSON).
 * @example await store.put(forwardKey(prefix, f.pack), encodeForward(f), { ifAbsent: true });
 */
export function encodeForward(f: Forward): Buffer {
  const chunks = [...f.chunks.values()].map((r) => [r.hash, r.pack, r.offset, r.length]);
  const payload = Buffer.from(`${JSON.stringify({ version: FORWARD_VERSION, pack: f.pack, time: f.time, chunks })}\n`);
  return Buffer.concat([payload, Buffer.from(`{"blake3":"${hashChunk(payload)}"}`)]);
}

function damaged(key: string, why: string): CairnError {
  return new CairnError('CORRUPT', `forwarding object ${key} is damaged: ${why}`, {
    key,
    hint: '`cairn volume verify` lists every damaged object; the chunks it forwards are unreadable until it is restored',
  });
}

/**
 * Decodes and checks a forwarding object read from `key` (CORRUPT when damaged, UNSUPPORTED when
 * newer than this code).
 * @example const f = decodeForward(await store.get(key), key);
 */
export function decodeForward(body: Buffer, key: string): Forward {
  const nl = body.lastIndexOf(0x0a);
  const m = nl < 0 ? null : TRAILER_RE.exec(body.subarray(nl + 1).toString('latin1'));
  if (!m) throw damaged(key, 'it has no checksum line');
  const payload = body.subarray(0, nl + 1);
  if (hashChunk(payload) !== m[1]) throw damaged(key, 'its checksum does not match its contents');
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw damaged(key, 'it is not JSON');
  }
  if (typeof raw !== 'object' || raw === null) throw damaged(key, 'it is not an object');
  if (typeof raw.version !== 'number' || raw.version < 1) throw damaged(key, 'bad version');
  if (raw.version > FORWARD_VERSION) {
    throw new CairnError('UNSUPPORTED', `forwarding object ${key} has version ${raw.version}; this cairn reads up to ${FORWARD_VERSION}`, {
      key,
      hint: 'upgrade cairn',
    });
  }
  const fields = Object.keys(raw).sort().join(',');
  if (fields !== 'chunks,pack,time,version') throw damaged(key, `unexpected fields ${fields}`);
  if (typeof raw.pack !== 'string' || !PACK_RE.test(raw.pack) || !key.endsWith(`/${raw.pack}`))
    throw damaged(key, 'its pack is not its key');
  if (typeof raw.time !== 'number' || !Number.isFinite(raw.time) || raw.time < 0) throw damaged(key, 'bad time');
  if (!Array.isArray(raw.chunks)) throw damaged(key, 'chunks is not a list');
  const chunks = new Map<string, ChunkRef>();
  for (const [n, c] of (raw.chunks as unknown[]).entries()) {
    const ok =
      Array.isArray(c) &&
      c.length === 4 &&
      isChunkHash(c[0]) &&
      typeof c[1] === 'string' &&
      PACK_RE.test(c[1]) &&
      Number.isSafeInteger(c[2]) &&
      (c[2] as number) >= 0 &&
      Number.isSafeInteger(c[3]) &&
      (c[3] as number) >= 0;
    if (!ok) throw damaged(key, `chunk ${n} is malformed`);
    const [hash, pack, offset, length] = c as [string, string, number, number];
    chunks.set(hash, { hash, pack, offset, length });
  }
  return { pack: raw.pack, time: raw.time, chunks };
}

/**
 * The reader's side: finds and reads chunks of packs that are gone because GC compacted them.
 *
 * @example
 * const fw = new Forwarder(store, 'volumes/vo-1/packs/');
 * const bytes = await fw.read(ref); // then verified against ref.hash by the caller
 */
export class Forwarder {
  private readonly tables = new Map<string, Promise<Forward>>();
  /** Chunks read through a forwarding object (for tests and stats). */
  reads = 0;

  constructor(
    private readonly store: ObjectStore,
    private readonly packPrefix: string,
  ) {}

  /** The forwarding object of `pack` (NOT_FOUND when there is none), cached once read. */
  table(pack: string): Promise<Forward> {
    let t = this.tables.get(pack);
    if (!t) {
      const key = forwardKey(this.packPrefix, pack);
      t = this.store.get(key).then((b) => decodeForward(b, key));
      this.tables.set(pack, t);
      t.catch(() => this.tables.delete(pack));
    }
    return t;
  }

  /**
   * The bytes of chunk `ref`, whose pack `gone` (the NOT_FOUND of its GET) says is missing: read
   * from where the forwarding objects say it went. Throws `gone` when the pack was never
   * forwarded or forwarded without this chunk. Unverified: the caller checks the hash.
   */
  async read(ref: ChunkRef, gone: unknown): Promise<Buffer> {
    let at = ref;
    let err = gone;
    for (let hop = 0; hop < MAX_HOPS; hop++) {
      let f: Forward;
      try {
        f = await this.table(at.pack);
      } catch (e) {
        if (isCairnError(e, 'NOT_FOUND')) throw err;
        throw e;
      }
      const next = f.chunks.get(ref.hash);
      // Not forwarded: the chunk is gone, as the pack's GET said (a writer then chunks its staged
      // file again, sync.ts; a reader fails as it did before compaction existed).
      if (!next || next.length !== ref.length) throw gone;
      at = next;
      try {
        const bytes = await this.store.get(this.packPrefix + at.pack, { offset: at.offset, length: at.length });
        this.reads++;
        return bytes.length > at.length ? bytes.subarray(0, at.length) : bytes;
      } catch (e) {
        if (!isCairnError(e, 'NOT_FOUND')) throw e;
        err = e; // that pack was compacted too: follow the chain
      }
    }
    throw new CairnError('CORRUPT', `chunk ${ref.hash} of pack ${ref.pack} is forwarded more than ${MAX_HOPS} times`, {
      key: forwardKey(this.packPrefix, ref.pack),
      hint: '`cairn volume verify` lists every damaged object',
    });
  }
}
