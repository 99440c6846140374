/**
 * Every ObjectStore backend a storage test should run against, behind one small interface, so
 * that each test body is written once: `file` (a temp directory) and `s3` (s3rver behind the
 * conditional-write proxy of ./s3server.ts).
 *
 * Usage:
 *   for (const b of backends) describe(b.name, () => {
 *     before(() => b.start()); after(() => b.stop());
 *     it('…', async () => { const store = await b.open(); … });
 *   });
 *
 * Invariants: `url()` is fresh on every call (a new temp dir, or a new prefix in the bucket), so
 * tests never see each other's keys; `stop()` removes everything `start()` created.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { randomBytes } from 'node:crypto';
import { openStore } from '../../src/store/open.js';
import type { ObjectStore } from '../../src/store/types.js';
import { startS3, type S3Server } from './s3server.js';

export interface Backend {
  /** `file` or `s3`. */
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

/** Fresh instances of every backend (for tests that need their own servers). */
export function makeBackends(): Backend[] {
  return [new FileBackend(), new S3Backend()];
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
