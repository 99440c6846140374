/**
 * A mount's figures: FUSE operations, bytes, commits, reloads and the chunk layer's store and
 * cache counts, kept in a prom-client registry. They are served two ways: as Prometheus text on
 * `--metrics HOST:PORT` (`serveMetrics`), and as a flat snapshot in the mount's `status`, which
 * `cairn stats` turns into per-second figures.
 */
import http from 'node:http';
import { Counter, Histogram, Registry } from 'prom-client';
import { CairnError } from '../errors.js';

/** What the chunk layer has counted so far (read at each scrape). */
export interface ChunkFigures {
  storeGets: number;
  cacheHits: number;
  cacheMisses: number;
}

/** A flat snapshot: metric name (with labels, Prometheus style) → value. */
export type MetricsSnapshot = Record<string, number>;

const LATENCY_BUCKETS = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30];

/**
 * The figures of one mount daemon.
 * @example
 * const m = new MountMetrics({ volume: 'data', chunks: () => ({ storeGets: 0, cacheHits: 0, cacheMisses: 0 }) });
 * m.op('read', 0.0002, undefined, 4096);
 */
/** What the native binding's reads add up to (src/fuse's NreadStats, the fields counted here). */
export interface NativeReadFigures {
  served: number;
  servedBytes: number;
}

export class MountMetrics {
  readonly registry = new Registry();
  private readonly ops: Counter<'op'>;
  private readonly opErrors: Counter<'op'>;
  private readonly opSeconds: Histogram<'op'>;
  /** Bytes JavaScript answered READs with; `cairn_read_bytes_total` adds the native ones. */
  private jsReadBytes = 0;
  private readonly writeBytes: Counter;
  private readonly syncs: Counter<'kind' | 'result'>;
  private readonly syncSeconds: Histogram<'kind'>;

  constructor(opts: { volume: string; chunks?: () => ChunkFigures; native?: () => NativeReadFigures | undefined }) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ volume: opts.volume });
    this.ops = new Counter({ name: 'cairn_fuse_ops_total', help: 'FUSE operations answered', labelNames: ['op'], registers });
    this.opErrors = new Counter({
      name: 'cairn_fuse_errors_total',
      help: 'FUSE operations answered with an error',
      labelNames: ['op'],
      registers,
    });
    this.opSeconds = new Histogram({
      name: 'cairn_fuse_op_seconds',
      help: 'Time to answer a FUSE operation',
      labelNames: ['op'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    const native = opts.native;
    const jsBytes = (): number => this.jsReadBytes;
    new Counter({
      name: 'cairn_read_bytes_total',
      help: 'Bytes read through the mount (READs answered by JavaScript or natively)',
      registers,
      collect() {
        this.reset();
        this.inc(jsBytes() + (native?.()?.servedBytes ?? 0));
      },
    });
    new Counter({
      name: 'cairn_fuse_native_reads_total',
      help: 'READs the native binding answered from verified chunk bytes without JavaScript (not in cairn_fuse_ops_total)',
      registers,
      collect() {
        this.reset();
        this.inc(native?.()?.served ?? 0);
      },
    });
    this.writeBytes = new Counter({ name: 'cairn_write_bytes_total', help: 'Bytes written through the mount', registers });
    this.syncs = new Counter({
      name: 'cairn_syncs_total',
      help: 'Commits and reloads, by result',
      labelNames: ['kind', 'result'],
      registers,
    });
    this.syncSeconds = new Histogram({
      name: 'cairn_sync_seconds',
      help: 'Latency of commits and reloads',
      labelNames: ['kind'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    const chunks = opts.chunks;
    const fromChunks = (name: string, help: string, pick: (f: ChunkFigures) => number): void => {
      new Counter({
        name,
        help,
        registers,
        collect() {
          if (!chunks) return;
          this.reset();
          this.inc(pick(chunks()));
        },
      });
    };
    fromChunks('cairn_store_gets_total', 'Range GETs sent to the object store', (f) => f.storeGets);
    fromChunks('cairn_cache_hits_total', 'Chunk reads served by the host chunk cache', (f) => f.cacheHits);
    fromChunks('cairn_cache_misses_total', 'Chunk reads the host chunk cache could not serve', (f) => f.cacheMisses);
  }

  /** Counts one answered FUSE operation: its latency, whether it failed, the bytes it moved. */
  op(name: string, seconds: number, failed: boolean, bytes?: { read?: number; written?: number }): void {
    this.ops.inc({ op: name });
    this.opSeconds.observe({ op: name }, seconds);
    if (failed) this.opErrors.inc({ op: name });
    if (bytes?.read) this.jsReadBytes += bytes.read;
    if (bytes?.written) this.writeBytes.inc(bytes.written);
  }

  /** Counts one commit or reload. */
  sync(kind: 'commit' | 'reload', seconds: number, ok: boolean): void {
    this.syncs.inc({ kind, result: ok ? 'ok' : 'error' });
    this.syncSeconds.observe({ kind }, seconds);
  }

  /** Prometheus text format. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /**
   * Every counter and every histogram's `_sum`/`_count`, flat (buckets left out), without the
   * default `volume` label: `{"cairn_fuse_ops_total{op=\"read\"}": 12, …}`.
   */
  async snapshot(): Promise<MetricsSnapshot> {
    const out: MetricsSnapshot = {};
    for (const m of await this.registry.getMetricsAsJSON()) {
      for (const v of m.values) {
        const name = (v as { metricName?: string }).metricName ?? m.name;
        if (name.endsWith('_bucket')) continue;
        const labels = Object.entries(v.labels)
          .filter(([k]) => k !== 'volume' && k !== 'le')
          .map(([k, x]) => `${k}="${String(x)}"`);
        out[labels.length ? `${name}{${labels.join(',')}}` : name] = v.value;
      }
    }
    return out;
  }
}

/** The sum of every series of metric `name` in a snapshot (all label values). */
export function metricTotal(s: MetricsSnapshot, name: string): number {
  let n = 0;
  for (const [k, v] of Object.entries(s)) if (k === name || k.startsWith(`${name}{`)) n += v;
  return n;
}

/**
 * Parses `HOST:PORT` (`[::1]:9100`, `0.0.0.0:9100`, `:9100` for every address).
 * @example parseListen('127.0.0.1:9100') // { host: '127.0.0.1', port: 9100 }
 */
export function parseListen(spec: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(spec);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new CairnError('INVALID_ARGUMENT', `--metrics wants HOST:PORT, got ${JSON.stringify(spec)}`, {
      hint: 'for example --metrics 127.0.0.1:9567 (port 0 picks a free one)',
    });
  }
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

/** A running metrics endpoint. */
export interface MetricsServer {
  /** `http://HOST:PORT/metrics`, with the port actually bound. */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves `metrics` as Prometheus text at `/metrics` on `listen` (`HOST:PORT`).
 * @example const srv = await serveMetrics(metrics, '127.0.0.1:9567'); … await srv.close();
 */
export function serveMetrics(metrics: MountMetrics, listen: string): Promise<MetricsServer> {
  return serveText(listen, async () => ({ body: await metrics.text(), type: metrics.registry.contentType }));
}

/** One mount's figures as its daemon reports them in `status`. */
export interface MountFigures {
  volume: string;
  mountpoint: string;
  metrics: MetricsSnapshot;
}

/**
 * Serves the figures of several mounts (each daemon's `status` snapshot, gathered by `collect` at
 * every scrape) as one Prometheus page, each series labelled with its volume and mount point:
 * the endpoint of `cairn run --metrics` and `cairn plugin --metrics`.
 *
 * @example const srv = await serveMountsMetrics('127.0.0.1:9567', async () => figuresOfMyMounts());
 */
export function serveMountsMetrics(listen: string, collect: () => Promise<MountFigures[]>): Promise<MetricsServer> {
  return serveText(listen, async () => ({ body: renderMounts(await collect()), type: PROMETHEUS_TEXT }));
}

const PROMETHEUS_TEXT = 'text/plain; version=0.0.4; charset=utf-8';

/** HELP and TYPE of each metric, from the one definition of them (MountMetrics). */
let definitions: Map<string, { help: string; type: string }> | undefined;
function definitionOf(name: string): { help: string; type: string } | undefined {
  definitions ??= new Map(
    new MountMetrics({ volume: '' }).registry.getMetricsAsArray().map((m) => [m.name, { help: m.help, type: String(m.type) }]),
  );
  return definitions.get(name);
}

const escapeLabel = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

/**
 * Prometheus text of several mounts' snapshots: counters as they are, each histogram as a
 * summary of its `_sum` and `_count` (the snapshot keeps no buckets).
 */
export function renderMounts(mounts: readonly MountFigures[]): string {
  const series = new Map<string, string[]>();
  for (const m of mounts) {
    const own = `volume="${escapeLabel(m.volume)}",mountpoint="${escapeLabel(m.mountpoint)}"`;
    for (const [key, value] of Object.entries(m.metrics)) {
      const at = key.indexOf('{');
      const name = at < 0 ? key : key.slice(0, at);
      const labels = at < 0 ? own : `${key.slice(at + 1, -1)},${own}`;
      const base = name.replace(/_(sum|count)$/, '');
      const family = definitionOf(name) ? name : base;
      let lines = series.get(family);
      if (!lines) series.set(family, (lines = []));
      lines.push(`${name}{${labels}} ${value}`);
    }
  }
  const out: string[] = [];
  for (const [family, lines] of series) {
    const d = definitionOf(family);
    if (d) out.push(`# HELP ${family} ${d.help}`, `# TYPE ${family} ${d.type === 'histogram' ? 'summary' : d.type}`);
    out.push(...lines);
  }
  return `${out.join('\n')}\n`;
}

/** An HTTP server answering GET /metrics with `render()`'s text. */
async function serveText(listen: string, render: () => Promise<{ body: string; type: string }>): Promise<MetricsServer> {
  const { host, port } = parseListen(listen);
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url !== '/metrics' && req.url !== '/')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
      return;
    }
    render().then(
      ({ body, type }) => res.writeHead(200, { 'content-type': type }).end(body),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(err)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new CairnError('INVALID_ARGUMENT', `cannot serve metrics on ${listen}: ${err.code ?? err.message}`, {
          hint: err.code === 'EADDRINUSE' ? 'another process uses that port: pick another' : 'check the address',
        }),
      ),
    );
    server.listen(port, host, () => resolve());
  });
  server.unref();
  const addr = server.address() as { address: string; port: number };
  const shown = addr.address.includes(':') ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${shown}:${addr.port}/metrics`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
