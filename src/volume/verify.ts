/**
 * `verify`: a full check of one volume's objects on the store, as a structured report (the
 * library's `vol.verify()`, the CLI's `cairn volume verify`).
 *
 * What it checks: the name object and `meta` (decoded and validated as every reader does, see
 * records.ts), every commit record and checkpoint (checksum, structure, entries, seq = key), that
 * the log has no holes and no checkpoint lies beyond its head, that every pack referenced by a
 * record or checkpoint exists and holds every referenced range; with `data`, each referenced
 * pack's trailer index and every referenced chunk, fetched from the store (no cache) and checked
 * against its BLAKE3 name by the ChunkStore read path. It lists orphans: packs nobody references
 * and keys under `volumes/<id>/` that are none of Cairn's.
 *
 * Invariants: verify only reads (it never repairs or deletes); one damaged object is one problem
 * and the walk goes on; `ok` is false exactly when there is a problem. Orphans are not problems:
 * a commit in flight or one that failed after uploading its packs leaves packs nobody references
 * (yet). Memory: the refs of the distinct chunks referenced, and one checkpoint at a time.
 */
import pLimit from 'p-limit';
import { CairnError, type ErrorCode, isCairnError } from '../errors.js';
import type { ObjectInfo, ObjectStore } from '../store/index.js';
import { ChunkStore, readPackTrailer, verifyOutboard, type ChunkRef } from '../chunks/index.js';
import { type PackRefs, addRefs, covers, listForwards, resolveForwards } from './refs.js';
import {
  type VolumeMeta,
  CONDEMNED_NAME_RE,
  PACK_ID_RE,
  VOLUME_ID_RE,
  decodeCheckpoint,
  decodeMeta,
  decodeRecord,
  keys,
  seqOfKey,
  readFloor,
} from '../format/index.js';

export type VerifyKind = 'name' | 'meta' | 'record' | 'checkpoint' | 'pack' | 'chunk' | 'forward';

/** One thing wrong: the object (`key`), what kind it is, and what is wrong with it. */
export interface VerifyProblem {
  kind: VerifyKind;
  key: string;
  problem: string;
  /** The error code a reader gets for it (CORRUPT, UNSUPPORTED, NOT_FOUND, …). */
  code: ErrorCode;
}

/**
 * An object nobody needs: a pack no record or checkpoint references, a record or checkpoint below
 * the pruned floor (a GC stopped before removing it), or a key Cairn never writes.
 */
export interface VerifyOrphan {
  kind: 'pack' | 'pruned' | 'unknown' | 'forward';
  key: string;
  size: number;
}

export interface VerifyReport {
  /** The volume as asked for (its name, or its id). */
  volume: string;
  /** Its id ('' when the name object is damaged and no id could be found). */
  id: string;
  /** True when there is no problem (orphans do not count). */
  ok: boolean;
  /** Whether chunk data was fetched and verified. */
  data: boolean;
  checked: {
    names: number;
    metas: number;
    records: number;
    checkpoints: number;
    /** Counts are of the objects read, damaged ones included. Entries: checkpoint lines plus record ops. */
    entries: number;
    packs: number;
    chunks: number;
    chunkBytes: number;
  };
  /** Objects checked per format version (e.g. `{ "1": 3, "2": 40 }`). */
  formats: Record<string, number>;
  problems: VerifyProblem[];
  orphans: VerifyOrphan[];
  elapsedMs: number;
}

export interface VerifyOptions {
  /** Also fetch every referenced chunk and verify it against its hash (reads all the data). */
  data?: boolean;
  /** Objects fetched at once (default 16). */
  concurrency?: number;
}

/** An error's message (the hint is a field of its own: the report is a list, not advice). */
function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Where the checks write what they find. */
interface Findings {
  report: VerifyReport;
  flag(kind: VerifyKind, key: string, code: ErrorCode, problem: string): void;
  problem(kind: VerifyKind, key: string, err: unknown): void;
  counted(version: number): void;
}

/** Errors that say an object is damaged, missing or too new (a problem), not that the store failed. */
function isDamage(err: unknown): err is CairnError {
  return isCairnError(err) && (err.code === 'CORRUPT' || err.code === 'UNSUPPORTED' || err.code === 'NOT_FOUND');
}

export { type PackRefs, addRefs } from './refs.js';

/** Longest run of chunks fetched with one read when verifying data. */
const DATA_BATCH_BYTES = 8 * 1024 * 1024;

/**
 * Verifies the volume `target` (by name, by id, or both as a handle knows them) on `store`.
 * NOT_FOUND when there is no such volume; everything wrong with it is in the report.
 *
 * @example
 * const report = await verifyVolume(store, { name: 'data' }, { data: true });
 * if (!report.ok) console.log(report.problems);
 */
export async function verifyVolume(
  store: ObjectStore,
  target: { name?: string; id?: string },
  options: VerifyOptions = {},
): Promise<VerifyReport> {
  const started = Date.now();
  const report: VerifyReport = {
    volume: target.name ?? target.id ?? '',
    id: target.id ?? '',
    ok: false,
    data: !!options.data,
    checked: { names: 0, metas: 0, records: 0, checkpoints: 0, entries: 0, packs: 0, chunks: 0, chunkBytes: 0 },
    formats: {},
    problems: [],
    orphans: [],
    elapsedMs: 0,
  };
  const flag = (kind: VerifyKind, key: string, code: ErrorCode, problem: string): void => {
    report.problems.push({ kind, key, problem, code });
  };
  const problem = (kind: VerifyKind, key: string, err: unknown): void =>
    flag(kind, key, isCairnError(err) ? err.code : 'CORRUPT', messageOf(err));
  const counted = (version: number): void => {
    report.formats[version] = (report.formats[version] ?? 0) + 1;
  };
  const findings: Findings = { report, flag, problem, counted };
  const finish = (): VerifyReport => {
    report.ok = report.problems.length === 0;
    report.elapsedMs = Date.now() - started;
    return report;
  };

  if (target.name !== undefined) {
    const id = await verifyName(store, target.name, target.id, findings);
    if (id === undefined) return finish();
    report.id = id;
  }
  const id = report.id;
  if (!VOLUME_ID_RE.test(id)) {
    const hint = 'ids look like vo-…';
    throw new CairnError('INVALID_ARGUMENT', `invalid volume id ${JSON.stringify(id)}`, { hint });
  }

  // meta
  const metaKey = keys.meta(id);
  try {
    report.checked.metas++;
    counted(decodeMeta(await store.get(metaKey), metaKey, report.volume).version);
  } catch (err) {
    if (!isDamage(err)) throw err;
    if (err.code !== 'NOT_FOUND') problem('meta', metaKey, err);
    else if (target.name === undefined) throw new CairnError('NOT_FOUND', `volume id ${id} not found`, { volume: id });
    else flag('meta', metaKey, 'NOT_FOUND', 'the volume metadata is missing');
  }

  // Sort every key of the volume.
  const logs: ObjectInfo[] = [];
  const checkpoints: ObjectInfo[] = [];
  const packs = new Map<string, ObjectInfo>();
  // Below the pruned floor, records and checkpoints are leftovers of a GC that was stopped: their
  // packs may be gone by design, so they are listed as orphans, not checked.
  const floor = await readFloor(store, id);
  for (const o of await store.list(keys.volume(id))) {
    const rest = o.key.slice(keys.volume(id).length);
    const [dir, name, more] = rest.split('/');
    if (o.key === metaKey || o.key === keys.retention(id)) continue;
    if (more === undefined && dir === 'pruned' && Number.isSafeInteger(seqOfKey(o.key))) continue;
    if (more === undefined && dir === 'gc' && CONDEMNED_NAME_RE.test(name ?? '')) continue;
    if (more === undefined && dir === 'forward' && PACK_ID_RE.test(name ?? '')) continue; // listForwards below
    const s = seqOfKey(o.key);
    if (more === undefined && ((dir === 'log' && s < floor) || (dir === 'checkpoint' && s < floor))) {
      report.orphans.push({ kind: 'pruned', key: o.key, size: o.size });
      continue;
    }
    if (more === undefined && dir === 'log' && Number.isSafeInteger(seqOfKey(o.key))) logs.push(o);
    else if (more === undefined && dir === 'checkpoint' && Number.isSafeInteger(seqOfKey(o.key))) checkpoints.push(o);
    else if (more === undefined && dir === 'packs' && PACK_ID_RE.test(name ?? '')) packs.set(name!, o);
    else report.orphans.push({ kind: 'unknown', key: o.key, size: o.size });
  }

  const refs: PackRefs = new Map();
  const limit = pLimit(Math.max(1, options.concurrency ?? 16));

  // Records, and holes in the log.
  await Promise.all(
    logs.map((o) =>
      limit(async () => {
        try {
          report.checked.records++;
          const r = decodeRecord(await store.get(o.key), o.key, report.volume);
          counted(r.version);
          report.checked.entries += r.ops.filter((op) => op.op !== 'times').length;
          addRefs(
            refs,
            o.key,
            r.ops.flatMap((op) => (op.op === 'put' ? [op.entry] : [])),
          );
        } catch (err) {
          if (!isDamage(err)) throw err;
          if (err.code === 'NOT_FOUND') flag('record', o.key, 'NOT_FOUND', `${o.key} vanished while verifying`);
          else problem('record', o.key, err);
        }
      }),
    ),
  );
  // Records below a checkpoint may have been removed (a prefix); any other seq up to the head may not.
  const seqs = logs.map((o) => seqOfKey(o.key));
  const head = seqs.length ? seqs[seqs.length - 1]! : 0;
  const covered = Math.max(0, ...checkpoints.map((o) => seqOfKey(o.key)));
  const first = seqs.length && seqs[0]! - 1 <= covered ? seqs[0]! : 1;
  for (let s = first, i = 0; s <= head; s++) {
    if (seqs[i] === s) i++;
    else flag('record', keys.log(id, s), 'CORRUPT', `the record is missing (the log goes on to seq ${head})`);
  }

  // Checkpoints, one at a time (each holds a whole snapshot).
  for (const o of checkpoints) {
    try {
      report.checked.checkpoints++;
      const cp = await decodeCheckpoint(await store.get(o.key), o.key, report.volume);
      counted(cp.version);
      report.checked.entries += cp.entries.length;
      if (seqs.length && cp.seq > head) {
        flag('checkpoint', o.key, 'CORRUPT', `the checkpoint is at seq ${cp.seq}, beyond the log's head ${head}`);
      }
      addRefs(
        refs,
        o.key,
        cp.entries.map(([, e]) => e),
      );
    } catch (err) {
      if (!isDamage(err)) throw err;
      problem('checkpoint', o.key, err);
    }
  }

  // Compaction: referenced chunks of forwarded packs are checked where they went, too; a pack
  // that is gone is fine when its forwarding object names every chunk referenced in it.
  const forwards = await listForwards(store, id);
  const forwarded = await resolveForwards(store, id, refs, forwards);
  for (const [pack, o] of forwards) {
    const state = forwarded.get(pack);
    if (!state) report.orphans.push({ kind: 'forward', key: o.key, size: o.size });
    else if (state.error && !isCairnError(state.error, 'NOT_FOUND')) problem('forward', o.key, state.error);
  }

  // Packs: present, and long enough for every range referenced in them.
  const prefix = keys.packPrefix(id);
  for (const [pack, info] of packs) {
    if (!refs.has(pack)) report.orphans.push({ kind: 'pack', key: info.key, size: info.size });
  }
  const present: [string, ChunkRef[]][] = [];
  for (const [pack, { by, chunks }] of refs) {
    const info = packs.get(pack);
    const key = prefix + pack;
    if (!info && covers(forwarded.get(pack))) continue; // compacted: its chunks are checked where they went
    if (!info) {
      const state = forwarded.get(pack);
      if (state?.forward) {
        const eg = state.missing[0]!;
        flag(
          'pack',
          key,
          'CORRUPT',
          `the pack was compacted and is gone; ${state.missing.length} chunk(s) referenced in it (e.g. ${eg.hash}, by ${by}) are not forwarded`,
        );
        continue;
      }
      flag('pack', key, 'NOT_FOUND', `the pack is missing; ${chunks.size} chunk(s) in it are referenced (by ${by}, …)`);
      continue;
    }
    report.checked.packs++;
    const sorted = [...chunks.values()].sort((a, b) => a.offset - b.offset);
    const beyond = sorted.filter((r) => r.offset + r.length > info.size);
    if (beyond.length) {
      const r = beyond[0]!;
      const eg = `${r.hash} at ${r.offset}+${r.length}`;
      flag('pack', key, 'CORRUPT', `the pack has ${info.size} bytes; ${beyond.length} chunk ref(s) end beyond (${eg})`);
    }
    present.push([pack, sorted.filter((r) => r.offset + r.length <= info.size)]);
  }

  if (options.data) await verifyData(store, prefix, present, findings, limit);
  return finish();
}

/** Checks `names/<name>`; returns the volume id to go on with, or undefined when there is none. */
async function verifyName(store: ObjectStore, name: string, knownId: string | undefined, log: Findings): Promise<string | undefined> {
  const { report, problem, counted } = log;
  const key = keys.name(name);
  let body: Buffer;
  try {
    body = await store.get(key);
  } catch (err) {
    if (!isCairnError(err, 'NOT_FOUND')) throw err;
    if (knownId === undefined) {
      const hint = 'see cairn volume list for the names there are';
      throw new CairnError('NOT_FOUND', `volume ${name} not found`, { volume: name, hint });
    }
    log.flag('name', key, 'NOT_FOUND', `${key} is missing (the volume was renamed or deleted)`);
    return knownId;
  }
  let meta: VolumeMeta;
  report.checked.names++;
  try {
    meta = decodeMeta(body, key, name);
  } catch (err) {
    if (!isCairnError(err, 'CORRUPT') && !isCairnError(err, 'UNSUPPORTED')) throw err;
    problem('name', key, err);
    return knownId ?? (await idFromDamagedName(store, name, body));
  }
  counted(meta.version);
  if (knownId !== undefined && meta.id !== knownId) {
    log.flag('name', key, 'CONFLICT', `${key} now names volume id ${meta.id}, not ${knownId}`);
  }
  return knownId ?? meta.id;
}

/**
 * The id of a volume whose name object is damaged, when its bytes still show an id whose own meta
 * object reads well and carries this name (so verify can go on and list everything else).
 */
async function idFromDamagedName(store: ObjectStore, name: string, body: Buffer): Promise<string | undefined> {
  const m = /"id":"([A-Za-z0-9_-]{1,64})"/.exec(body.toString('latin1'));
  if (!m) return undefined;
  try {
    const meta = decodeMeta(await store.get(keys.meta(m[1]!)), keys.meta(m[1]!), m[1]!);
    return meta.name === name ? meta.id : undefined;
  } catch {
    return undefined;
  }
}

/**
 * With `data`: each pack's trailer index must list every chunk referenced in it, and every chunk
 * is fetched (one read per run of up to DATA_BATCH_BYTES) and verified by the ChunkStore; a run
 * that fails is read again chunk by chunk, to name each bad one.
 */
async function verifyData(
  store: ObjectStore,
  prefix: string,
  packs: [string, ChunkRef[]][],
  log: Findings,
  limit: ReturnType<typeof pLimit>,
): Promise<void> {
  const { report, problem, flag } = log;
  const chunks = new ChunkStore({ store, packPrefix: prefix, cache: null, memoryBytes: 0 });
  const runs: ChunkRef[][] = [];
  await Promise.all(
    packs.map(([pack, refs]) =>
      limit(async () => {
        const key = prefix + pack;
        try {
          const trailer = await readPackTrailer(store, key);
          const index = new Map(trailer.entries.map((e, i) => [e.offset, i]));
          const unlisted = refs.filter((r) => {
            const e = trailer.entries[index.get(r.offset) ?? -1];
            return !e || e.hash !== r.hash || e.length !== r.length;
          });
          if (unlisted.length) {
            const eg = `${unlisted[0]!.hash} at ${unlisted[0]!.offset}`;
            flag('pack', key, 'CORRUPT', `the pack's index lacks ${unlisted.length} chunk(s) referenced (${eg})`);
          }
          // Outboards (pack v2) are checked against the chunk names: a damaged one only costs partial reads.
          const badOutboards = trailer.entries.filter((e, i) => {
            const ob = trailer.outboards[i]!;
            return ob.length > 0 && !verifyOutboard(ob, e.hash, e.length, trailer.blockBytes);
          });
          if (badOutboards.length) {
            const eg = `${badOutboards[0]!.hash} at ${badOutboards[0]!.offset}`;
            flag('pack', key, 'CORRUPT', `${badOutboards.length} chunk outboard(s) in the pack's trailer do not match their chunk (${eg})`);
          }
        } catch (err) {
          if (!isDamage(err)) throw err;
          problem('pack', key, err);
        }
      }),
    ),
  );
  for (const [, refs] of packs) {
    let run: ChunkRef[] = [];
    let bytes = 0;
    for (const r of refs) {
      if (run.length && bytes + r.length > DATA_BATCH_BYTES) {
        runs.push(run);
        run = [];
        bytes = 0;
      }
      run.push(r);
      bytes += r.length;
    }
    if (run.length) runs.push(run);
  }
  const readOne = async (refs: ChunkRef[]): Promise<void> => {
    const n = refs.reduce((s, r) => s + r.length, 0);
    await chunks.read(refs, 0, n);
    report.checked.chunks += refs.length;
    report.checked.chunkBytes += n;
  };
  await Promise.all(
    runs.map((run) =>
      limit(async () => {
        try {
          await readOne(run);
        } catch {
          for (const r of run) {
            try {
              await readOne([r]);
            } catch (err) {
              if (!isCairnError(err) || err.code === 'UNAVAILABLE' || err.code === 'IO') throw err;
              flag('chunk', prefix + r.pack, err.code, `chunk at ${r.offset}+${r.length}: ${messageOf(err)}`);
            }
          }
        }
      }),
    ),
  );
}
