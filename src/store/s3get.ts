/**
 * Lean reads for the S3 store: GetObject and HeadObject signed with SigV4 by the SDK's own signer
 * (`@smithy/signature-v4`) and sent with Node's http(s) on a keep-alive agent, without the SDK
 * client's per-request middleware (serialisation, endpoint rules, checksum and retry layers), which
 * costs ~3–4 ms of CPU per request on a 2-core host: a 4 KiB range GET from Ceph RGW took 3.9–4.0
 * CPU ms through the client, 1.1–1.35 lean; a 128 KiB one 5.4–6.0 vs 1.9–2.3. Cold reads are GETs,
 * so this is every cold read's cost per request.
 *
 * - Where to send: the bucket's base URL exactly as the SDK resolved it for the store's HeadBucket
 *   at open (protocol, host, port, path: virtual-hosted or path style, any endpoint), and the
 *   signing region of that request's Authorization header; captured by a middleware (`capture`).
 *   Keys are escaped as the SDK escapes them. Credentials come from the client's own provider (the
 *   standard chain, refreshed by the SDK).
 * - A failure looks like the SDK's (`name` from the XML error's Code, else from the status;
 *   `$metadata.httpStatusCode`; Node's `code` for network errors; `TimeoutError` when nothing is
 *   heard for the idle limit or a connection is not made in time), so the store's one retry loop
 *   and error table (./s3errors.ts) treat both paths alike.
 * - `CAIRN_S3_LEAN=0` sends every read through the SDK client (as does a store whose HeadBucket
 *   could not be captured).
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { S3Client } from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import type { ByteRange, ObjectInfo } from './types.js';
import { readBody } from './s3transport.js';

/** SHA-256 of an empty body (GET and HEAD send none). */
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
/** Bytes of an error response kept for its Code and Message. */
const ERROR_BODY_MAX = 64 * 1024;

/** A signed GET for another HTTP client (`LeanReads.signedGet`). */
export interface SignedGet {
  url: string;
  /** `name: value` lines, signed (host, range, x-amz-date, authorization, …). */
  headers: string[];
  /** Give up when nothing is heard for this long, or a connection is not made in this long. */
  idleMs: number;
  connectMs: number;
}

/** The bucket's base URL and signing region, as the SDK sent its HeadBucket. */
export interface Base {
  protocol: string;
  hostname: string;
  port?: number;
  host: string;
  path: string;
  region: string;
}

/** A key's path as the SDK writes it: each segment URI-encoded, with !'()* too. */
function escapeKey(key: string): string {
  return key
    .split('/')
    .map((s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`))
    .join('/');
}

/**
 * Where the SDK sent a signed HeadBucket (`request`: its HttpRequest), as the base of the bucket's
 * objects; undefined when it is not a plain SigV4 `s3` request over http(s).
 *
 * @example baseOf({ protocol: 'https:', hostname: 'b.s3.eu-west-1.amazonaws.com', path: '/', headers }) // path ''
 */
export function baseOf(request: unknown): Base | undefined {
  const r = request as { protocol?: string; hostname?: string; port?: number; path?: string; headers?: Record<string, string> };
  const auth = r.headers?.authorization ?? r.headers?.Authorization ?? '';
  const region = /Credential=[^/]+\/\d{8}\/([^/]+)\/s3\/aws4_request/.exec(auth)?.[1];
  if (!r.hostname || !region || (r.protocol !== 'http:' && r.protocol !== 'https:')) return undefined;
  const host = r.headers?.host ?? (r.port ? `${r.hostname}:${r.port}` : r.hostname);
  return { protocol: r.protocol, hostname: r.hostname, port: r.port, host, path: (r.path ?? '/').replace(/\/+$/, ''), region };
}

/** The request path of the object `key` (the full key) under `base`. */
export function keyPath(base: Pick<Base, 'path'>, key: string): string {
  return `${base.path}/${escapeKey(key)}`;
}

/** An error shaped like the SDK's, for the store's retry loop and error table. */
function httpError(status: number, body: string): Error {
  const code = /<Code>([^<]*)<\/Code>/.exec(body)?.[1];
  const message = /<Message>([^<]*)<\/Message>/.exec(body)?.[1];
  const name = code ?? (status === 404 ? 'NotFound' : status === 416 ? 'InvalidRange' : `Http${status}`);
  return Object.assign(new Error(message || `${name} (HTTP ${status})`), { name, Code: code, $metadata: { httpStatusCode: status } });
}

function timeoutError(what: string): Error {
  return Object.assign(new Error(`${what} timed out`), { name: 'TimeoutError' });
}

/**
 * Signed GETs and HEADs of one bucket without the SDK's middleware (see the module doc).
 *
 * @example
 * const lean = LeanReads.capture(client, attemptLimits(timeoutMs)); // before the client's first request
 * await client.send(new HeadBucketCommand({ Bucket }));
 * if (lean.target) body = await lean.get('prefix/key', { offset: 0, length: 4096 });
 */
export class LeanReads {
  private base?: Base;
  private signer?: SignatureV4;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  private readonly httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 64 });

  private constructor(
    private readonly client: S3Client,
    private readonly limits: { idleMs: number; connectMs: number },
  ) {}

  /**
   * Installs the middleware that records where the client sends its HeadBucket (call before the
   * client's first request); undefined when `CAIRN_S3_LEAN=0`.
   */
  static capture(client: S3Client, limits: { idleMs: number; connectMs: number }): LeanReads | undefined {
    if (process.env.CAIRN_S3_LEAN === '0') return undefined;
    const lean = new LeanReads(client, limits);
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (!lean.base && context.commandName === 'HeadBucketCommand') lean.record(args.request);
        return next(args);
      },
      { step: 'deserialize', name: 'cairnLeanCapture' },
    );
    return lean;
  }

  /** Where reads go (the captured HeadBucket's base); undefined until captured (then use the SDK). */
  get target(): Readonly<Base> | undefined {
    return this.base;
  }

  private record(request: unknown): void {
    const base = baseOf(request);
    if (!base) return;
    this.base = base;
    this.signer = new SignatureV4({
      service: 's3',
      region: base.region,
      credentials: this.client.config.credentials,
      sha256: this.client.config.sha256, // the hash the SDK signs with
      uriEscapePath: false,
      applyChecksum: false,
    });
  }

  /**
   * The object `key` (the full key, prefix included), or a range of it, in one buffer; at most
   * `range.length` bytes (some servers ignore a range's end); `onHeaders` is called when the
   * response's headers are in (the SDK path's "first byte"). Rejects like an SDK call.
   */
  async get(
    key: string,
    range?: ByteRange,
    onProgress?: (body: Buffer, received: number) => void,
    onHeaders?: () => void,
  ): Promise<Buffer> {
    const headers: Record<string, string> = {};
    if (range) headers.range = `bytes=${range.offset}-${range.offset + range.length - 1}`;
    const res = await this.send('GET', key, headers);
    onHeaders?.();
    if (range && range.offset > 0 && res.statusCode === 200) {
      res.destroy();
      throw Object.assign(new Error(`the server ignored the Range header of a GET of ${key}`), { name: 'RangeIgnored' });
    }
    return readBody(res, contentLength(res), range?.length, onProgress);
  }

  /** Size and time of `key` (the full key); rejects like an SDK call (404: `NotFound`). */
  async head(key: string): Promise<Omit<ObjectInfo, 'key'>> {
    const res = await this.send('HEAD', key, {});
    res.resume();
    const modified = res.headers['last-modified'] ? Date.parse(res.headers['last-modified']) : NaN;
    return { size: contentLength(res) ?? 0, lastModified: Number.isNaN(modified) ? undefined : modified };
  }

  /**
   * A signed GET of `range` of `key` (the full key) for another HTTP client (the addon's fetch
   * threads, src/chunks/nativefetch.ts): its URL, its headers as `name: value` lines, and the
   * attempt limits this store's reads use.
   */
  async signedGet(key: string, range: ByteRange): Promise<SignedGet> {
    const base = this.base!;
    const signed = await this.sign('GET', key, { range: `bytes=${range.offset}-${range.offset + range.length - 1}` });
    const port = base.port ? `:${base.port}` : '';
    return {
      url: `${base.protocol}//${base.hostname}${port}${signed.path}`,
      headers: Object.entries(signed.headers).map(([k, v]) => `${k}: ${v}`),
      ...this.limits,
    };
  }

  /** Releases the connections. */
  close(): void {
    this.agent.destroy();
    this.httpsAgent.destroy();
  }

  /** Signs one request of `key` (SigV4, the client's credentials). */
  private sign(method: 'GET' | 'HEAD', key: string, extra: Record<string, string>) {
    const base = this.base!;
    return this.signer!.sign({
      method,
      protocol: base.protocol,
      hostname: base.hostname,
      port: base.port,
      path: keyPath(base, key),
      query: {},
      headers: { host: base.host, 'x-amz-content-sha256': EMPTY_SHA256, ...extra },
    });
  }

  /** Signs and sends one request; resolves with a 2xx response (its body unread), rejects with anything else. */
  private async send(method: 'GET' | 'HEAD', key: string, extra: Record<string, string>): Promise<IncomingMessage> {
    const base = this.base!;
    const signed = await this.sign(method, key, extra);
    const lib = base.protocol === 'https:' ? https : http;
    const { idleMs, connectMs } = this.limits;
    return new Promise<IncomingMessage>((resolve, reject) => {
      let response: IncomingMessage | undefined;
      const req = lib.request({
        agent: base.protocol === 'https:' ? this.httpsAgent : this.agent,
        protocol: base.protocol,
        hostname: base.hostname,
        port: base.port,
        method,
        path: signed.path,
        headers: signed.headers,
      });
      const fail = (err: Error): void => {
        response?.destroy(err);
        req.destroy(err);
      };
      req.setTimeout(idleMs, () => fail(timeoutError(`${method} ${key}: nothing heard for ${idleMs} ms`)));
      req.on('socket', (socket) => {
        if (!socket.connecting) return;
        const t = setTimeout(() => fail(timeoutError(`connecting to ${base.host}`)), connectMs);
        t.unref();
        socket.once('connect', () => clearTimeout(t));
        socket.once('close', () => clearTimeout(t));
      });
      req.on('error', reject);
      req.on('response', (res) => {
        response = res;
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) return resolve(res);
        const pieces: Buffer[] = [];
        let n = 0;
        res.on('data', (p: Buffer) => {
          if (n < ERROR_BODY_MAX) pieces.push(p);
          n += p.length;
        });
        res.on('end', () => reject(httpError(status, Buffer.concat(pieces).toString('utf8'))));
        res.on('error', reject);
      });
      req.end();
    });
  }
}

function contentLength(res: IncomingMessage): number | undefined {
  const v = res.headers['content-length'];
  const n = v === undefined ? NaN : Number(v);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}
