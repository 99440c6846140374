/**
 * The bench's object store: which one a run uses when `--store` is not given (Ceph RGW when it is
 * installed, s3rver otherwise), and how results and the page name it. Results written before the
 * store was recorded ran on s3rver.
 */
import fs from 'node:fs';

/** The object stores `npm run bench` can serve from (bench/s3serve.ts). */
export type StoreKind = 's3rver' | 'ceph';

/** Where Debian's radosgw package puts the gateway: its presence means Ceph RGW is installed. */
export const RADOSGW = '/usr/bin/radosgw';

/**
 * The default store: Ceph RGW when radosgw is installed, s3rver otherwise; `CAIRN_CEPH=0` forces
 * s3rver and `CAIRN_CEPH=1` Ceph (installed by scripts/ceph.sh if missing), as for the tests
 * (test/helpers/ceph.ts).
 *
 * @example
 *   const store = args.store ?? defaultStore(process.env); // 'ceph' on a machine with radosgw
 */
export function defaultStore(env: NodeJS.ProcessEnv, radosgw = RADOSGW): StoreKind {
  if (env.CAIRN_CEPH === '0') return 's3rver';
  if (env.CAIRN_CEPH === '1') return 'ceph';
  return fs.existsSync(radosgw) ? 'ceph' : 's3rver';
}

/** The store a results object was measured on. */
export function storeOf(res: { store?: StoreKind }): StoreKind {
  return res.store ?? 's3rver';
}

/** Short display names, as in "Cairn on s3rver". */
export const STORE_NAMES: Record<StoreKind, string> = { s3rver: 's3rver', ceph: 'Ceph RGW' };

/** What each store is, in one phrase (the page's machine and method sections). */
export const STORE_DESCRIPTIONS: Record<StoreKind, string> = {
  s3rver: 's3rver (local, one Node.js process) behind the conditional-write proxy, on loopback',
  ceph: 'Ceph RGW 16 (single node: one mon, one bluestore OSD on a sparse file, radosgw beast), on loopback',
};
