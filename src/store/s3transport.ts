/**
 * The S3 transport under S3Store: the SDK client (one attempt per request, connect and idle
 * timeouts from `timeout_ms`), which failures are transient, the retry backoff, and reading a
 * response body into one buffer (whole, or cut as a network fault — never short data).
 */
import { finished, type Readable } from 'node:stream';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { CairnError } from '../errors.js';
import { type S3Location, parseTimeoutMs, TIMEOUT_MS_RANGE } from './s3url.js';

/** Attempts per request, the first included (a silent endpoint runs out of `timeout_ms` first). */
export const MAX_ATTEMPTS = 10;
/** Attempts of the first request at open: a mistyped endpoint should fail in about a second. */
export const OPEN_ATTEMPTS = 3;
/** Backoff before retry n (1-based): a random delay in [d/2, d], d = min(CAP, BASE · 2^(n-1)). */
export const BACKOFF_BASE_MS = 50;
export const BACKOFF_CAP_MS = 2_000;
/** Default bound on the time a call waits on an endpoint that does not answer. */
export const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * The bound on waiting for a silent endpoint: the URL's `timeout_ms`, else $CAIRN_S3_TIMEOUT_MS,
 * else 30 s. A bad environment value is INVALID_ARGUMENT.
 * @example s3TimeoutMs(parseS3Url('s3://b/p?timeout_ms=5000')) // 5000
 */
export function s3TimeoutMs(loc: { timeoutMs?: number }): number {
  if (loc.timeoutMs !== undefined) return loc.timeoutMs;
  const env = process.env.CAIRN_S3_TIMEOUT_MS;
  if (env === undefined || env === '') return DEFAULT_TIMEOUT_MS;
  const ms = parseTimeoutMs(env);
  if (ms === undefined) {
    throw new CairnError('INVALID_ARGUMENT', `CAIRN_S3_TIMEOUT_MS=${JSON.stringify(env)} is not a timeout`, {
      hint:
        `set it to milliseconds from ${TIMEOUT_MS_RANGE.min} to ${TIMEOUT_MS_RANGE.max}, ` + `or unset it (default ${DEFAULT_TIMEOUT_MS})`,
    });
  }
  return ms;
}

/**
 * The per-attempt limits derived from the bound T: an attempt fails after T/6 without a byte
 * (connecting: at most 3 s), so that about five silent attempts fit in T.
 */
export function attemptLimits(timeoutMs: number): { idleMs: number; connectMs: number; boundMs: number } {
  const idleMs = Math.max(50, Math.floor(timeoutMs / 6));
  // The SDK arms idle timers of 6 s or more only 3 s into a request.
  return { idleMs, connectMs: Math.min(3_000, idleMs), boundMs: idleMs + (idleMs >= 6_000 ? 3_000 : 0) };
}

export function backoffMs(attempt: number): number {
  const d = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (attempt - 1));
  return d / 2 + Math.random() * (d / 2);
}

export interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  Code?: string;
}

export const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'EPIPE',
  'TimeoutError',
  'RequestTimeout',
]);
/** Network failures worth another attempt (ENOTFOUND is not: a wrong host name stays wrong). */
const RETRY_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'EPIPE',
  'ECONNABORTED',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
  'RequestTimeout',
]);
/** S3 error names that mean "slow down / try again". */
export const THROTTLE_NAMES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'RequestThrottled',
  'TooManyRequestsException',
  'ServiceUnavailable',
  'InternalError',
  'RequestTimeout',
  'RequestTimeTooSkewed',
]);

/**
 * Whether a failed attempt is worth another: `timeout` (nothing heard for the idle limit), `fault`
 * (a transient error: 5xx, 429, throttling, a reset or refused connection, a cut body), or not.
 */
export function transientKind(err: unknown): 'timeout' | 'fault' | undefined {
  if (err instanceof CairnError) return err.code === 'UNAVAILABLE' ? 'fault' : undefined;
  const e = (err ?? {}) as SdkError & { cause?: { code?: string } };
  const name = e.name ?? e.Code ?? '';
  const code = e.code ?? e.cause?.code ?? '';
  const status = e.$metadata?.httpStatusCode;
  if (name === 'TimeoutError' || code === 'ETIMEDOUT') return 'timeout';
  if (status !== undefined && (status >= 500 || status === 429)) return 'fault';
  if (THROTTLE_NAMES.has(name) || RETRY_CODES.has(code) || RETRY_CODES.has(name)) return 'fault';
  // Node's own words for a connection that ended mid-response.
  const cut = /socket hang up|aborted|premature close|ECONNRESET|EPIPE/i.test(e.message ?? '');
  if (cut && (status === undefined || status < 300)) return 'fault';
  return undefined;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A response body in one buffer, at most `max` bytes. With the length known (Content-Length), the
 * pieces are copied straight into a buffer of that size: no list of pieces, no second copy
 * (`transformToByteArray` makes both), which cold reads of 4 MiB ranges pay for in CPU and GC.
 * A body that does not match its Content-Length is UNAVAILABLE (a dropped or garbled transfer).
 * `onProgress(out, n)` is called after each piece: the first n bytes of `out` are final.
 */
export async function readBody(
  body: AsyncIterable<Uint8Array>,
  contentLength: number | undefined,
  max = Infinity,
  onProgress?: (body: Buffer, received: number) => void,
): Promise<Buffer> {
  if (contentLength === undefined || !Number.isSafeInteger(contentLength) || contentLength < 0) {
    const pieces: Buffer[] = [];
    for await (const piece of body) pieces.push(Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength));
    const all = Buffer.concat(pieces);
    return all.length > max ? all.subarray(0, max) : all;
  }
  const out = Buffer.allocUnsafe(Math.min(contentLength, max));
  let n = 0;
  const bad = (what: string): CairnError =>
    new CairnError('UNAVAILABLE', `response body ${what} (Content-Length ${contentLength})`, {
      hint: 'the transfer was cut or garbled; retry',
    });
  const take = (piece: Uint8Array): void => {
    if (n + piece.byteLength > contentLength) throw bad(`longer than announced`);
    if (n < out.length) out.set(piece.subarray(0, out.length - n), n);
    n += piece.byteLength;
    onProgress?.(out, Math.min(n, out.length));
  };
  if (isReadable(body)) await eachPiece(body, take);
  else for await (const piece of body) take(piece);
  if (n !== contentLength) throw bad(`ended after ${n} bytes`);
  return out;
}

function isReadable(body: unknown): body is Readable {
  const b = body as Partial<Readable> | null;
  return typeof b?.on === 'function' && typeof b.destroy === 'function' && typeof b.pipe === 'function';
}

/**
 * Calls `take` on each piece of a Node stream through 'data' events: the async iterator costs a
 * promise and a result object per 64 KiB piece (measured on Ceph RGW, 512 MiB in 64 MiB ranges:
 * 1.13–1.32 vs 1.22–1.84 user CPU s/GiB). Rejects with the stream's error (a cut connection is
 * "aborted" or "premature close", retried by the store) or what `take` threw (the stream is then destroyed).
 */
function eachPiece(body: Readable, take: (piece: Uint8Array) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let failed = false;
    body.on('data', (piece: Uint8Array) => {
      if (failed) return;
      try {
        take(piece);
      } catch (err) {
        failed = true;
        body.destroy();
        reject(err);
      }
    });
    finished(body, (err) => {
      if (failed) return;
      if (err) reject(err);
      else resolve();
    });
  });
}

/**
 * Builds the SDK client: one attempt per request (S3Store.retrying retries, body reads included),
 * connect and idle timeouts derived from `timeout_ms`, region fallback.
 */
export async function makeClient(loc: S3Location, timeoutMs: number): Promise<S3Client> {
  const { idleMs, connectMs } = attemptLimits(timeoutMs);
  const config: S3ClientConfig = {
    maxAttempts: 1,
    requestHandler: {
      connectionTimeout: connectMs,
      // No byte sent or received for this long (headers or body): the attempt fails and is retried.
      socketTimeout: idleMs,
      requestTimeout: 300_000,
      throwOnRequestTimeout: true,
      httpAgent: { keepAlive: true, maxSockets: 64 },
      httpsAgent: { keepAlive: true, maxSockets: 64 },
    },
    // Integrity is checked above the store (BLAKE3 per chunk); extra checksums only where S3 requires them,
    // which also keeps S3-compatible servers that lack the newer checksum headers working.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // Resolve each command's middleware stack once, not per request (~1 CPU ms a request here);
    // the stack is complete before the first command (S3Store.open adds its one middleware first).
    cacheMiddleware: true,
  };
  if (loc.region) config.region = loc.region;
  if (loc.endpoint) config.endpoint = loc.endpoint;
  if (loc.pathStyle !== undefined) config.forcePathStyle = loc.pathStyle;
  // Node 20 is supported here; the SDK's documented switch (aws-sdk-js-v3#7983) silences only its notice about it.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  let client = new S3Client(config);
  if (!loc.region) {
    try {
      await client.config.region();
    } catch {
      client.destroy();
      client = new S3Client({ ...config, region: 'us-east-1' });
    }
  }
  return client;
}
