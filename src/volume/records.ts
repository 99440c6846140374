/**
 * The commit-log record and checkpoint formats (docs/FORMAT.md), and the keys they live at.
 *
 * Invariants: a record's ops are state-independent (absolute `put`s of whole entries and subtree
 * `delete`s), so re-applying a record on a newer snapshot is well defined and idempotent; seqs are
 * zero-padded in keys so byte order is numeric order.
 */
import { gunzip, gzip } from 'node:zlib';
import { promisify } from 'node:util';
import { CairnError } from '../errors.js';
import type { ChunkRef } from '../chunks/types.js';
import type { EntryType } from './types.js';

export const FORMAT_VERSION = 1;
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
};

export function padSeq(seq: number): string {
  return String(seq).padStart(SEQ_DIGITS, '0');
}

/** The seq at the end of a log or checkpoint key. */
export function seqOfKey(key: string): number {
  return Number(key.slice(key.lastIndexOf('/') + 1));
}

type WireEntry = {
  t: EntryType;
  m: number;
  mt: number;
  s: number;
  c?: [string, string, number, number][];
  i?: string;
  l?: string;
};

export function encodeEntry(e: EntryData): WireEntry {
  const w: WireEntry = { t: e.type, m: e.mode, mt: e.mtimeMs, s: e.size };
  if (e.chunks) w.c = e.chunks.map((r) => [r.hash, r.pack, r.offset, r.length]);
  if (e.inline) w.i = e.inline.toString('base64');
  if (e.target !== undefined) w.l = e.target;
  return w;
}

export function decodeEntry(w: WireEntry): EntryData {
  const e: EntryData = { type: w.t, mode: w.m, mtimeMs: w.mt, size: w.s };
  if (w.c) e.chunks = w.c.map(([hash, pack, offset, length]) => ({ hash, pack, offset, length }));
  if (w.i !== undefined) e.inline = Buffer.from(w.i, 'base64');
  if (w.l !== undefined) e.target = w.l;
  return e;
}

export function encodeRecord(r: CommitRecord): Buffer {
  const ops = r.ops.map((o) => (o.op === 'put' ? { op: 'put', path: o.path, entry: encodeEntry(o.entry) } : o));
  return Buffer.from(JSON.stringify({ ...r, ops }));
}

export function decodeRecord(body: Buffer, key: string): CommitRecord {
  try {
    const raw = JSON.parse(body.toString('utf8'));
    if (raw.version !== FORMAT_VERSION) {
      throw new CairnError('UNSUPPORTED', `commit record ${key} has format version ${raw.version}`, {
        key,
        hint: 'upgrade cairn to read this volume',
      });
    }
    raw.ops = raw.ops.map((o: { op: string; path: string; entry?: WireEntry }) =>
      o.op === 'put' ? { op: 'put', path: o.path, entry: decodeEntry(o.entry!) } : { op: 'delete', path: o.path },
    );
    return raw as CommitRecord;
  } catch (err) {
    if (err instanceof CairnError) throw err;
    throw new CairnError('CORRUPT', `commit record ${key} is not readable`, { key }, { cause: err });
  }
}

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/** A checkpoint: the full state at `seq`, as gzip'd JSON lines (header, then one entry per line). */
export async function encodeCheckpoint(seq: number, entries: Iterable<[string, EntryData]>): Promise<Buffer> {
  const lines = [JSON.stringify({ version: FORMAT_VERSION, seq })];
  for (const [path, e] of entries) lines.push(JSON.stringify([path, encodeEntry(e)]));
  return gzipAsync(Buffer.from(lines.join('\n')));
}

export async function decodeCheckpoint(body: Buffer, key: string): Promise<{ seq: number; entries: [string, EntryData][] }> {
  try {
    const lines = (await gunzipAsync(body)).toString('utf8').split('\n');
    const head = JSON.parse(lines[0]!);
    if (head.version !== FORMAT_VERSION) {
      throw new CairnError('UNSUPPORTED', `checkpoint ${key} has format version ${head.version}`, { key });
    }
    const entries: [string, EntryData][] = [];
    for (let i = 1; i < lines.length; i++) {
      const [path, w] = JSON.parse(lines[i]!) as [string, WireEntry];
      entries.push([path, decodeEntry(w)]);
    }
    return { seq: head.seq, entries };
  } catch (err) {
    if (err instanceof CairnError) throw err;
    throw new CairnError('CORRUPT', `checkpoint ${key} is not readable`, { key }, { cause: err });
  }
}
