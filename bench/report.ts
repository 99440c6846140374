/**
 * Presenting benchmark results: the goals check (ratios of Cairn to each reference), a plain
 * text table for stdout, and the published page: docs/benchmarks.json (the results of one run),
 * and docs/BENCHMARKS.md plus docs/benchmarks.svg rendered from it
 * (`node dist/bench/report.js bench/results/X.json` publishes a results file without re-running).
 *
 * Invariant: every figure, ratio and verdict shown is computed from the results object, and so is
 * every sentence about the figures; the only text typed in describes the method and the design.
 * Goals are always recomputed from the rows (test/bench/report.test.ts pins them on a fixture).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FioResults, FioRow } from './fio.js';
import { isCairn, SYSTEMS, type Cache, type ReadRow, type System, type Workload } from './reads.js';
import type { WriteResults } from './writes.js';

export interface Goal {
  goal: string;
  workload: string;
  readers: number;
  cairn: number;
  reference?: number;
  ratio?: number;
  target: string;
  met: boolean;
}

export interface BenchResults {
  version: 1;
  timestamp: string;
  mode: 'quick' | 'full';
  durationSec: number;
  machine: Record<string, unknown>;
  peers: { s3fs: string | null; rclone: string | null };
  dataset: { bigBytes: number; smallCount: number; smallBytes: number; cairnUploadSec: number; plainUploadSec: number; cairnFileUploadSec?: number };
  method: Record<string, unknown>;
  /** Seconds per step of the suite (dataset, reads, fio, writes). */
  stepSec?: Record<string, number>;
  reads: ReadRow[];
  /** fio jobs through each mount (absent in results written before fio was added). */
  fio?: FioResults;
  writes?: WriteResults;
  failures: string[];
  goals: Goal[];
  /** How this file came to be, when it is not a run's output as written (shown on the page). */
  provenance?: string;
  profile?: { file: string; totalMs: number; top: { fn: string; ms: number; pct: number }[]; modules?: { fn: string; ms: number; pct: number }[] }[];
}

const NAMES: Record<System, string> = {
  cairn: 'Cairn',
  'cairn-file': 'Cairn (file store)',
  local: 'local disk',
  s3get: 'raw GetObject',
  s3fs: 's3fs',
  rclone: 'rclone mount',
};
const r2 = (x: number): number => Math.round(x * 100) / 100;

function find(rows: ReadRow[], w: string, sys: System, cache: string, n: number): ReadRow | undefined {
  return rows.find((r) => r.workload === w && r.system === sys && r.cache === cache && r.readers === n);
}

/** The goals of the brief, per reader count, from the read rows. */
export function summarizeGoals(res: BenchResults): Goal[] {
  const goals: Goal[] = [];
  const counts = [...new Set(res.reads.map((r) => r.readers))].sort((a, b) => a - b);
  for (const n of counts) {
    const c = find(res.reads, 'big', 'cairn', 'cold', n);
    if (c) {
      for (const [ref, factor, target] of [['s3fs', 2, '≥ 2x'], ['rclone', 2, '≥ 2x'], ['s3get', 0.9, '≥ 90%']] as [System, number, string][]) {
        const p = find(res.reads, 'big', ref, 'cold', n);
        if (!p) continue;
        const ratio = c.MiBps / p.MiBps;
        goals.push({ goal: `cold big-file reads vs ${NAMES[ref]}`, workload: 'big', readers: n, cairn: c.MiBps, reference: p.MiBps, ratio: r2(ratio), target, met: ratio >= factor });
      }
    }
    const w = find(res.reads, 'big', 'cairn', 'warm', n);
    if (w) {
      const per = w.MiBps / n;
      goals.push({ goal: 'warm reads per reader', workload: 'big', readers: n, cairn: r2(per), target: '≥ 1024 MiB/s', met: per >= 1024 });
    }
    const s = find(res.reads, 'small', 'cairn', 'cold', n);
    const sp = find(res.reads, 'small', 's3fs', 'cold', n);
    if (s && sp) {
      const ratio = s.filesPerSec / sp.filesPerSec;
      goals.push({ goal: 'cold small files vs s3fs (files/s)', workload: 'small', readers: n, cairn: s.filesPerSec, reference: sp.filesPerSec, ratio: r2(ratio), target: '≥ 10x', met: ratio >= 10 });
    }
  }
  goals.push(...writeGoals(res));
  return goals;
}

/** Volume sizes measured by the metadata workload, from its row names ("volume of 1,000 files: …"). */
function volumeRows(res: BenchResults, measure: string): { files: number; value: number }[] {
  const out: { files: number; value: number }[] = [];
  for (const row of res.writes?.rows ?? []) {
    const m = /^volume of ([\d,]+) files: (.+)$/.exec(row.name);
    if (m && m[2] === measure) out.push({ files: Number(m[1]!.replace(/,/g, '')), value: row.value });
  }
  return out.sort((a, b) => a.files - b.files);
}

/** Commit and reload latency flat in the volume size (within 2x), daemon RSS under 300 MiB. */
function writeGoals(res: BenchResults): Goal[] {
  const goals: Goal[] = [];
  for (const [measure, label] of [
    ['commit of 1 file', 'commit of 1 file'],
    ['reload (1 new file)', 'reload after 1 new file'],
  ] as const) {
    const rows = volumeRows(res, measure);
    if (rows.length < 2) continue;
    const values = rows.map((r) => r.value);
    const ratio = Math.max(...values) / Math.min(...values);
    const big = rows[rows.length - 1]!;
    goals.push({
      goal: `${label}: ${rows[0]!.files.toLocaleString('en-US')} vs ${big.files.toLocaleString('en-US')} files (ms; ratio max/min over all sizes)`,
      workload: 'metadata',
      readers: 1,
      cairn: big.value,
      reference: rows[0]!.value,
      ratio: r2(ratio),
      target: '≤ 2x',
      met: ratio <= 2,
    });
  }
  const rss = volumeRows(res, 'daemon peak RSS');
  const big = rss[rss.length - 1];
  if (big) {
    goals.push({ goal: `daemon peak RSS at ${big.files.toLocaleString('en-US')} files (MiB)`, workload: 'metadata', readers: 1, cairn: big.value, target: '< 300 MiB', met: big.value < 300 });
  }
  return goals;
}

function pad(cells: string[][]): string {
  const widths = cells[0].map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')).join('\n');
}

const fmt = (x: number | undefined, d = 1): string => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d));

/**
 * Ratio of a Cairn row to the same workload/cache/readers of each reference (Cairn on the file
 * store: to local disk only, the other references read from s3rver).
 */
function ratios(res: BenchResults, r: ReadRow): string {
  if (!isCairn(r.system)) return '';
  const parts: string[] = [];
  for (const ref of (r.system === 'cairn' ? ['local', 's3get', 's3fs', 'rclone'] : ['local']) as System[]) {
    const p = find(res.reads, r.workload, ref, r.cache, r.readers);
    if (!p) continue;
    const key = r.workload === 'big' ? 'MiBps' : 'filesPerSec';
    parts.push(`${ref} ${fmt(r[key] / p[key], 2)}x`);
  }
  return parts.join(', ');
}

function readTable(res: BenchResults): string[][] {
  const head = ['workload', 'cache', 'readers', 'system', 'MiB/s', 'files/s', 'TTFB ms', 'mount ms', 'daemon MiB', 'Cairn vs'];
  const rows = [...res.reads].sort(
    (a, b) => a.workload.localeCompare(b.workload) || a.cache.localeCompare(b.cache) || a.readers - b.readers || order(a.system) - order(b.system),
  );
  return [
    head,
    ...rows.map((r) => [
      r.workload === 'big' ? `big ${r.bytesPerReader / 2 ** 20} MiB` : `small ${r.filesPerReader}x${r.bytesPerReader / r.filesPerReader / 1024}K`,
      r.cache,
      String(r.readers),
      NAMES[r.system],
      fmt(r.MiBps),
      fmt(r.filesPerSec, 0),
      fmt(r.ttfbMs, 1),
      fmt(r.mountMs, 0),
      fmt(r.daemonHwmMiB, 0),
      ratios(res, r),
    ]),
  ];
}

function order(s: System): number {
  return SYSTEMS.indexOf(s);
}

/** Ratios of a Cairn fio row (MiB/s) to the same job on local disk (same cache state), s3fs and rclone (cold). */
function fioRatios(rows: FioRow[], r: FioRow): string {
  if (!isCairn(r.system)) return '';
  const parts: string[] = [];
  for (const ref of ['local', 's3fs', 'rclone'] as const) {
    const p = rows.find((x) => x.system === ref && x.job === r.job && x.cache === r.cache);
    if (p && p.MiBps > 0) parts.push(`${ref} ${fmt(r.MiBps / p.MiBps, 2)}x`);
  }
  return parts.join(', ');
}

function fioTable(fio: FioResults): string[][] {
  const rows = [...fio.rows].sort((a, b) => b.job.localeCompare(a.job) || a.cache.localeCompare(b.cache) || order(a.system) - order(b.system));
  return [
    ['job', 'cache', 'system', 'MiB/s', 'IOPS', 'p50 ms', 'p99 ms', 'MiB read', 's', 'Cairn vs'],
    ...rows.map((r) => [
      r.job === 'seq' ? 'seq 1M x1' : 'rand 128k x4',
      r.cache,
      NAMES[r.system],
      fmt(r.MiBps),
      fmt(r.iops, 0),
      fmt(r.p50Ms, 2),
      fmt(r.p99Ms, 2),
      fmt(r.MiB, 0),
      `${fmt(r.seconds, 1)}${r.capped ? '*' : ''}`,
      fioRatios(fio.rows, r),
    ]),
  ];
}

/** The stdout table. */
export function table(res: BenchResults): string {
  const out = [`Cairn benchmarks (${res.mode}, ${res.durationSec} s)`, '', pad(readTable(res))];
  if (res.fio?.rows.length) out.push('', `fio through each mount (${res.fio.version}; * = stopped by --runtime)`, pad(fioTable(res.fio)));
  else if (res.fio?.skipped) out.push('', `fio: skipped (${res.fio.skipped})`);
  if (res.writes?.rows.length) {
    out.push('', pad([['write / metadata', 'value', 'unit'], ...res.writes.rows.map((w) => [w.name, fmt(w.value, w.value < 10 ? 2 : 1), w.unit])]));
  }
  const goals = summarizeGoals(res);
  if (goals.length) out.push('', pad(goalTable(goals, 'NO')));
  if (res.failures.length) out.push('', 'failures:', ...res.failures.map((f) => `  ${f}`));
  return out.join('\n');
}

/** The goals as table cells (`no` spells a missed goal). */
function goalTable(goals: Goal[], no: string): string[][] {
  return [
    ['goal', 'readers', 'Cairn', 'reference', 'ratio', 'target', 'met'],
    ...goals.map((g) => [
      g.goal, String(g.readers), fmt(g.cairn), fmt(g.reference), fmt(g.ratio, 2), g.target, g.met ? 'yes' : no,
    ]),
  ];
}

function mdTable(cells: string[][]): string {
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  return [`| ${cells[0].map(esc).join(' | ')} |`, `|${cells[0].map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`, ...cells.slice(1).map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n');
}

/** A bar chart (SVG, no dependencies): MiB/s of each system per read workload. */
export function svgChart(res: BenchResults): string {
  const groups: { label: string; bars: { sys: System; v: number }[] }[] = [];
  const keys = [...new Set(res.reads.map((r) => `${r.workload}|${r.cache}|${r.readers}`))];
  keys.sort((a, b) => {
    const [wa, ca, na] = a.split('|');
    const [wb, cb, nb] = b.split('|');
    return wa.localeCompare(wb) || ca.localeCompare(cb) || Number(na) - Number(nb);
  });
  for (const k of keys) {
    const [w, c, n] = k.split('|');
    const bars = res.reads.filter((r) => r.workload === w && r.cache === c && r.readers === Number(n)).sort((a, b) => order(a.system) - order(b.system)).map((r) => ({ sys: r.system, v: r.MiBps }));
    groups.push({ label: `${w} ${c} ×${n}`, bars });
  }
  const colors: Record<System, string> = { cairn: '#2b6cb0', 'cairn-file': '#63b3ed', local: '#718096', s3get: '#38a169', s3fs: '#dd6b20', rclone: '#b83280' };
  const max = Math.max(1, ...groups.flatMap((g) => g.bars.map((b) => b.v)));
  const logMax = Math.log10(max * 1.2);
  const bw = 14;
  const gap = 22;
  const left = 60;
  const top = 40;
  const h = 260;
  let x = left;
  const parts: string[] = [];
  for (const g of groups) {
    const gx = x;
    for (const b of g.bars) {
      const bh = b.v > 1 ? (Math.log10(b.v) / logMax) * h : 1;
      parts.push(`<rect x="${x}" y="${(top + h - bh).toFixed(1)}" width="${bw - 2}" height="${bh.toFixed(1)}" fill="${colors[b.sys]}"><title>${NAMES[b.sys]}: ${b.v} MiB/s</title></rect>`);
      x += bw;
    }
    parts.push(`<text x="${((gx + x) / 2).toFixed(1)}" y="${top + h + 14}" font-size="10" text-anchor="end" transform="rotate(-35 ${((gx + x) / 2).toFixed(1)} ${top + h + 14})">${g.label}</text>`);
    x += gap;
  }
  const width = x + 20;
  const ticks: string[] = [];
  for (let p = 0; 10 ** p <= max * 1.2; p++) {
    const y = top + h - (p / logMax) * h;
    ticks.push(`<line x1="${left - 4}" x2="${width - 10}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#e2e8f0"/><text x="${left - 6}" y="${(y + 3).toFixed(1)}" font-size="10" text-anchor="end">${10 ** p}</text>`);
  }
  const legend = (Object.keys(colors) as System[])
    .filter((s) => res.reads.some((r) => r.system === s))
    .map((s, i) => `<rect x="${left + i * 120}" y="10" width="10" height="10" fill="${colors[s]}"/><text x="${left + i * 120 + 14}" y="19" font-size="11">${NAMES[s]}</text>`);
  const height = top + h + 90;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...ticks,
    ...parts,
    ...legend,
    `<text x="12" y="${top + h / 2}" font-size="11" transform="rotate(-90 12 ${top + h / 2})" text-anchor="middle">aggregate MiB/s (log scale)</text>`,
    '</svg>',
  ].join('\n');
}

/**
 * Where goals are missed: what this run's own figures (and daemon profiles, when recorded) show
 * next to each missed goal. Every number here is computed from the results; the prose around
 * them states design facts, never figures measured elsewhere.
 */
function bottlenecks(res: BenchResults, goals: Goal[]): string[] {
  const notes: string[] = [];
  const missed = goals.filter((g) => !g.met);
  if (!missed.length) return notes;
  const pctOf = (x: number, y: number): string => `${Math.round((x / y) * 100)}%`;
  const times = (x: number, y: number): string => `${fmt(x / y, 2)}×`;
  const rows = (w: Workload, cache: Cache, systems: System[]): ReadRow[] =>
    systems.map((sys) => find(res.reads, w, sys, cache, 1)).filter((r): r is ReadRow => !!r);
  const prof = (name: string) => res.profile?.find((p) => p.file.startsWith(name));
  const profText = (p: ReturnType<typeof prof>): string => {
    if (!p) return '';
    const mods = (p.modules ?? []).slice(0, 5).map((t) => `${t.fn || '(native)'} ${t.pct}%`);
    const idle = p.top.find((t) => t.fn.startsWith('(idle)'))?.pct ?? 0;
    return ` Daemon profile (${p.totalMs} ms sampled): ${mods.join(', ')}, idle ${idle}%.`;
  };
  const cpus = String(res.machine.cpus);
  const load = res.machine.loadAvg as number[] | undefined;

  const c1 = find(res.reads, 'big', 'cairn', 'cold', 1);
  if (c1 && missed.some((g) => g.goal.startsWith('cold big'))) {
    const refs = rows('big', 'cold', ['s3get', 's3fs', 'rclone', 'local']);
    const cf = find(res.reads, 'big', 'cairn-file', 'cold', 1);
    const s3refs = refs.filter((r) => r.system !== 'local');
    const fileKeepsUp = !!cf && s3refs.length > 0 && s3refs.every((r) => cf.MiBps >= r.MiBps);
    notes.push(
      `**Cold big-file reads**, 1 reader: Cairn on s3rver ${c1.MiBps} MiB/s; ` +
        `${refs.map((r) => `${NAMES[r.system]} ${r.MiBps} MiB/s (Cairn ${pctOf(c1.MiBps, r.MiBps)} of it)`).join(', ')}.` +
        (cf
          ? ` Cairn on the file store, the same mount code with another store, reads ${cf.MiBps} MiB/s cold` +
            ` (${times(cf.MiBps, c1.MiBps)} Cairn on s3rver)` +
            (fileKeepsUp
              ? ', faster than every reference reading from s3rver: the gap is on Cairn\'s path to s3rver, not in the mount'
              : '') +
            '.'
          : '') +
        ` s3rver is one Node.js process sharing the ${cpus} cores with the daemon and the reader.` +
        profText(prof('cairn-big-cold-1r')),
    );
  }
  const w1 = find(res.reads, 'big', 'cairn', 'warm', 1);
  if (w1 && missed.some((g) => g.goal.startsWith('warm'))) {
    const others = rows('big', 'warm', ['cairn-file', 'local']).map((r) => `${NAMES[r.system]} ${r.MiBps} MiB/s`);
    notes.push(
      `**Warm reads** give ${w1.MiBps} MiB/s for 1 reader (goal 1024 per reader)` +
        `${others.length ? `; warm, 1 reader: ${others.join(', ')}` : ''}. ` +
        'A warm read is served from the chunk cache through FUSE: libfuse 2 passes at most 128 KiB per read request, ' +
        'and each request crosses the kernel, a fuse-native thread and the event loop, which also verifies each chunk ' +
        'read from the cache (BLAKE3). Candidate fixes (not measured here): the kernel page cache across opens for ' +
        'committed files (libfuse\'s `auto_cache`), and a libfuse 3 binding with 1 MiB requests (`max_pages`).' +
        profText(prof('cairn-big-warm-1r')),
    );
  }
  const s1 = find(res.reads, 'small', 'cairn', 'cold', 1);
  if (s1 && missed.some((g) => g.goal.startsWith('cold small'))) {
    const sg = find(res.reads, 'small', 's3get', 'cold', 1);
    const sf = find(res.reads, 'small', 's3fs', 'cold', 1);
    const sw = find(res.reads, 'small', 'cairn', 'warm', 1);
    const warmBest = rows('small', 'warm', ['cairn', 'cairn-file']).sort((a, b) => b.filesPerSec - a.filesPerSec)[0];
    const fps = (r: ReadRow): string => `${fmt(r.filesPerSec, 0)} files/s`;
    const inFlight = res.method.smallConcurrency ? `, ${String(res.method.smallConcurrency)} in flight` : '';
    notes.push(
      `**Small files (cold)**, 1 reader: Cairn ${fps(s1)}` +
        (sg ? `, ${times(s1.filesPerSec, sg.filesPerSec)} raw GetObject (${fps(sg)}, one GET per file${inFlight})` : '') +
        (sf ? `, ${times(s1.filesPerSec, sf.filesPerSec)} s3fs (${fps(sf)})` : '') +
        (sw ? `; warm ${fps(sw)}, so cold reaches ${pctOf(s1.filesPerSec, sw.filesPerSec)} of warm` : '') +
        '. Cairn fetches a small file\'s pack neighbours with it (one range GET per 4 MiB of pack), so it is not ' +
        'bound by one GET per file. Each file also costs about five FUSE requests (lookup, open, read, flush, ' +
        'release: the kernel caches no entries or attributes, so that a reload is visible at once)' +
        (warmBest
          ? `; warm reads, which never reach the store, reach ${fps(warmBest)} at best in this run (${NAMES[warmBest.system]})`
          : '') +
        '. Ten times s3fs needs fewer requests per file: kernel entry/attribute caching with invalidation on reload ' +
        '(`fuse_lowlevel_notify_inval_entry`, not exposed by fuse-native) or a lower-overhead binding.',
    );
  }
  if (missed.some((g) => g.workload === 'metadata')) {
    notes.push(
      'Metadata goals: commit and reload cost O(change) (one record), and bootstrap and checkpoints run in child ' +
        'processes, so neither latency nor the daemon\'s memory is meant to grow with the volume; a miss here needs ' +
        'a look at the rows above.',
    );
  }
  if (load?.length) {
    const spreads = res.reads
      .filter((r) => (r.runs?.length ?? 0) > 1)
      .map((r) => {
        const xs = r.runs.map((g) => g.MiBps);
        const range = `${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))} MiB/s`;
        return `${NAMES[r.system]} ${r.workload} ${r.cache} ×${r.readers} ${range}`;
      });
    notes.push(
      `Load average ${load.join(' / ')} on ${cpus} cores at the end of the read matrix (the benchmark's own ` +
        'groups included: s3rver, the daemons and the readers share the cores), so rounds vary: single-round ' +
        'figures are less reliable than medians.' +
        (spreads.length ? ` Rounds of the figures measured more than once ranged: ${spreads.join('; ')}.` : ''),
    );
  }
  return notes;
}

/** The "fio through each mount" section of docs/BENCHMARKS.md (empty for results without fio). */
function fioSection(res: BenchResults): string[] {
  const fio = res.fio;
  if (!fio) return [];
  const out = ['## fio through each mount', ''];
  if (!fio.rows.length) return [...out, `Not run: ${fio.skipped ?? 'every job failed (see Failures)'}.`, ''];
  out.push(
    `${fio.version}, read-only jobs over the big file (${res.dataset.bigBytes / 2 ** 20} MiB), each inside a ` +
      'container\'s mount namespace (the same `bench/container.ts` as the readers, fio in place of the reader) for ' +
      'Cairn on both stores, s3fs and rclone mount, and directly on the local copy for local disk:',
    '',
    '- **seq**: sequential read, 1 MiB blocks, one job: `fio ' + fio.jobs.seq + '`',
    '- **rand**: random read, 128 KiB blocks (the largest request FUSE passes by default, so one fio read is one FUSE request), 4 jobs with psync (iodepth 1 each), aggregated: `fio ' + fio.jobs.rand + '`',
    '',
    'Cold and warm as for the read matrix (cold: chunk cache deleted for Cairn, `drop_caches` for every system; ' +
      'warm: right after the same system\'s cold job, same offsets). One run per figure. Latencies are fio\'s ' +
      'completion latency percentiles of one read; `*` marks a job stopped by `--runtime` before its `--io_size`. ' +
      'fio counts the bytes it reads but cannot check random data, so unlike the readers these jobs do not verify ' +
      'content. Cairn\'s ratios are of MiB/s, to the same job and cache state (s3fs and rclone: cold only).',
    '',
    mdTable(fioTable(fio)),
    '',
  );
  return out;
}

/** Where the published results live, relative to the repository root; the page is rendered from it. */
export const PUBLISHED_JSON = 'docs/benchmarks.json';

/** "1,000, 100,000 and 1,000,000". */
const listOf = (xs: number[]): string => {
  const s = xs.map((x) => x.toLocaleString('en-US'));
  return s.length > 1 ? `${s.slice(0, -1).join(', ')} and ${s[s.length - 1]}` : (s[0] ?? '');
};

/**
 * docs/BENCHMARKS.md for one results object: every figure, ratio, verdict and sentence about the
 * figures comes from `res` (goals are recomputed from its rows, never taken from the file).
 *
 * @example
 *   const md = renderMarkdown(JSON.parse(await fsp.readFile('docs/benchmarks.json', 'utf8')));
 */
export function renderMarkdown(res: BenchResults): string {
  const goals = summarizeGoals(res);
  const m = res.machine;
  const ds = res.dataset;
  const peerSmall = res.reads.filter((r) => r.workload === 'small' && (r.system === 's3fs' || r.system === 'rclone'));
  // Peers measured at several reader counts on the big file but at 1 only on the small files.
  const peerSmallOnlyOne =
    peerSmall.length > 0 &&
    peerSmall.every((r) => r.readers === 1) &&
    res.reads.some((r) => r.workload === 'big' && (r.system === 's3fs' || r.system === 'rclone') && r.readers > 1);
  const volumes = volumeRows(res, 'mount').map((v) => v.files);
  const md: string[] = [
    '# Benchmarks',
    '',
    `Latest run: ${res.timestamp} (${res.mode} mode, ${res.durationSec} s). Every figure on this page is rendered ` +
      `by \`bench/report.ts\` from that run's results, \`${PUBLISHED_JSON}\`; \`test/bench/report.test.ts\` checks ` +
      'that this page is exactly that rendering.',
    ...(res.provenance ? ['', res.provenance] : []),
    '',
    '## Running',
    '',
    '```sh',
    'npm run bench                 # full suite (2 GiB + 5,000 x 64 KiB; 1, 4, 16 readers; writes, metadata, fio); renders this page',
    'npm run bench -- --quick      # 64 MiB / 200 files, 1 and 4 readers, one round each',
    'npm run bench -- --no-peers   # skip s3fs and rclone (and their installation)',
    'npm run bench -- --no-fio     # skip the fio jobs (skipped anyway, with the reason recorded, when fio is missing)',
    'npm run bench -- --big-mib 512  # a smaller big file: the main lever on the suite\'s duration',
    'npm run bench -- --profile    # also `node --cpu-prof` one Cairn daemon (1 reader, big file, cold and warm)',
    'node dist/bench/report.js bench/results/<timestamp>.json   # publish a results file: docs/benchmarks.json and this page',
    '```',
    '',
    'Modules: `bench/run.ts` (driver), `bench/reads.ts` (read matrix), `bench/fio.ts` (fio jobs through each mount), `bench/writes.ts` (writes, commits, metadata), `bench/container.ts` (one reader in its own mount namespace), `bench/reader.ts` (the reader), `bench/verify.ts` (what readers check), `bench/harness.ts` (processes, barrier, teardown), `bench/dataset.ts`, `bench/s3serve.ts`, `bench/report.ts`. `test/bench/quick.test.ts` runs the quick mode and checks the JSON (never speed); `test/bench/report.test.ts` checks goals and tables on a fixed results file; `test/bench/verify.test.ts` the readers\' checks. `bench/store.ts` and `bench/chunks.ts` are separate micro-benchmarks of the store and chunk layers.',
    '',
    '## Method',
    '',
    '`npm run bench` (or `npm run bench -- --quick`) installs the peers if missing (`scripts/bench-setup.sh`: s3fs, rclone, fio), starts s3rver on loopback behind the test harness\'s conditional-write proxy, uses a fresh temporary `CAIRN_HOME`, and generates random data:',
    '',
    `- **big**: one ${ds.bigBytes / 2 ** 20} MiB file; **small**: ${ds.smallCount} files of ${ds.smallBytes / 1024} KiB in one directory; the peers mount the prefix of each workload (plain/big, plain/small).`,
    `- The same bytes are uploaded twice to the same bucket: into a Cairn volume with \`vol.batchUpload\` (${ds.cairnUploadSec} s) and as plain objects under another prefix (${ds.plainUploadSec} s) for the references.` +
      (ds.cairnFileUploadSec !== undefined ? ` They also go into a Cairn volume on the embedded file store (\`file://\`, a directory on the same temp disk; ${ds.cairnFileUploadSec} s), so Cairn runs on both stores side by side: "Cairn" is Cairn on s3rver, "Cairn (file store)" Cairn on the file store, each with its own chunk cache.` : ''),
    '',
    'Each reader is a "container": a process started with `unshare --mount --propagation private` that mounts the filesystem itself (Cairn: `mount({ foreground: true })` served by that process; s3fs; `rclone mount --daemon`) and runs one reader process inside its namespace. All readers of a group are released together after every mount is ready; aggregate throughput is all bytes read over first start → last finish. TTFB is the time from `open` to the first bytes of the first file (median over readers). Big files are read sequentially with 1 MiB `read`s; small files 8 at a time per reader.',
    '',
    `- **cold**: host chunk cache directory deleted (Cairn) and \`sync; echo 3 > /proc/sys/vm/drop_caches\` before the group (for Cairn on the file store the store's own files are then cold on disk too, as local disk's are); **warm**: right after, the cache filled (new mounts, new processes).`,
    `- References, in the same run and alternating with Cairn (each round runs every system once): local disk (same files after drop_caches), raw AWS SDK GetObject of the same objects from the same s3rver (same reader count, one process each), s3fs and rclone mount of the plain copy (default options, read-only, cold only${peerSmallOnlyOne ? '; small files with 1 reader only' : ''}).`,
    res.method.verify
      ? '- Every reader checks what it reads against the dataset (`bench/verify.ts`): the size of every file, and ' +
        'the SHA-256 of the first 4 KiB of every MiB and the last 4 KiB of every file (sampled: hashing every byte ' +
        'would slow the readers down); a group\'s totals must be its readers × the workload\'s bytes and files. A ' +
        'group that fails a check records a failure, and its figure is left out.'
      : '- The readers of this run counted the bytes they read but did not check them against the dataset ' +
        '(the check came later).',
    `- Each figure is the median of its rounds (${String(res.method.runs)}); ` +
      (res.reads.some((r) => r.runs?.length) ? 'the JSON keeps every round.' : 'this results file keeps no rounds.') +
      (res.method.warmReaderCounts ? ` Warm at ${String(res.method.warmReaderCounts)}.` : ''),
    ...(res.stepSec ? [`- Time per step of this run: ${Object.entries(res.stepSec).map(([k, v]) => `${k} ${v} s`).join(', ')}.`] : []),
    '',
    '## Machine',
    '',
    `${m.cpus} × ${m.cpuModel}, ${m.memGiB} GiB RAM, ${m.kernel}, Node ${m.node}, temp disk ${m.tmpDisk}. s3fs: ${res.peers.s3fs ?? 'not run'}; rclone: ${res.peers.rclone ?? 'not run'}.`,
    'The object store (s3rver, one Node.js process), the daemons and the readers all share these cores, so the ' +
      'absolute figures are this machine\'s, not those of a real S3 endpoint; compare systems by their ratios ' +
      'within one run.',
    '',
    '## Parallel reads',
    '',
    '![aggregate MiB/s per workload](benchmarks.svg)',
    '',
    mdTable(readTable(res)),
    '',
    ...fioSection(res),
  ];
  if (res.writes?.rows.length) {
    md.push(
      '## Writes, commits, metadata',
      '',
      `Each on a fresh volume of the same s3rver, with a detached mount daemon (\`mount()\`), files copied in by \`cp\` in a child process, then a commit over the control socket (what \`cairn commit DIR\` does); the same bytes with \`vol.batchUpload\`, and with the CLI (\`cairn volume create\` + \`cairn volume put\`, two processes).` +
        (volumes.length ? ` For volumes of ${listOf(volumes)} files (64 B each, inlined, in directories of 1,000): mount time (a fresh session: the journal is filled from the log), the commit of one new file and a reload after another writer committed one file (medians of 5, in ms), \`ls -R\` over the mount, \`find DIR -type f\` (stat + readdir of every file; up to 100,000 files), and the daemon's peak RSS (VmHWM) over all of it.` : ''),
      '',
      mdTable([['measure', 'value', 'unit', 'note'], ...res.writes.rows.map((w) => [w.name, fmt(w.value, w.value < 10 ? 2 : 1), w.unit, w.note ?? ''])]),
      '',
    );
  }
  md.push('## Goals', '');
  if (goals.length) md.push(mdTable(goalTable(goals, '**no**')), '');
  else md.push('No goal could be evaluated (references missing).', '');
  const notes = bottlenecks(res, goals);
  if (notes.length) md.push('### Where goals are missed', '', ...notes.map((n) => `- ${n}`), '');
  if (res.failures.length) md.push('## Failures in this run', '', ...res.failures.map((f) => `- ${f}`), '');
  return md.join('\n');
}

/**
 * Publishes one results object: writes it to docs/benchmarks.json, and renders docs/BENCHMARKS.md
 * and docs/benchmarks.svg from it.
 */
export async function renderDocs(res: BenchResults, docsDir: string): Promise<void> {
  await fsp.writeFile(path.join(docsDir, path.basename(PUBLISHED_JSON)), `${JSON.stringify(res, null, 2)}\n`);
  await fsp.writeFile(path.join(docsDir, 'benchmarks.svg'), `${svgChart(res)}\n`);
  await fsp.writeFile(path.join(docsDir, 'BENCHMARKS.md'), renderMarkdown(res));
}

// `node dist/bench/report.js RESULTS.json [DOCS_DIR]` publishes a results file: it becomes
// docs/benchmarks.json, and docs/BENCHMARKS.md and docs/benchmarks.svg are rendered from it.
if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: node dist/bench/report.js RESULTS.json [DOCS_DIR]\n');
    process.exit(2);
  }
  const res = JSON.parse(await fsp.readFile(file, 'utf8')) as BenchResults;
  res.goals = summarizeGoals(res);
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  await renderDocs(res, process.argv[3] ?? path.join(root, 'docs'));
  process.stdout.write(`${table(res)}\n`);
}
