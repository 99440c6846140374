/**
 * The benchmark's object store, in a process of its own so that serving S3 never competes with the
 * benchmark driver's event loop. Prints one JSON line `{"endpoint","bucket","url","store"}` when
 * serving; stops when stdin closes or on SIGTERM/SIGINT.
 *
 * - `--store s3rver` (default): s3rver behind the test harness's conditional-write proxy
 *   (test/helpers/s3server.ts); stopping removes its data directory.
 * - `--store ceph` (or CAIRN_BENCH_STORE=ceph): a real Ceph RGW of its own, bootstrapped by
 *   scripts/ceph.sh in a fresh directory (~20 s; Ceph is installed if missing), never shared with a
 *   test run; stopping purges it (daemons stopped, directory removed) in a detached process, so the
 *   purge completes even if this process is killed.
 *
 * Usage: node dist/bench/s3serve.js [--store s3rver|ceph]
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { S3Client, CreateBucketCommand } from '@aws-sdk/client-s3';
import { startS3 } from '../test/helpers/s3server.js';
import { cephScript, parseCephEnv } from '../test/helpers/ceph.js';

const run = promisify(execFile);
const BUCKET = 'cairn-bench';

interface Served {
  endpoint: string;
  bucket: string;
  url: string;
  stop(): Promise<void>;
}

async function serveS3rver(): Promise<Served> {
  const s3 = await startS3({ bucket: BUCKET });
  return { endpoint: s3.endpoint, bucket: s3.bucket, url: s3.url, stop: () => s3.stop() };
}

/** An RGW already running (CAIRN_BENCH_CEPH_ENDPOINT, keys S3RVER/S3RVER): a fresh bucket of the run's, left there (the cluster's owner purges it). */
async function serveRunningCeph(endpoint: string): Promise<Served> {
  const bucket = `${BUCKET}-${Date.now().toString(36)}`;
  const client = new S3Client({ endpoint, forcePathStyle: true, region: process.env.AWS_REGION ?? 'us-east-1' });
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  const stop = async (): Promise<void> => client.destroy();
  return { endpoint, bucket, url: `s3://${bucket}/bench?endpoint=${endpoint}&path_style=true`, stop };
}

async function serveCeph(): Promise<Served> {
  const running = process.env.CAIRN_BENCH_CEPH_ENDPOINT;
  if (running) return serveRunningCeph(running);
  const script = cephScript();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-ceph-bench-'));
  const purge = (): Promise<void> =>
    new Promise((resolve) => {
      const child = spawn('bash', [script, 'purge', dir], { detached: true, stdio: 'ignore' });
      child.on('exit', () => resolve());
      child.on('error', () => resolve());
    });
  let out: string;
  try {
    ({ stdout: out } = await run('bash', [script, 'up', dir], { timeout: 600_000, maxBuffer: 1 << 24 }));
  } catch (err) {
    await purge();
    throw new Error(`cannot start Ceph RGW: ${(err as { stderr?: string }).stderr ?? String(err)}`, { cause: err });
  }
  const vars = parseCephEnv(out);
  const endpoint = vars.CAIRN_CEPH_ENDPOINT;
  // The bench sets these keys for every process it starts (the s3rver harness's; ceph.sh uses the same).
  if (vars.AWS_ACCESS_KEY_ID !== 'S3RVER' || vars.AWS_SECRET_ACCESS_KEY !== 'S3RVER') {
    await purge();
    throw new Error('scripts/ceph.sh made a user with other keys than S3RVER/S3RVER (CAIRN_CEPH_ACCESS_KEY set?)');
  }
  const client = new S3Client({ endpoint, forcePathStyle: true, region: process.env.AWS_REGION ?? 'us-east-1' });
  try {
    await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
  } catch (err) {
    await purge();
    throw err;
  } finally {
    client.destroy();
  }
  return {
    endpoint,
    bucket: BUCKET,
    url: `s3://${BUCKET}/bench?endpoint=${endpoint}&path_style=true`,
    stop: purge,
  };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const i = argv.indexOf('--store');
  const store = (i >= 0 ? argv[i + 1] : undefined) ?? process.env.CAIRN_BENCH_STORE ?? 's3rver';
  if (store !== 's3rver' && store !== 'ceph') throw new Error(`unknown --store ${store} (s3rver or ceph)`);
  process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
  process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';
  process.env.AWS_REGION ??= 'us-east-1';
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const served = store === 'ceph' ? await serveCeph() : await serveS3rver();
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void served.stop().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('end', stop);
  process.stdin.on('close', stop);
  process.stdin.resume();
  const { endpoint, bucket, url } = served;
  process.stdout.write(`${JSON.stringify({ endpoint, bucket, url, store })}\n`);
}

main().catch((err) => {
  process.stderr.write(`s3serve: ${String(err?.stack ?? err)}\n`);
  process.exit(1);
});
