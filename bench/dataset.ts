/**
 * The benchmark's data: one big file and many small files of random bytes (nothing any layer
 * could deduplicate or compress), written to local disk, uploaded once into a Cairn volume
 * (`vol.batchUpload`) and once as plain objects under a separate prefix of the same bucket
 * (for raw GetObject, s3fs and rclone), plus the credential/config files those peers need.
 * The same bytes also go into a Cairn volume on the embedded file store (`file://` under the
 * work directory), so Cairn runs side by side on both stores.
 *
 * The check of every file (bench/verify.ts: size, SHA-256 of sampled ranges) is recorded from the
 * local copy once it is written; every reader verifies what it reads against it.
 *
 * Invariant: every system under test reads exactly the same bytes; every S3 reader reads them
 * from the same object store (Ceph RGW or s3rver).
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pLimit from 'p-limit';
import { MiB } from './harness.js';
import { fileCheck, type FileCheck } from './verify.js';

export interface DatasetSpec {
  bigBytes: number;
  smallCount: number;
  smallBytes: number;
}

export interface Dataset extends DatasetSpec {
  /** Local directory holding big.bin and small/… */
  localDir: string;
  bigRel: string;
  smallRels: string[];
  /** What each file holds, by relative path (bigRel and every smallRels entry). */
  checks: Record<string, FileCheck>;
  /** Cairn volume name and store URL (the run's S3 store). */
  volume: string;
  storeUrl: string;
  /** The same volume name on the embedded file store (`file:///…`, under the work directory). */
  fileStoreUrl: string;
  /** Plain-object copy: bucket, prefix (no slashes at the ends) and endpoint. */
  bucket: string;
  peerPrefix: string;
  endpoint: string;
  passwdFile: string;
  rcloneConfig: string;
  /** Seconds each upload took (batchUpload; plain PUTs), for the record. */
  cairnUploadSec: number;
  peerUploadSec: number;
  /** Seconds batchUpload took into the file store. */
  cairnFileUploadSec: number;
}

/** Writes `bytes` of random data to `file` in 16 MiB blocks (each block distinct). */
export async function writeRandomFile(file: string, bytes: number): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const fh = await fsp.open(file, 'w');
  try {
    for (let off = 0; off < bytes; off += 16 * MiB) await fh.write(randomBytes(Math.min(16 * MiB, bytes - off)));
  } finally {
    await fh.close();
  }
}

/** Uploads a local file as one PutObject whose body streams from disk (S3's single-PUT limit is 5 GiB). */
async function putStreamed(s3: { endpoint: string; bucket: string }, key: string, file: string): Promise<void> {
  const { S3Client, PutObjectCommand } = await import('@aws-sdk/client-s3');
  const client = new S3Client({
    endpoint: s3.endpoint,
    forcePathStyle: true,
    region: process.env.AWS_REGION ?? 'us-east-1',
    requestChecksumCalculation: 'WHEN_REQUIRED',
  });
  try {
    const { size } = await fsp.stat(file);
    await client.send(
      new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: createReadStream(file, { highWaterMark: 4 * MiB }), ContentLength: size }),
    );
  } finally {
    client.destroy();
  }
}

/** Relative paths of `count` small files, in `dir` directly or spread over directories of 500. */
export function smallNames(count: number, dir = 'small', flat = false): string[] {
  return Array.from({ length: count }, (_, i) =>
    flat
      ? `${dir}/f${String(i).padStart(6, '0')}.bin`
      : `${dir}/d${String(Math.floor(i / 500)).padStart(3, '0')}/f${String(i).padStart(6, '0')}.bin`,
  );
}

/** Writes `count` random files of `size` bytes under root/rels. */
export async function writeSmallFiles(root: string, rels: string[], size: number): Promise<void> {
  const limit = pLimit(32);
  const dirs = new Set(rels.map((r) => path.dirname(path.join(root, r))));
  for (const d of dirs) await fsp.mkdir(d, { recursive: true });
  await Promise.all(rels.map((r) => limit(() => fsp.writeFile(path.join(root, r), randomBytes(size)))));
}

/**
 * Generates the files, uploads them both ways and writes the peers' config files.
 * Call with CAIRN_HOME and the S3RVER credentials already in the environment.
 */
export async function prepareDataset(
  spec: DatasetSpec,
  work: string,
  s3: { endpoint: string; bucket: string },
  log: (msg: string) => void,
): Promise<Dataset> {
  const localDir = path.join(work, 'local');
  await fsp.mkdir(localDir, { recursive: true });
  const bigRel = 'big/big.bin';
  // Flat: s3rver's delimiter listing returns only the first common prefix of a level, which
  // would hide sibling directories from rclone. Peers mount plain/big and plain/small directly.
  const smallRels = smallNames(spec.smallCount, 'small', true);
  log(`generating ${spec.bigBytes / MiB} MiB + ${spec.smallCount} x ${spec.smallBytes / 1024} KiB of random data`);
  await writeRandomFile(path.join(localDir, bigRel), spec.bigBytes);
  await writeSmallFiles(localDir, smallRels, spec.smallBytes);
  const checks: Record<string, FileCheck> = {};
  const checkLimit = pLimit(16);
  const record = async (r: string): Promise<void> => {
    checks[r] = await fileCheck(path.join(localDir, r));
  };
  await Promise.all([bigRel, ...smallRels].map((r) => checkLimit(() => record(r))));

  const { Volume } = await import('../src/index.js');
  const { openStore } = await import('../src/store/index.js');
  const volume = 'bench';
  const storeUrl = `s3://${s3.bucket}/cairn?endpoint=${s3.endpoint}&path_style=true`;
  /** Uploads the local copy into the volume on `url`; returns the seconds it took. */
  const upload = async (url: string): Promise<number> => {
    const t0 = performance.now();
    const vol = await Volume.fromName(volume, { store: url, createIfMissing: true });
    try {
      await vol.batchUpload({ force: true }, (b) => {
        b.putFile(path.join(localDir, bigRel), `/${bigRel}`);
        b.putDirectory(path.join(localDir, 'small'), '/small');
      });
    } finally {
      await vol.close();
    }
    return (performance.now() - t0) / 1000;
  };
  log('uploading to the Cairn volume (batchUpload)');
  const cairnUploadSec = await upload(storeUrl);
  const fileStoreDir = path.join(work, 'filestore');
  await fsp.mkdir(fileStoreDir, { recursive: true });
  const fileStoreUrl = pathToFileURL(fileStoreDir).href;
  log(`uploading the same bytes to a Cairn volume on the file store (${fileStoreUrl})`);
  const cairnFileUploadSec = await upload(fileStoreUrl);

  log('uploading the same bytes as plain objects (for GetObject, s3fs, rclone)');
  const peerPrefix = 'plain';
  const t = performance.now();
  const store = await openStore(`s3://${s3.bucket}/${peerPrefix}?endpoint=${s3.endpoint}&path_style=true`);
  try {
    // One streamed PUT: a multipart upload of 2 GiB costs s3rver a second full copy to assemble.
    await putStreamed(s3, `${peerPrefix}/${bigRel}`, path.join(localDir, bigRel));
    const limit = pLimit(16);
    await Promise.all(smallRels.map((r) => limit(async () => store.put(r, await fsp.readFile(path.join(localDir, r))))));
  } finally {
    await store.close();
  }
  const peerUploadSec = (performance.now() - t) / 1000;

  const passwdFile = path.join(work, 's3fs-passwd');
  await fsp.writeFile(passwdFile, 'S3RVER:S3RVER\n', { mode: 0o600 });
  const rcloneConfig = path.join(work, 'rclone.conf');
  await fsp.writeFile(
    rcloneConfig,
    [
      '[bench]',
      'type = s3',
      'provider = Other',
      'access_key_id = S3RVER',
      'secret_access_key = S3RVER',
      `endpoint = ${s3.endpoint}`,
      'force_path_style = true',
      'region = us-east-1',
      '',
    ].join('\n'),
  );
  return {
    ...spec,
    localDir,
    bigRel,
    smallRels,
    checks,
    volume,
    storeUrl,
    fileStoreUrl,
    cairnFileUploadSec,
    bucket: s3.bucket,
    peerPrefix,
    endpoint: s3.endpoint,
    passwdFile,
    rcloneConfig,
    cairnUploadSec,
    peerUploadSec,
  };
}
