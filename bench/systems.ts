/**
 * The benchmark's vocabulary: the systems measured (Cairn on the run's S3 store and on the file store, and the
 * references; `floor`: local disk through libfuse's C passthrough, ./fusefloor.ts), the read workloads and the cache states. Shared by the suites and the report.
 */
export type System = 'cairn' | 'cairn-file' | 'local' | 'floor' | 's3get' | 's3fs' | 'rclone';

/** Systems in table order: Cairn's, then the references. */
export const SYSTEMS: readonly System[] = ['cairn', 'cairn-file', 'local', 'floor', 's3get', 's3fs', 'rclone'];

/** Whether a system is a Cairn mount (on either store). */
export const isCairn = (s: System): s is 'cairn' | 'cairn-file' => s === 'cairn' || s === 'cairn-file';
export type Workload = 'big' | 'small';
export type Cache = 'cold' | 'warm';

/** Display names of the systems, in tables, the chart and the page. */
export const NAMES: Record<System, string> = {
  cairn: 'Cairn',
  'cairn-file': 'Cairn (file store)',
  local: 'local disk',
  floor: 'FUSE floor',
  s3get: 'raw GetObject',
  s3fs: 's3fs',
  rclone: 'rclone mount',
};

/** A system's place in table order. */
export function systemOrder(s: System): number {
  return SYSTEMS.indexOf(s);
}
