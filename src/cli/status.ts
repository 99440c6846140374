/**
 * `cairn status` for a person: one mount as a headline and a few labelled lines, or every Cairn
 * mount of this mount namespace as a table (bare mount points when piped). `--json` prints what
 * the daemons report, unabridged.
 */
import { statusAll } from '../fuse/control.js';
import { formatBytes, notice, printJson, table } from './output.js';

/** What a mount daemon's `status` reports (the fields the human layout shows; --json prints all). */
export interface DaemonStatus {
  volume: string;
  mountpoint: string;
  pid: number;
  readOnly: boolean;
  seq: number;
  pending: number;
  openFiles: { path: string }[];
  commitIntervalSec: number;
  commits: number;
  lastCommit: { at: string; why: string; seq?: number; error?: { code: string; message: string } } | null;
  startedAt: string;
  /** Where the daemon serves Prometheus metrics (`--metrics`), or null. */
  metricsUrl?: string | null;
  /** FUSE binding in use (`native` or `fuse-native`), and why it is not native when it is not. */
  binding?: string;
  bindingNote?: string;
  /** Whether the kernel's writeback cache is on (`--writeback-cache`). */
  writebackCache?: boolean;
  /** Runs of chunks the addon's fetch threads received (`CAIRN_NATIVE_FETCH`), the GETs of them that failed (fetched again). */
  nativeFetches?: { runs: number; bytes: number; failures: number; lastError?: string };
  session?: {
    store?: string;
    chunks?: {
      storeGets?: number;
      memoryBytes?: number;
      cache?: { hits?: number; misses?: number; hitRate?: number | null };
      leases?: { waited?: number; fromOthers?: number };
    };
  } | null;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

function ago(iso: string): string {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

function describeCommits(r: DaemonStatus): string {
  if (r.readOnly) return 'none (read-only)';
  const last = r.lastCommit;
  let lastText = 'none yet';
  if (last?.error) lastText = `failed ${ago(last.at)} ago: ${last.error.code}: ${last.error.message}`;
  else if (last) lastText = `seq ${last.seq} (${last.why}) ${ago(last.at)} ago`;
  const when = r.commitIntervalSec > 0 ? `every ${r.commitIntervalSec}s` : 'on demand and at unmount';
  return `${when}; ${plural(r.commits, 'commit')}, last ${lastText}`;
}

/** `cairn status DIR`: one headline and a few labelled lines (every figure is in --json). */
export function describeStatus(r: DaemonStatus): string {
  const shown = r.openFiles.slice(0, 5).map((f) => f.path);
  if (r.openFiles.length > 5) shown.push(`(+${r.openFiles.length - 5} more)`);
  const ch = r.session?.chunks;
  const cache = ch?.cache;
  const rate = typeof cache?.hitRate === 'number' ? `${Math.round(cache.hitRate * 100)}%` : '-';
  const rows = [
    ['snapshot', `seq ${r.seq}, ${plural(r.pending, 'pending change')}`],
    ['commits', describeCommits(r)],
    ['open files', shown.length ? shown.join(' ') : 'none'],
  ];
  if (r.binding) {
    const wb = r.writebackCache ? ', writeback cache on' : '';
    rows.push(['fuse', r.bindingNote ? `${r.binding}${wb} (${r.bindingNote})` : `${r.binding}${wb}`]);
  }
  if (ch) {
    rows.push(
      ['store', `${r.session?.store ?? '?'}: ${plural(ch.storeGets ?? 0, 'GET')}`],
      ['cache', `${cache?.hits ?? 0} hits, ${cache?.misses ?? 0} misses (hit rate ${rate})`],
      ['memory', `${formatBytes(ch.memoryBytes ?? 0)} of chunks`],
      ['fetches', `${ch.leases?.waited ?? 0} waited for another reader, ${ch.leases?.fromOthers ?? 0} from others`],
    );
  }
  const nf = r.nativeFetches;
  if (nf && nf.runs + nf.failures > 0) {
    const failed = nf.failures ? `, ${nf.failures} failed and fetched again (last: ${nf.lastError ?? '?'})` : '';
    rows.push(['native', `${plural(nf.runs, 'run')} (${formatBytes(nf.bytes)}) fetched on the addon's threads${failed}`]);
  }
  if (r.metricsUrl) rows.push(['metrics', `${r.metricsUrl} (live: cairn stats ${r.mountpoint})`]);
  const mode = r.readOnly ? 'read-only' : 'read-write';
  const head = `${r.volume} at ${r.mountpoint} (${mode}), daemon pid ${r.pid}, up ${ago(r.startedAt)}\n`;
  return head + table(rows.map(([k, v]) => [`  ${k}`, v!]));
}

/**
 * `cairn mounts` (and `cairn status` without DIR): every Cairn mount in this mount namespace, with
 * what its daemon reports.
 */
export async function listMounts(json: boolean): Promise<void> {
  const rows = (await statusAll()).map(({ mount: m, status, error }) => {
    const s = (status ?? {}) as Partial<DaemonStatus>;
    return {
      volume: m.volume,
      mountpoint: m.mountpoint,
      readOnly: m.readOnly,
      seq: s.seq ?? null,
      pending: s.pending ?? null,
      openFiles: s.openFiles?.length ?? null,
      binding: s.binding ?? null,
      ...(error ? { error: `${error.code}: ${error.message}` } : {}),
    };
  });
  if (json) return printJson(rows);
  if (!process.stdout.isTTY) return void process.stdout.write(rows.map((r) => `${r.mountpoint}\n`).join(''));
  if (rows.length === 0) return notice('no cairn mounts here (cairn mount VOLUME DIR makes one)');
  const n = (v: number | null) => (v === null ? '?' : String(v));
  process.stdout.write(
    table(
      rows.map((r) => [r.volume, r.mountpoint, n(r.seq), n(r.pending), n(r.openFiles), r.readOnly ? 'ro' : 'rw', r.binding ?? '?']),
      ['VOLUME', 'MOUNTPOINT', 'SEQ', 'PENDING', 'OPEN', 'MODE', 'BINDING'],
    ),
  );
}
