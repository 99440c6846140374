/**
 * A fault-injecting HTTP proxy for tests, in front of the S3 server of ./s3server.ts (or any
 * path-style S3 endpoint): every request is either forwarded untouched or fails in one of these
 * modes, drawn from a seeded RNG at per-mode rates, for the requests a rule's filter matches:
 *
 * - `500-before`: 500 InternalError, nothing forwarded (the server never saw the request).
 * - `500-after`:  forwarded (the server acted on it), then the reply is replaced by a 500.
 * - `503`:        503 SlowDown, nothing forwarded.
 * - `reset`:      forwarded, then the connection is reset halfway through the reply's body
 *                 (before any reply when it has no body): the client never learns the outcome.
 * - `truncate`:   forwarded, then half of the body is sent under the full Content-Length and the
 *                 connection is closed (FIN). Only replies with a body of two or more bytes.
 * - `stall`:      the request is read and never answered (the client must time out).
 * - `stall-body`: forwarded, then the headers and half of the body are sent, and nothing more
 *                 (the connection stays open). Only replies with a body of two or more bytes.
 * - `outage(ms)`: every connection, open or new, is reset for that long (connection refused/reset).
 *
 * `once(rule)` fails exactly the next matching request, with an optional hook run between
 * forwarding and failing (e.g. another writer committing while our reply is lost). Counters
 * tell how many requests came, how many of each fault were injected, per method.
 *
 * Invariants: faults are decided per request, before anything is forwarded; a forwarded request
 * reaches the upstream exactly once; `stop()` closes every socket it holds (stalled ones too).
 */
import http from 'node:http';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { before, after } from 'node:test';
import { startS3, type S3Server } from './s3server.js';

export type FaultMode = '500-before' | '500-after' | '503' | 'reset' | 'truncate' | 'stall' | 'stall-body';
export const FAULT_MODES: readonly FaultMode[] = ['500-before', '500-after', '503', 'reset', 'truncate', 'stall', 'stall-body'];

/** What a filter sees of a request. `key` is the object key without the bucket (URL-decoded). */
export interface RequestInfo {
  method: string;
  key: string;
  query: URLSearchParams;
}

export interface FaultRule {
  mode: FaultMode;
  /** Probability per matching request, 0…1 (ignored by `once`). */
  rate: number;
  /** Only these methods (default: all). */
  methods?: string[];
  /** Only keys matching this. */
  key?: RegExp;
  /** Any other condition. */
  match?: (req: RequestInfo) => boolean;
}

export interface OnceRule extends Omit<FaultRule, 'rate'> {
  /** For `500-after` and `reset`: runs after the upstream answered, before the reply fails. */
  hook?: (req: RequestInfo) => Promise<void>;
}

export interface FaultCounters {
  /** Requests received (outage-refused connections not included). */
  requests: number;
  /** Requests forwarded to the upstream. */
  forwarded: number;
  /** Faults injected, by mode (and `outage`: connections reset during an outage). */
  injected: Record<FaultMode | 'outage', number>;
  /** Requests received, by method. */
  byMethod: Record<string, number>;
}

export interface FaultProxy {
  /** `http://127.0.0.1:PORT` of the proxy. */
  endpoint: string;
  /** `s3://BUCKET/PREFIX?endpoint=<proxy>&path_style=true[&extra]`, with a fresh prefix. */
  freshUrl(extra?: string): string;
  /** The rules in force (drawn with one RNG number per request: the rates add up). */
  rules: FaultRule[];
  /** Fails the next request matching `rule` (before any rate-based rule). */
  once(rule: OnceRule): void;
  /** Resets every connection for `ms` from now; resolves when the outage is over. */
  outage(ms: number): Promise<void>;
  readonly counters: FaultCounters;
  resetCounters(): void;
  /** Faults injected in total (outage included). */
  injectedTotal(): number;
  stop(): Promise<void>;
}

export interface FaultProxyOptions {
  /** The upstream endpoint, `http://HOST:PORT` (path-style S3). */
  upstream: string;
  bucket: string;
  /** Seed of the RNG that decides faults (default 1). */
  seed?: number;
  rules?: FaultRule[];
}

/** mulberry32: a small, fast, seeded PRNG (uniform in [0, 1)). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const errorXml = (code: string, message: string): string =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message>` +
  `<RequestId>${randomBytes(8).toString('hex')}</RequestId></Error>`;

function emptyCounters(): FaultCounters {
  return {
    requests: 0,
    forwarded: 0,
    injected: {
      '500-before': 0,
      '500-after': 0,
      '503': 0,
      reset: 0,
      truncate: 0,
      stall: 0,
      'stall-body': 0,
      outage: 0,
    },
    byMethod: {},
  };
}

function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    stream.on('data', (b: Buffer) => parts.push(b));
    stream.on('end', () => resolve(Buffer.concat(parts)));
    stream.on('error', reject);
  });
}

function matches(rule: Omit<FaultRule, 'rate'>, req: RequestInfo): boolean {
  if (rule.methods && !rule.methods.includes(req.method)) return false;
  if (rule.key && !rule.key.test(req.key)) return false;
  return !rule.match || rule.match(req);
}

/**
 * Starts the proxy on 127.0.0.1 (port 0).
 * @example
 * const s3 = await startS3();
 * const rules: FaultRule[] = [{ mode: '500-after', rate: 0.2 }];
 * const fp = await startFaultProxy({ upstream: s3.endpoint, bucket: s3.bucket, rules });
 * const store = await openStore(fp.freshUrl());
 */
export async function startFaultProxy(opts: FaultProxyOptions): Promise<FaultProxy> {
  const upstream = new URL(opts.upstream);
  const rng = seededRandom(opts.seed ?? 1);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const sockets = new Set<net.Socket>();
  const onceRules: OnceRule[] = [];
  let counters = emptyCounters();
  let outageUntil = 0;
  const state = { rules: opts.rules ?? [] };

  const decide = (info: RequestInfo): OnceRule | undefined => {
    const i = onceRules.findIndex((r) => matches(r, info));
    if (i >= 0) return onceRules.splice(i, 1)[0];
    const r = rng();
    let acc = 0;
    for (const rule of state.rules) {
      if (!matches(rule, info)) continue;
      acc += rule.rate;
      if (r < acc) return rule;
    }
    return undefined;
  };

  /** Sends the request upstream; resolves with the whole reply. */
  type Reply = { status: number; message?: string; headers: http.IncomingHttpHeaders; body: Buffer };
  const forward = (req: http.IncomingMessage, body: Buffer): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const headers = { ...req.headers };
      delete headers.expect;
      counters.forwarded++;
      const up = http.request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers, agent },
        (res) => {
          readAll(res).then(
            (b) => resolve({ status: res.statusCode ?? 502, message: res.statusMessage, headers: res.headers, body: b }),
            reject,
          );
        },
      );
      up.on('error', reject);
      up.end(body);
    });

  const fail = (res: http.ServerResponse, status: number, code: string, message: string): void => {
    const xml = errorXml(code, message);
    res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(xml) }).end(xml);
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const u = new URL(req.url ?? '/', 'http://proxy');
    const method = req.method ?? 'GET';
    const key = decodeURIComponent(u.pathname.replace(/^\/[^/]*\/?/, ''));
    const info: RequestInfo = { method, key, query: u.searchParams };
    counters.requests++;
    counters.byMethod[method] = (counters.byMethod[method] ?? 0) + 1;
    const body = await readAll(req);
    const rule = decide(info);
    const mode = rule?.mode;
    if (mode) counters.injected[mode]++;
    if (mode === '500-before') return fail(res, 500, 'InternalError', 'injected: 500 before forwarding');
    if (mode === '503') return fail(res, 503, 'SlowDown', 'injected: please reduce your request rate');
    if (mode === 'stall') return; // never answered; the socket closes when the client gives up (or at stop)
    let reply;
    try {
      reply = await forward(req, body);
    } catch (err) {
      if (!res.headersSent) fail(res, 502, 'BadGateway', String(err));
      return;
    }
    const hook = (rule as OnceRule | undefined)?.hook;
    if (hook && (mode === '500-after' || mode === 'reset')) await hook(info);
    if (mode === '500-after') return fail(res, 500, 'InternalError', 'injected: 500 after forwarding');
    const hasBody = method !== 'HEAD' && reply.body.length >= 2;
    // Not applicable without a body: forwarded as is.
    if ((mode === 'truncate' || mode === 'stall-body') && !hasBody) counters.injected[mode]--;
    res.writeHead(reply.status, reply.message, reply.headers);
    if (mode === 'reset') {
      const socket = res.socket;
      if (hasBody) res.write(reply.body.subarray(0, reply.body.length >> 1));
      // Let the half body reach the socket, then reset it (RST, no FIN).
      setImmediate(() => socket?.resetAndDestroy());
      return;
    }
    if (mode === 'stall-body' && hasBody) {
      res.write(reply.body.subarray(0, reply.body.length >> 1)); // and never the rest
      return;
    }
    if (mode === 'truncate' && hasBody) {
      const socket = res.socket;
      res.write(reply.body.subarray(0, reply.body.length >> 1), () => socket?.end());
      return;
    }
    res.end(method === 'HEAD' ? undefined : reply.body);
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err) => {
      if (!res.headersSent) fail(res, 502, 'BadGateway', String(err));
      else res.destroy();
    });
  });
  server.on('connection', (socket: net.Socket) => {
    if (Date.now() < outageUntil) {
      counters.injected.outage++;
      socket.resetAndDestroy();
      return;
    }
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
  const endpoint = `http://127.0.0.1:${port}`;

  return {
    endpoint,
    freshUrl: (extra?: string) => {
      const prefix = `f-${randomBytes(6).toString('hex')}`;
      return `s3://${opts.bucket}/${prefix}?endpoint=${endpoint}&path_style=true${extra ? `&${extra}` : ''}`;
    },
    get rules() {
      return state.rules;
    },
    set rules(r: FaultRule[]) {
      state.rules = r;
    },
    once: (rule) => void onceRules.push(rule),
    outage: async (ms) => {
      outageUntil = Date.now() + ms;
      for (const s of sockets) s.resetAndDestroy();
      await new Promise((r) => setTimeout(r, ms));
    },
    get counters() {
      return counters;
    },
    resetCounters: () => {
      counters = emptyCounters();
    },
    injectedTotal: () => Object.values(counters.injected).reduce((a, b) => a + b, 0),
    stop: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
        server.closeAllConnections();
      });
      agent.destroy();
    },
  } satisfies FaultProxy & { rules: FaultRule[] };
}

/** An S3 server with a fault proxy in front of it, for one `describe` block; `lines` are printed at its end. */
export interface FaultedS3 {
  s3: S3Server;
  fp: FaultProxy;
  lines: string[];
}

/**
 * Starts s3rver and a seeded fault proxy before the enclosing suite's tests and stops both after
 * them (also when a test failed), then prints the lines the tests collected (their fault tallies).
 *
 * @example
 *   describe('under faults', () => {
 *     const env = useFaultedS3(12);
 *     it('…', async () => { const url = env.fp.freshUrl(); … });
 *   });
 */
export function useFaultedS3(seed: number): FaultedS3 {
  const env = { lines: [] as string[] } as FaultedS3;
  before(async () => {
    env.s3 = await startS3();
    env.fp = await startFaultProxy({ upstream: env.s3.endpoint, bucket: env.s3.bucket, seed });
  });
  after(async () => {
    await env.fp?.stop();
    await env.s3?.stop();
    if (env.lines.length) console.log(env.lines.join('\n'));
  });
  return env;
}
