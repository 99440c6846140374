/**
 * The S3 ObjectStore (`s3://BUCKET/PREFIX?endpoint=URL&region=REGION&path_style=true&timeout_ms=N`),
 * for AWS S3 and S3-compatible servers (MinIO, R2, Ceph RGW, …).
 *
 * Invariants:
 * - Every key is stored as `${prefix}/${key}` (just `key` when the prefix is empty).
 * - `put(…, { ifAbsent })` sends `If-None-Match: *` on one PutObject, whatever the size (never a
 *   multipart upload: Ceph RGW 16 ignores the header on CompleteMultipartUpload); 412 and 409
 *   ConditionalRequestConflict become ALREADY_EXISTS — except after a retry, when the object holds
 *   exactly the bytes we sent: then an earlier attempt landed and the put succeeded.
 * - `conditionalWrites` is what a probe at open time measured, never assumed: a server that
 *   ignores `If-None-Match` is reported as `false`.
 * - Every request is idempotent and retried here (not by the SDK), body read included: transient
 *   faults (5xx, 429/SlowDown, resets, refused connections, cut bodies, timeouts) up to
 *   MAX_ATTEMPTS attempts with exponential backoff and jitter. A call waits on an endpoint that
 *   does not answer at most `timeout_ms` (default 30 s, CAIRN_S3_TIMEOUT_MS), then fails naming it.
 * - A body is returned only whole: a transfer cut short is a network fault (retried), never CORRUPT.
 * - Every failure is a CairnError: NOT_FOUND, ALREADY_EXISTS, PERMISSION_DENIED, UNAVAILABLE, IO.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import pLimit from 'p-limit';
import { CairnError } from '../errors.js';
import { checkByteRange } from '../util/limits.js';
import { checkKey, checkPrefix } from './keys.js';
import type { ByteRange, GetOptions, ListOptions, ObjectInfo, ObjectStore, PutOptions } from './types.js';
import { type S3Location, parseS3Url } from './s3url.js';
import { attemptLimits, backoffMs, makeClient, MAX_ATTEMPTS, OPEN_ATTEMPTS, readBody } from './s3transport.js';
import { s3TimeoutMs, sleep, transientKind, type SdkError } from './s3transport.js';
import { mapS3Error } from './s3errors.js';
import { traceGet, tracing } from './trace.js';
import { LeanReads, type SignedGet } from './s3get.js';
import { probeConditionalWrites } from './s3probe.js';

export { S3_URL_FORMS, parseS3Url, type S3Location } from './s3url.js';
export { MAX_ATTEMPTS, OPEN_ATTEMPTS, BACKOFF_BASE_MS, BACKOFF_CAP_MS, DEFAULT_TIMEOUT_MS } from './s3transport.js';
export { attemptLimits, readBody, s3TimeoutMs } from './s3transport.js';

/** Bodies larger than this are uploaded in parts. */
export const MULTIPART_THRESHOLD = 64 * 1024 * 1024;
/** Size of each multipart part (S3 allows 5 MiB … 5 GiB, at most 10,000 parts). */
export const PART_SIZE = 16 * 1024 * 1024;
/** Parts uploaded at once. */
export const PART_CONCURRENCY = 4;
/** The largest single PutObject S3 accepts (5 GiB): the cap for `ifAbsent` bodies, which never go up in parts. */
export const MAX_SINGLE_PUT = 5 * 1024 * 1024 * 1024;

/** Throws INVALID_ARGUMENT unless the range is two non-negative safe integers (../util/limits.ts). */
function checkRange(key: string, range: ByteRange): void {
  checkByteRange(range.offset, range.length, { what: `for ${key}`, max: Number.MAX_SAFE_INTEGER, context: { key } });
}

export class S3Store implements ObjectStore {
  readonly url: string;
  private probed = false;
  private closed = false;
  private readonly endpointName: string;
  private readonly timeoutMs: number;
  /** Retries made so far (attempts beyond the first), for tests and diagnostics. */
  retries = 0;
  /** GETs and HEADs without the SDK's middleware (./s3get.ts), once open captured where they go. */
  private lean?: LeanReads;

  private constructor(
    url: string,
    private readonly client: S3Client,
    private readonly loc: S3Location,
  ) {
    this.url = url;
    this.endpointName =
      loc.endpoint ??
      process.env.AWS_ENDPOINT_URL_S3 ??
      process.env.AWS_ENDPOINT_URL ??
      `AWS S3 (region ${loc.region ?? 'from the environment'})`;
    this.timeoutMs = s3TimeoutMs(loc);
  }

  /** How GETs and HEADs are sent: `lean` (./s3get.ts) or through the SDK client (`CAIRN_S3_LEAN=0`). */
  get readPath(): 'lean' | 'sdk' {
    return this.lean ? 'lean' : 'sdk';
  }

  /** A signed range GET of `key` for the addon's fetch threads (src/chunks/nativefetch.ts); undefined on the SDK path. */
  signedGet(key: string, range: ByteRange): Promise<SignedGet> | undefined {
    this.checkOpen();
    return this.lean?.signedGet(this.fullKey(key), range);
  }

  /** As probed at open: whether the server really refuses `If-None-Match: *` on an existing key. */
  get conditionalWrites(): boolean {
    return this.probed;
  }

  /**
   * Opens a bucket (and prefix): checks that it exists and probes conditional writes.
   * Credentials, and endpoint/region unless given in the URL, come from the standard AWS chain
   * (AWS_ENDPOINT_URL_S3, AWS_REGION, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profiles); the
   * region defaults to us-east-1.
   * @example const store = await S3Store.open('s3://data/cairn?endpoint=http://127.0.0.1:9000&path_style=true');
   */
  static async open(url: string): Promise<S3Store> {
    const loc = parseS3Url(url);
    const client = await makeClient(loc, s3TimeoutMs(loc));
    const store = new S3Store(url, client, loc);
    const lean = LeanReads.capture(client, attemptLimits(store.timeoutMs));
    try {
      await store.headBucket();
      store.lean = lean?.target ? lean : undefined;
      store.probed = await probeConditionalWrites(store);
    } catch (err) {
      client.destroy();
      lean?.close();
      throw err;
    }
    return store;
  }

  private fullKey(key: string): string {
    return this.loc.prefix ? `${this.loc.prefix}/${key}` : key;
  }

  private checkOpen(): void {
    if (this.closed) throw new CairnError('CLOSED', `S3 store ${this.url} is closed`, { store: this.url, hint: 'open it again' });
  }

  private async headBucket(): Promise<void> {
    try {
      const head = () => this.client.send(new HeadBucketCommand({ Bucket: this.loc.bucket }));
      await this.retrying('cannot open bucket', undefined, head, OPEN_ATTEMPTS);
    } catch (err) {
      const e = err as SdkError;
      if (e.$metadata?.httpStatusCode === 404 || e.name === 'NotFound' || e.name === 'NoSuchBucket') {
        throw new CairnError(
          'NOT_FOUND',
          `bucket ${this.loc.bucket} does not exist at ${this.endpointName}`,
          {
            store: this.url,
            bucket: this.loc.bucket,
            hint: `create the bucket first (e.g. aws s3 mb s3://${this.loc.bucket}), or check the endpoint`,
          },
          { cause: err },
        );
      }
      throw this.mapError(err, 'cannot open bucket');
    }
  }

  /** Maps an SDK/network failure to a CairnError (./s3errors.ts). */
  private mapError(err: unknown, message: string, key?: string, suffix = ''): CairnError {
    return mapS3Error(err, { store: this.url, bucket: this.loc.bucket, endpoint: this.endpointName }, message, key, suffix);
  }

  /**
   * Runs one request (`attempt`, which reads the body too) until it succeeds, fails for good, or
   * runs out of attempts; a silent endpoint stops it once `timeout_ms` would be exceeded. What
   * is not transient is thrown as it came (the caller maps it); giving up is UNAVAILABLE.
   */
  private async retrying<T>(what: string, key: string | undefined, attempt: () => Promise<T>, maxAttempts = MAX_ATTEMPTS): Promise<T> {
    const start = Date.now();
    const { boundMs, idleMs } = attemptLimits(this.timeoutMs);
    for (let n = 1; ; n++) {
      try {
        return await attempt();
      } catch (err) {
        const kind = transientKind(err);
        if (kind === undefined) throw err;
        const delay = backoffMs(n);
        const elapsed = Date.now() - start;
        const outOfTime = kind === 'timeout' && elapsed + delay + boundMs > this.timeoutMs;
        if (n >= maxAttempts || outOfTime || this.closed) {
          if (kind === 'timeout') {
            const message = `${what}: ${this.endpointName} did not answer ` + `(nothing for ${idleMs} ms; ${n} attempts in ${elapsed} ms)`;
            throw new CairnError(
              'UNAVAILABLE',
              message,
              {
                store: this.url,
                key,
                attempts: n,
                hint:
                  `check that ${this.endpointName} is up and reachable; a call waits at most ` +
                  `timeout_ms=${this.timeoutMs} (set it in the store URL, or CAIRN_S3_TIMEOUT_MS)`,
              },
              { cause: err },
            );
          }
          throw this.mapError(err, what, key, ` (gave up after ${n} attempts in ${elapsed} ms)`);
        }
        this.retries++;
        await sleep(delay);
      }
    }
  }

  /** Whether `key` holds exactly `body`: an ifAbsent put refused after a retry may be our own landed attempt. */
  private async holds(key: string, body: Uint8Array): Promise<boolean> {
    const info = await this.head(key);
    if (!info || info.size !== body.byteLength) return false;
    return (await this.get(key)).equals(body);
  }

  /**
   * Reads a whole object or a byte range (`Range: bytes=a-b`); `onProgress` sees the body as it arrives.
   * @example const bytes = await store.get('volumes/v1/packs/abc', { offset: 1024, length: 4096 });
   */
  async get(key: string, range?: ByteRange, options: GetOptions = {}): Promise<Buffer> {
    checkKey(key);
    if (range) checkRange(key, range);
    this.checkOpen();
    if (range && range.length <= 0) {
      if (!(await this.head(key))) throw new CairnError('NOT_FOUND', `no object ${key}`, { key, store: this.url });
      return Buffer.alloc(0);
    }
    const trace = tracing ? traceGet(key) : undefined;
    try {
      return await this.retrying(`cannot get ${key}`, key, async () => {
        if (this.lean) {
          const body = await this.lean.get(this.fullKey(key), range, options.onProgress, trace?.firstByte);
          trace?.end(body.length);
          return body;
        }
        const out = await this.client.send(
          new GetObjectCommand({
            Bucket: this.loc.bucket,
            Key: this.fullKey(key),
            Range: range ? `bytes=${range.offset}-${range.offset + range.length - 1}` : undefined,
          }),
        );
        // Some servers ignore the end of a range (s3rver does for `bytes=0-0`): never return more than asked.
        trace?.firstByte();
        const body = await readBody(out.Body as AsyncIterable<Uint8Array>, out.ContentLength, range?.length, options.onProgress);
        trace?.end(body.length);
        return body;
      });
    } catch (err) {
      trace?.end(-1);
      const e = err as SdkError;
      if (range && (e.$metadata?.httpStatusCode === 416 || e.name === 'InvalidRange')) return Buffer.alloc(0);
      if (e.name === 'NoSuchKey' || (e.$metadata?.httpStatusCode === 404 && e.name !== 'NoSuchBucket')) {
        throw new CairnError('NOT_FOUND', `no object ${key}`, { key, store: this.url }, { cause: err });
      }
      throw this.mapError(err, `cannot get ${key}`, key);
    }
  }

  /**
   * Writes an object; with `ifAbsent`, only if the key does not exist (else ALREADY_EXISTS).
   * Bodies over 64 MiB go up in 16 MiB parts, 4 at a time, except `ifAbsent` ones: those are one
   * PutObject (at most 5 GiB), since some servers (Ceph RGW 16) ignore If-None-Match on
   * CompleteMultipartUpload and would let a second creator overwrite the first. Retried like every
   * request; an `ifAbsent` put refused after a retry succeeds when the object holds exactly `body`.
   * @example await store.put('volumes/v1/log/00000002', record, { ifAbsent: true });
   */
  async put(key: string, body: Uint8Array, options: PutOptions = {}): Promise<void> {
    checkKey(key);
    this.checkOpen();
    if (options.ifAbsent && body.byteLength > MAX_SINGLE_PUT) {
      const why = `${body.byteLength} bytes is over 5 GiB`;
      throw new CairnError('INVALID_ARGUMENT', `cannot create ${key} if absent: ${why}`, {
        key,
        store: this.url,
        hint: 'create-if-absent objects go up in one PutObject; keep them under 5 GiB',
      });
    }
    if (body.byteLength > MULTIPART_THRESHOLD && !options.ifAbsent) return this.putMultipart(key, body);
    let attempts = 0;
    try {
      await this.retrying(`cannot put ${key}`, key, () => {
        attempts++;
        return this.client.send(
          new PutObjectCommand({
            Bucket: this.loc.bucket,
            Key: this.fullKey(key),
            Body: body,
            ContentLength: body.byteLength,
            IfNoneMatch: options.ifAbsent ? '*' : undefined,
          }),
        );
      });
    } catch (err) {
      const mapped = this.putError(err, key);
      if (mapped.code === 'ALREADY_EXISTS' && attempts > 1 && (await this.holds(key, body))) return;
      throw mapped;
    }
  }

  private putError(err: unknown, key: string): CairnError {
    const e = err as SdkError;
    const status = e.$metadata?.httpStatusCode;
    if (status === 412 || e.name === 'PreconditionFailed' || (status === 409 && e.name === 'ConditionalRequestConflict')) {
      return new CairnError('ALREADY_EXISTS', `object ${key} already exists`, { key, store: this.url }, { cause: err });
    }
    return this.mapError(err, `cannot put ${key}`, key);
  }

  /** A plain (never `ifAbsent`: see `put`) upload in parts. */
  private async putMultipart(key: string, body: Uint8Array): Promise<void> {
    const Key = this.fullKey(key);
    const Bucket = this.loc.bucket;
    let uploadId: string;
    try {
      // A retried create may leave an unused upload behind; bucket lifecycle rules expire those.
      const created = await this.retrying(`cannot start upload of ${key}`, key, () =>
        this.client.send(new CreateMultipartUploadCommand({ Bucket, Key })),
      );
      uploadId = created.UploadId!;
    } catch (err) {
      throw this.mapError(err, `cannot start upload of ${key}`, key);
    }
    let completions = 0;
    try {
      const limit = pLimit(PART_CONCURRENCY);
      const count = Math.ceil(body.byteLength / PART_SIZE);
      const parts = await Promise.all(
        Array.from({ length: count }, (_, i) =>
          limit(async () => {
            const part = body.subarray(i * PART_SIZE, Math.min(body.byteLength, (i + 1) * PART_SIZE));
            const out = await this.retrying(`cannot upload part ${i + 1} of ${key}`, key, () =>
              this.client.send(
                new UploadPartCommand({
                  Bucket,
                  Key,
                  UploadId: uploadId,
                  PartNumber: i + 1,
                  Body: part,
                  ContentLength: part.byteLength,
                }),
              ),
            );
            return { PartNumber: i + 1, ETag: out.ETag };
          }),
        ),
      );
      await this.retrying(`cannot complete upload of ${key}`, key, () => {
        completions++;
        return this.client.send(
          new CompleteMultipartUploadCommand({
            Bucket,
            Key,
            UploadId: uploadId,
            MultipartUpload: { Parts: parts },
          }),
        );
      });
    } catch (err) {
      // A completion whose reply was lost: the retry finds the upload gone (NoSuchUpload).
      if (completions > 1 && (await this.holds(key, body).catch(() => false))) return;
      const abort = () => this.client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId: uploadId }));
      await this.retrying(`cannot abort upload of ${key}`, key, abort, OPEN_ATTEMPTS).catch(() => undefined);
      throw this.putError(err, key);
    }
  }

  /**
   * Size of an object, or undefined when it does not exist.
   * @example const info = await store.head('names/data');
   */
  async head(key: string): Promise<ObjectInfo | undefined> {
    checkKey(key);
    this.checkOpen();
    try {
      const out = await this.retrying(`cannot head ${key}`, key, async () => {
        if (this.lean) return this.lean.head(this.fullKey(key));
        const o = await this.client.send(new HeadObjectCommand({ Bucket: this.loc.bucket, Key: this.fullKey(key) }));
        return { size: o.ContentLength ?? 0, lastModified: o.LastModified?.getTime() };
      });
      return { key, ...out };
    } catch (err) {
      const e = err as SdkError;
      if (e.name === 'NotFound' || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404) return undefined;
      throw this.mapError(err, `cannot head ${key}`, key);
    }
  }

  /**
   * Keys starting with `prefix` in byte order (ListObjectsV2, paged), after `startAfter`, at most `limit`.
   * @example const records = await store.list('volumes/v1/log/', { startAfter: 'volumes/v1/log/00000007' });
   */
  async list(prefix: string, options: ListOptions = {}): Promise<ObjectInfo[]> {
    checkPrefix(prefix);
    this.checkOpen();
    const limit = options.limit ?? Infinity;
    const out: ObjectInfo[] = [];
    const strip = this.loc.prefix ? this.loc.prefix.length + 1 : 0;
    let token: string | undefined;
    while (out.length < limit) {
      let page;
      try {
        const request = new ListObjectsV2Command({
          Bucket: this.loc.bucket,
          Prefix: this.loc.prefix ? `${this.loc.prefix}/${prefix}` : prefix,
          StartAfter: token === undefined && options.startAfter !== undefined ? this.fullKey(options.startAfter) : undefined,
          ContinuationToken: token,
          MaxKeys: Math.min(1000, limit - out.length),
        });
        page = await this.retrying(`cannot list ${prefix || '/'}`, undefined, () => this.client.send(request));
      } catch (err) {
        throw this.mapError(err, `cannot list ${prefix || '/'}`);
      }
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined) continue;
        out.push({ key: o.Key.slice(strip), size: o.Size ?? 0, lastModified: o.LastModified?.getTime() });
      }
      if (!page.IsTruncated || !page.NextContinuationToken) break;
      token = page.NextContinuationToken;
    }
    return out.length > limit ? out.slice(0, limit) : out;
  }

  /**
   * Removes a key; a missing key is not an error.
   * @example await store.delete('volumes/v1/packs/abc');
   */
  async delete(key: string): Promise<void> {
    checkKey(key);
    this.checkOpen();
    try {
      await this.retrying(`cannot delete ${key}`, key, () =>
        this.client.send(new DeleteObjectCommand({ Bucket: this.loc.bucket, Key: this.fullKey(key) })),
      );
    } catch (err) {
      const e = err as SdkError;
      if (e.name === 'NoSuchKey' || (e.$metadata?.httpStatusCode === 404 && e.name !== 'NoSuchBucket')) return;
      throw this.mapError(err, `cannot delete ${key}`, key);
    }
  }

  /** Releases the HTTP connections; later calls fail with CLOSED. */
  async close(): Promise<void> {
    this.closed = true;
    this.client.destroy();
    this.lean?.close();
  }
}
