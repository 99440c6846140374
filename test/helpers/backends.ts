/**
 * Every ObjectStore backend a storage test should run against, behind one small interface, so
 * that each test body is written once: `file` (a temp directory), `s3` (s3rver behind the
 * conditional-write proxy of ./s3server.ts) and `ceph` (a real Ceph RGW, ./ceph.ts: one cluster
 * for the whole run, a fresh bucket per test file; present when `cephWanted()`).
 *
 * Usage:
 *   for (const b of backends) describe(b.name, () => {
 *     before(() => b.start()); after(() => b.stop());
 *     it('…', async () => { const store = await b.open(); … });
 *   });
 *
 * Invariants: `url()` is fresh on every call (a new temp dir, or a new prefix in the bucket), so
 * tests never see each other's keys; `stop()` removes everything `start()` created (for `ceph`:
 * the bucket and every object in it).
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { randomBytes } from 'node:crypto';
import { after, before } from 'node:test';
import { openStore } from '../../src/store/open.js';
import type { ObjectStore } from '../../src/store/types.js';
import { S3Client, CreateBucketCommand, DeleteBucketCommand, DeleteObjectsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { startS3, type S3Server } from './s3server.js';
import { acquireCeph, cephWanted, type CephHandle } from './ceph.js';

export interface Backend {
  /** `file`, `s3` or `ceph`. */
  readonly name: string;
  /** Starts servers / creates the temp root. Idempotent. */
  start(): Promise<void>;
  /** Stops servers and removes all data. */
  stop(): Promise<void>;
  /** A store URL nobody has used yet. */
  url(): string;
  /** Opens a store at a fresh `url()`. */
  open(): Promise<ObjectStore>;
}

class FileBackend implements Backend {
  readonly name = 'file';
  private root: string | undefined;

  async start(): Promise<void> {
    this.root ??= await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-file-'));
  }

  async stop(): Promise<void> {
    if (this.root) await fs.rm(this.root, { recursive: true, force: true });
    this.root = undefined;
  }

  url(): string {
    if (!this.root) throw new Error('file backend not started: call start() first');
    return pathToFileURL(path.join(this.root, `s-${randomBytes(6).toString('hex')}`)).href;
  }

  open(): Promise<ObjectStore> {
    return openStore(this.url());
  }
}

class S3Backend implements Backend {
  readonly name = 's3';
  private server: S3Server | undefined;

  async start(): Promise<void> {
    this.server ??= await startS3();
  }

  async stop(): Promise<void> {
    await this.server?.stop();
    this.server = undefined;
  }

  url(): string {
    if (!this.server) throw new Error('s3 backend not started: call start() first');
    return this.server.freshUrl();
  }

  open(): Promise<ObjectStore> {
    return openStore(this.url());
  }
}

class CephBackend implements Backend {
  readonly name = 'ceph';
  private state: { ceph: CephHandle; bucket: string } | undefined;
  private starting: Promise<void> | undefined;

  start(): Promise<void> {
    this.starting ??= this.doStart().catch((err: unknown) => {
      this.starting = undefined;
      throw err;
    });
    return this.starting;
  }

  private async doStart(): Promise<void> {
    const ceph = await acquireCeph();
    const bucket = `cairn-t-${process.pid}-${randomBytes(4).toString('hex')}`;
    const client = this.client(ceph.endpoint);
    try {
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
    } catch (err) {
      await ceph.release();
      throw err;
    } finally {
      client.destroy();
    }
    this.state = { ceph, bucket };
  }

  private client(endpoint: string): S3Client {
    // Checksums only where required, as src/store/s3.ts: RGW 16 answers aws-chunked uploads with 411.
    return new S3Client({
      endpoint,
      forcePathStyle: true,
      region: process.env.AWS_REGION ?? 'us-east-1',
      requestChecksumCalculation: 'WHEN_REQUIRED',
    });
  }

  async stop(): Promise<void> {
    await this.starting?.catch(() => undefined);
    const state = this.state;
    this.state = undefined;
    this.starting = undefined;
    if (!state) return;
    const client = this.client(state.ceph.endpoint);
    try {
      const Bucket = state.bucket;
      for (;;) {
        const page = await client.send(new ListObjectsV2Command({ Bucket, MaxKeys: 1000 }));
        const keys = (page.Contents ?? []).flatMap((o) => (o.Key === undefined ? [] : [{ Key: o.Key }]));
        if (keys.length === 0) break;
        await client.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: keys, Quiet: true } }));
      }
      await client.send(new DeleteBucketCommand({ Bucket }));
    } finally {
      client.destroy();
      await state.ceph.release();
    }
  }

  url(): string {
    if (!this.state) throw new Error('ceph backend not started: call start() first');
    const { bucket, ceph } = this.state;
    return `s3://${bucket}/t-${randomBytes(6).toString('hex')}?endpoint=${ceph.endpoint}&path_style=true`;
  }

  open(): Promise<ObjectStore> {
    return openStore(this.url());
  }
}

/** Fresh instances of every backend (for tests that need their own servers). */
export function makeBackends(): Backend[] {
  return [new FileBackend(), new S3Backend(), ...(cephWanted() ? [new CephBackend()] : [])];
}

/** The shared backends. */
export const backends: Backend[] = makeBackends();

/**
 * Calls `fn` once per backend; `fn` typically wraps a `describe`.
 * @example forEachBackend((b) => describe(b.name, () => { before(() => b.start()); after(() => b.stop()); … }));
 */
export function forEachBackend(fn: (backend: Backend) => void): void {
  for (const b of backends) fn(b);
}

/**
 * For one `describe` on backend `b`: starts it and opens one store at a fresh URL before the
 * suite's tests (handed to `set`), closes the store and stops the backend after them.
 *
 * @example
 *   let store: ObjectStore;
 *   useBackendStore(b, (s) => (store = s));
 */
export function useBackendStore(b: Backend, set: (store: ObjectStore) => void): void {
  let store: ObjectStore | undefined;
  before(async () => {
    await b.start();
    store = await b.open();
    set(store);
  });
  after(async () => {
    await store?.close();
    await b.stop();
  });
}
