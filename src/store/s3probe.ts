/**
 * Whether an S3 server really honours `If-None-Match: *` on PutObject, measured when a store opens
 * (never assumed: a server that ignores it would let two creators of one key both "win").
 */
import { randomBytes } from 'node:crypto';
import { CairnError } from '../errors.js';
import type { ObjectStore } from './types.js';

/**
 * Writes a random probe key twice with ifAbsent: if the second write succeeds, the server ignores
 * If-None-Match (false); a server that rejects the header outright has none either.
 *
 * @example store.probed = await probeConditionalWrites(store);
 */
export async function probeConditionalWrites(store: ObjectStore): Promise<boolean> {
  const key = `_cairn/probe/${Date.now()}-${randomBytes(8).toString('hex')}`;
  // Two different bodies: a refused retry of the second put must not pass for our own landed write.
  const body = (n: number): Buffer => Buffer.from(`cairn conditional-write probe ${n}\n`);
  try {
    try {
      await store.put(key, body(1), { ifAbsent: true });
    } catch (err) {
      const status = (err as CairnError).context?.status;
      // A server that rejects the header outright (501 NotImplemented, 400) has no conditional writes.
      if (err instanceof CairnError && err.code === 'IO' && (status === 501 || status === 400)) return false;
      throw err;
    }
    try {
      await store.put(key, body(2), { ifAbsent: true });
      return false;
    } catch (err) {
      if (err instanceof CairnError && err.code === 'ALREADY_EXISTS') return true;
      throw err;
    }
  } finally {
    await store.delete(key).catch(() => undefined);
  }
}
