/**
 * The store layout of a volume (docs/FORMAT.md): every key Cairn reads or writes, the id and seq
 * shapes in them, and the format version this code writes.
 *
 * Invariant: seqs are zero-padded to 12 digits in keys, so byte order is numeric order.
 */

/** The format version this code writes; it reads this one and every older one (1, 2, 3). */
export const FORMAT_VERSION = 4;
const SEQ_DIGITS = 12;

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
  /** Forwarding objects of compacted packs (chunks/forward.ts, whose forwardKey agrees). */
  forwardPrefix: (id: string) => `volumes/${id}/forward/`,
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
