/**
 * The Ceph RGW test machinery itself: scripts/ceph.sh `down` signals only the daemons it started
 * (a pid file naming another process is left alone) and is safe to call twice; the `ceph` backend
 * removes its bucket and every object in it on stop. The store contract on RGW is in contract.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { makeBackends } from '../helpers/backends.js';
import { cephScript, cephWanted, parseCephEnv } from '../helpers/ceph.js';
import { parseS3Url } from '../../src/store/s3url.js';

const run = promisify(execFile);

describe('scripts/ceph.sh', () => {
  it('down leaves a process it did not start alone, and is safe to call twice', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-ceph-down-'));
    const other = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      await fs.mkdir(path.join(dir, 'run'));
      // Stale pid files: one names a live process that is not this cluster's daemon, one a dead pid.
      await fs.writeFile(path.join(dir, 'run', 'osd.pid'), `${other.pid}\n`);
      await fs.writeFile(path.join(dir, 'run', 'mon.pid'), '999999999\n');
      await run('bash', [cephScript(), 'down', dir]);
      await run('bash', [cephScript(), 'down', dir]);
      assert.equal(other.exitCode, null);
      assert.doesNotThrow(() => process.kill(other.pid!, 0));
      assert.deepEqual(await fs.readdir(path.join(dir, 'run')), []);
    } finally {
      other.kill('SIGKILL');
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('down on a directory that does not exist does nothing and succeeds', async () => {
    await run('bash', [cephScript(), 'down', path.join(os.tmpdir(), `cairn-ceph-none-${process.pid}`)]);
  });

  it('parses the NAME=value lines up/env print', () => {
    const text = 'ceph.sh: noise\nCAIRN_CEPH_ENDPOINT=http://127.0.0.1:1234\nAWS_REGION=us-east-1\n';
    assert.deepEqual(parseCephEnv(text), {
      CAIRN_CEPH_ENDPOINT: 'http://127.0.0.1:1234',
      AWS_REGION: 'us-east-1',
    });
  });
});

const noCeph = cephWanted() ? false : 'Ceph RGW is not installed (CAIRN_CEPH=1 installs it)';
describe('the ceph backend', { skip: noCeph }, () => {
  it('stop() removes its bucket with every object in it', { timeout: 300_000 }, async () => {
    const ceph = makeBackends().find((b) => b.name === 'ceph')!;
    await ceph.start();
    let loc;
    try {
      const store = await ceph.open();
      loc = parseS3Url(store.url);
      await store.put('a/b', Buffer.from('x'));
      await store.put('c', Buffer.from('y'));
      await store.close();
    } finally {
      await ceph.stop();
    }
    // The cluster may be gone too now (this process was its last user): ask a fresh one if need be.
    const again = makeBackends().find((b) => b.name === 'ceph')!;
    await again.start();
    try {
      const endpoint = parseS3Url(again.url()).endpoint!;
      const client = new S3Client({ endpoint, forcePathStyle: true, region: process.env.AWS_REGION ?? 'us-east-1' });
      try {
        const gone = (err: { $metadata?: { httpStatusCode?: number } }): boolean => {
          assert.equal(err.$metadata?.httpStatusCode, 404);
          return true;
        };
        await assert.rejects(client.send(new HeadBucketCommand({ Bucket: loc.bucket })), gone);
      } finally {
        client.destroy();
      }
    } finally {
      await again.stop();
    }
  });
});
