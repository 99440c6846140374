/**
 * A local S3 server for tests and benchmarks: s3rver on 127.0.0.1 (port 0, temp directory, one
 * bucket) behind a small HTTP proxy that adds what s3rver lacks — `If-None-Match: *` on PUT and
 * CompleteMultipartUpload, answered with a real 412 PreconditionFailed when the key exists.
 *
 * Invariants: conditional requests are serialised per key inside the proxy, so concurrent racers
 * see exactly one winner; deletes wait for the writes in flight and writes for the deletes (see
 * SharedLock); every other request is streamed through untouched. s3rver itself is patched so
 * that a PUT is visible whole or not at all (./s3rver-atomic.ts). `conditional: false`
 * turns the check off, modelling a server that silently ignores If-None-Match. `stop()` closes
 * both servers and removes the temp directory.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import S3rver from 's3rver';
import { makeAtomic } from './s3rver-atomic.js';

export interface S3Server {
  /** `s3://BUCKET/PREFIX?endpoint=…&path_style=true` with a fresh prefix. */
  url: string;
  /** `http://127.0.0.1:PORT` (the proxy). */
  endpoint: string;
  bucket: string;
  /** A URL with another fresh prefix on the same server and bucket. */
  freshUrl(): string;
  stop(): Promise<void>;
}

export interface S3ServerOptions {
  /** Honour `If-None-Match: *` (default true). */
  conditional?: boolean;
  bucket?: string;
}

const PRECONDITION_FAILED = (key: string): string =>
  '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PreconditionFailed</Code>' +
  '<Message>At least one of the pre-conditions you specified did not hold</Message>' +
  `<Condition>If-None-Match</Condition><Resource>${key.replace(/[<>&]/g, '')}</Resource>` +
  `<RequestId>${randomBytes(8).toString('hex')}</RequestId></Error>`;

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const OBJECT_SUFFIX = '._S3rver_object';

/** Every object under `bucketDir` whose key starts with `prefix`, from s3rver's on-disk layout. */
async function scanObjects(bucketDir: string, prefix: string): Promise<{ key: string; raw: Buffer; size: number; mtime: Date }[]> {
  const base = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
  const start = path.join(bucketDir, base);
  let names: string[];
  try {
    names = await fs.readdir(start, { recursive: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
    throw err;
  }
  const out = [];
  for (const name of names) {
    if (!name.endsWith(OBJECT_SUFFIX)) continue;
    const key = (base ? `${base}/` : '') + name.slice(0, -OBJECT_SUFFIX.length).split(path.sep).join('/');
    if (!key.startsWith(prefix)) continue;
    try {
      const st = await fs.stat(path.join(start, name));
      out.push({ key, raw: Buffer.from(key), size: st.size, mtime: st.mtime });
    } catch {
      // deleted while listing
    }
  }
  return out;
}

/** Per-key mutex: run `fn` after every earlier holder of `key` has finished. */
class KeyLock {
  private readonly tails = new Map<string, Promise<void>>();
  async run(key: string, fn: () => Promise<void>): Promise<void> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    await prev;
    try {
      await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

/**
 * A fair shared/exclusive lock. s3rver's DELETE prunes the object's parent directories once empty,
 * racing with a concurrent PUT into them (mkdir, then open: ENOENT, an unhandled stream error that
 * kills s3rver). So writes share this lock and deletes take it alone.
 */
class SharedLock {
  private shared = 0;
  private exclusive = false;
  private readonly queue: { exclusive: boolean; grant: () => void }[] = [];

  async run(exclusive: boolean, fn: () => Promise<void>): Promise<void> {
    await new Promise<void>((grant) => {
      this.queue.push({ exclusive, grant });
      this.pump();
    });
    try {
      await fn();
    } finally {
      if (exclusive) this.exclusive = false;
      else this.shared--;
      this.pump();
    }
  }

  /** Grants waiters in arrival order while they are compatible with the holders. */
  private pump(): void {
    while (this.queue.length > 0 && !this.exclusive) {
      const head = this.queue[0];
      if (head.exclusive && this.shared > 0) return;
      this.queue.shift();
      if (head.exclusive) this.exclusive = true;
      else this.shared++;
      head.grant();
    }
  }
}

function listen(server: http.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

/** Sets the test credentials s3rver accepts (it knows only S3RVER/S3RVER) and a region. */
export function useS3rverCredentials(): void {
  process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
  process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';
  delete process.env.AWS_SESSION_TOKEN;
  if (!process.env.AWS_REGION) process.env.AWS_REGION = 'us-east-1';
  // Tests run on the machine's Node 20; the SDK's notice about future Node versions is noise here.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
}

/**
 * Starts s3rver plus the conditional-write proxy.
 * @example const s3 = await startS3(); const store = await openStore(s3.url); … await s3.stop();
 */
export async function startS3(opts: S3ServerOptions = {}): Promise<S3Server> {
  const conditional = opts.conditional ?? true;
  const bucket = opts.bucket ?? 'cairn-test';
  useS3rverCredentials();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-s3rver-'));
  const s3rver = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: dir,
    vhostBuckets: false,
    configureBuckets: [{ name: bucket }],
  });
  makeAtomic(s3rver.store);
  const { port: upstreamPort } = await s3rver.run();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const locks = new KeyLock();
  const writes = new SharedLock();

  /** Forwards a request to s3rver; resolves false when the client went away before the answer. */
  const forward = (req: http.IncomingMessage, res: http.ServerResponse): Promise<boolean> =>
    new Promise((resolve) => {
      // A client killed while its request waited for a lock: its 'close' came already, and its
      // body never will (forwarding it would hang s3rver's side, and every lock, for ever).
      if (req.socket.destroyed || res.destroyed) {
        req.resume();
        resolve(false);
        return;
      }
      const headers = { ...req.headers };
      delete headers.expect; // answered by this proxy already; never signed
      const up = http.request({ host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers, agent }, (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, upRes.headers);
        upRes.pipe(res);
        upRes.on('end', () => resolve(true));
        upRes.on('error', () => resolve(false));
      });
      // A client that goes away mid-request must not hold the locks above for ever.
      res.on('close', () => {
        if (!res.writableFinished) up.destroy();
        resolve(res.writableFinished);
      });
      up.on('error', (err) => {
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(String(err));
        resolve(false);
      });
      req.pipe(up);
    });

  const exists = (urlPath: string): Promise<boolean> =>
    new Promise((resolve, reject) => {
      const r = http.request({ host: '127.0.0.1', port: upstreamPort, method: 'HEAD', path: urlPath, agent }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      r.on('error', reject);
      r.end();
    });

  // s3rver walks its directories in readdir order, so ListObjectsV2 pages are neither sorted nor
  // correctly truncated: fetch the whole listing for the prefix and page it in byte order here.
  const listSorted = async (u: URL, res: http.ServerResponse): Promise<void> => {
    const prefix = u.searchParams.get('prefix') ?? '';
    const token = u.searchParams.get('continuation-token');
    const after = token !== null ? Buffer.from(token, 'base64url').toString() : (u.searchParams.get('start-after') ?? '');
    const maxKeys = Math.min(1000, Number(u.searchParams.get('max-keys') ?? 1000));
    // s3rver caps pages at 1000 and cannot page reliably (nor mint V2 tokens: it uses DES, which
    // OpenSSL 3 lacks), so read its on-disk layout (BUCKET/<key>._S3rver_object) directly.
    const items = await scanObjects(path.join(dir, bucket), prefix);
    const afterBytes = Buffer.from(after);
    const xmlOf = (i: { key: string; size: number; mtime: Date }): string =>
      `<Contents><Key>${escapeXml(i.key)}</Key><LastModified>${i.mtime.toISOString()}</LastModified>` +
      `<Size>${i.size}</Size><StorageClass>STANDARD</StorageClass></Contents>`;
    const sorted = items.filter((i) => Buffer.compare(i.raw, afterBytes) > 0).sort((a, b) => Buffer.compare(a.raw, b.raw));
    const page = sorted.slice(0, Math.max(0, maxKeys));
    const truncated = sorted.length > page.length;
    const next = truncated ? Buffer.from(page[page.length - 1].key).toString('base64url') : undefined;
    const body =
      '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
      `<Name>${bucket}</Name><Prefix>${escapeXml(prefix)}</Prefix><KeyCount>${page.length}</KeyCount>` +
      `<MaxKeys>${maxKeys}</MaxKeys><IsTruncated>${truncated}</IsTruncated>` +
      (token !== null ? `<ContinuationToken>${token}</ContinuationToken>` : '') +
      (next ? `<NextContinuationToken>${next}</NextContinuationToken>` : '') +
      page.map(xmlOf).join('') +
      '</ListBucketResult>';
    res.writeHead(200, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) }).end(body);
  };

  const proxy = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://proxy');
    if (
      req.method === 'GET' &&
      u.pathname.replace(/\/$/, '') === `/${bucket}` &&
      u.searchParams.get('list-type') === '2' &&
      !u.searchParams.has('delimiter')
    ) {
      req.resume();
      listSorted(u, res).catch((err) => {
        if (!res.headersSent) res.writeHead(502);
        res.end(String(err));
      });
      return;
    }
    if (req.method !== 'PUT' && req.method !== 'POST' && req.method !== 'DELETE') {
      void afterPuts(u.pathname).then(() => forward(req, res));
      return;
    }
    const isDelete = req.method === 'DELETE' || (req.method === 'POST' && u.searchParams.has('delete'));
    void writes.run(isDelete, () => write(req, res, u));
  });

  // A PUT (./s3rver-atomic.ts) renames the object into place, then writes its metadata (ETag,
  // content type): a GET or HEAD in between would pair the new bytes with the old ETag. So GETs and
  // HEADs of a key wait for the PUTs of that key in flight.
  const putting = new Map<string, Set<Promise<void>>>();
  const afterPuts = async (key: string): Promise<void> => {
    const inFlight = putting.get(key);
    if (inFlight) await Promise.allSettled([...inFlight]);
  };
  const whilePutting = (key: string, fn: () => Promise<void>): Promise<void> => {
    const done = fn();
    const set = putting.get(key) ?? new Set<Promise<void>>();
    putting.set(key, set.add(done));
    return done.finally(() => {
      set.delete(done);
      if (set.size === 0 && putting.get(key) === set) putting.delete(key);
    });
  };

  /** A PUT, POST or DELETE, under `writes`; conditional PUTs are checked here (see the header). */
  const write = (req: http.IncomingMessage, res: http.ServerResponse, u: URL): Promise<void> => {
    const isPut = req.method === 'PUT' && !u.searchParams.has('partNumber') && !req.headers['x-amz-copy-source'];
    const isComplete = req.method === 'POST' && u.searchParams.has('uploadId');
    if (isPut || isComplete) return whilePutting(u.pathname, () => conditionalWrite(req, res, u, isPut || isComplete));
    return forward(req, res).then(() => undefined);
  };
  const conditionalWrite = (req: http.IncomingMessage, res: http.ServerResponse, u: URL, creates: boolean): Promise<void> => {
    if (!conditional || req.headers['if-none-match'] !== '*' || !creates) return forward(req, res).then(() => undefined);
    return locks.run(u.pathname, async () => {
      let present: boolean;
      try {
        present = await exists(u.pathname);
      } catch (err) {
        req.resume();
        res.writeHead(502).end(String(err));
        return;
      }
      if (present) {
        req.resume();
        const body = PRECONDITION_FAILED(u.pathname);
        res.writeHead(412, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
        res.end(body);
        return;
      }
      await forward(req, res);
    });
  };
  const port = await listen(proxy);
  const endpoint = `http://127.0.0.1:${port}`;
  const freshUrl = (): string => `s3://${bucket}/t-${randomBytes(6).toString('hex')}?endpoint=${endpoint}&path_style=true`;

  return {
    url: freshUrl(),
    endpoint,
    bucket,
    freshUrl,
    async stop() {
      await new Promise<void>((resolve) => {
        proxy.close(() => resolve());
        proxy.closeAllConnections();
      });
      agent.destroy();
      await s3rver.close();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

/** An HTTPS endpoint in front of a test server (./startS3's `endpoint`). */
export interface TlsFront {
  /** `https://127.0.0.1:PORT`. */
  endpoint: string;
  close(): Promise<void>;
}

/**
 * Serves HTTPS on 127.0.0.1 (port 0) with the given PEM key and certificate, forwarding every
 * request to `upstream` (`http://HOST:PORT`) unchanged and streaming the answer back.
 *
 * @example const front = await startTlsFront(s3.endpoint, key, cert); … s3.freshUrl().replace(s3.endpoint, front.endpoint)
 */
export async function startTlsFront(upstream: string, key: Buffer, cert: Buffer): Promise<TlsFront> {
  const up = new URL(upstream);
  const server = https.createServer({ key, cert }, (req, res) => {
    const fwd = http.request({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    fwd.on('error', () => res.destroy());
    req.pipe(fwd);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
