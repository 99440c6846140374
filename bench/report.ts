/**
 * The published page of benchmark results: docs/benchmarks.json (the results of one run),
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
import { svgChart } from './chart.js';
import { summarizeGoals, volumeRows } from './goals.js';
import type { ReadRow } from './reads.js';

/** When a warm group ran: right after its own cold group, or (results before 2026-12-01) after every cold group. */
function warmWhen(res: BenchResults): string {
  return res.method.warmAfterOwnCold
    ? "right after the same system's cold group (before another system's cold group drops the page cache)"
    : "after every system's cold group at that size; each cold group starts with `drop_caches`, so a warm group " +
        "read its files (local disk's, Cairn's host chunk cache) from disk, not from the page cache";
}

/** The Method line on how quiet the host was before the read groups (bench/settle.ts), when the results say. */
function hostIdleLine(reads: ReadRow[]): string[] {
  const xs = reads.flatMap((r) => (r.runs ?? []).map((g) => g.hostIdle)).filter((x): x is number => typeof x === 'number');
  if (xs.length === 0) return [];
  const sorted = [...xs].sort((a, b) => a - b);
  const pct = (x: number): string => `${Math.round(x * 100)} %`;
  return [
    `- Before each group the bench waited (up to 20 s) for the host's CPUs to be 80 % idle (\`bench/settle.ts\`): ` +
      `idle before the groups, median ${pct(sorted[Math.floor(sorted.length / 2)]!)}, lowest ${pct(sorted[0]!)} ` +
      `(each group's \`hostIdle\` is in the JSON). Workload steps run \`sync\` and wait the same way before each side.`,
  ];
}
import { findRead, type BenchResults, type GcResults, type Goal } from './results.js';
import { storeOf, STORE_NAMES } from './stores.js';
import { NAMES, type Cache, type System, type Workload } from './systems.js';
import { costTable, fioTable, fmt, goalTable, mdTable, readTable, table } from './tables.js';
import { floorNote, programsSection } from './programsreport.js';
import { gcSection } from './gcreport.js';

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
    systems.map((sys) => findRead(res.reads, w, sys, cache, 1)).filter((r): r is ReadRow => !!r);
  const prof = (name: string) => res.profile?.find((p) => p.file.startsWith(name));
  const profText = (p: ReturnType<typeof prof>): string => {
    if (!p) return '';
    const mods = (p.modules ?? []).slice(0, 5).map((t) => `${t.fn || '(native)'} ${t.pct}%`);
    const idle = p.top.find((t) => t.fn.startsWith('(idle)'))?.pct ?? 0;
    return ` Daemon profile (${p.totalMs} ms sampled): ${mods.join(', ')}, idle ${idle}%.`;
  };
  const cpus = String(res.machine.cpus);
  const load = res.machine.loadAvg as number[] | undefined;
  const store = STORE_NAMES[storeOf(res)];

  const c1 = findRead(res.reads, 'big', 'cairn', 'cold', 1);
  if (c1 && missed.some((g) => g.goal.startsWith('cold big'))) {
    const refs = rows('big', 'cold', ['s3get', 's3fs', 'rclone', 'local']);
    const cf = findRead(res.reads, 'big', 'cairn-file', 'cold', 1);
    const s3refs = refs.filter((r) => r.system !== 'local');
    const fileKeepsUp = !!cf && s3refs.length > 0 && s3refs.every((r) => cf.MiBps >= r.MiBps);
    notes.push(
      `**Cold big-file reads**, 1 reader: Cairn on ${store} ${c1.MiBps} MiB/s; ` +
        `${refs.map((r) => `${NAMES[r.system]} ${r.MiBps} MiB/s (Cairn ${pctOf(c1.MiBps, r.MiBps)} of it)`).join(', ')}.` +
        (cf
          ? ` Cairn on the file store, the same mount code with another store, reads ${cf.MiBps} MiB/s cold` +
            ` (${times(cf.MiBps, c1.MiBps)} Cairn on ${store})` +
            (fileKeepsUp
              ? `, faster than every reference reading from ${store}: the gap is on Cairn's path to ${store}, not in the mount`
              : '') +
            '.'
          : '') +
        (storeOf(res) === 'ceph'
          ? ` Ceph RGW (a monitor, an OSD and radosgw) shares the ${cpus} cores with the daemon and the reader.`
          : ` s3rver is one Node.js process sharing the ${cpus} cores with the daemon and the reader.`) +
        profText(prof('cairn-big-cold-1r')),
    );
  }
  const w1 = findRead(res.reads, 'big', 'cairn', 'warm', 1);
  if (w1 && missed.some((g) => g.goal.startsWith('warm'))) {
    const others = rows('big', 'warm', ['cairn-file', 'local']).map((r) => `${NAMES[r.system]} ${r.MiBps} MiB/s`);
    notes.push(
      `**Warm reads** give ${w1.MiBps} MiB/s for 1 reader (goal 1024 per reader)` +
        `${others.length ? `; warm, 1 reader: ${others.join(', ')}` : ''}. ` +
        "A warm read through a fresh mount is answered by the native addon's worker threads from the host chunk " +
        'cache, in 1 MiB requests, each chunk verified with BLAKE3 before a byte of it is served (docs/CHUNKS.md, ' +
        '"Native cached reads"); its CPU goes to the hash, the copy of the cache file into the addon\'s buffer and ' +
        "the answer's copy into the kernel. Re-reads come from the page cache." +
        profText(prof('cairn-big-warm-1r')),
    );
  }
  const s1 = findRead(res.reads, 'small', 'cairn', 'cold', 1);
  if (s1 && missed.some((g) => g.goal.startsWith('cold small'))) {
    const sg = findRead(res.reads, 'small', 's3get', 'cold', 1);
    const sf = findRead(res.reads, 'small', 's3fs', 'cold', 1);
    const sw = findRead(res.reads, 'small', 'cairn', 'warm', 1);
    const warmBest = rows('small', 'warm', ['cairn', 'cairn-file']).sort((a, b) => b.filesPerSec - a.filesPerSec)[0];
    const fps = (r: ReadRow): string => `${fmt(r.filesPerSec, 0)} files/s`;
    const inFlight = res.method.smallConcurrency ? `, ${String(res.method.smallConcurrency)} in flight` : '';
    notes.push(
      `**Small files (cold)**, 1 reader: Cairn ${fps(s1)}` +
        (sg ? `, ${times(s1.filesPerSec, sg.filesPerSec)} raw GetObject (${fps(sg)}, one GET per file${inFlight})` : '') +
        (sf ? `, ${times(s1.filesPerSec, sf.filesPerSec)} s3fs (${fps(sf)})` : '') +
        (sw ? `; warm ${fps(sw)}, so cold reaches ${pctOf(s1.filesPerSec, sw.filesPerSec)} of warm` : '') +
        ". Cairn fetches a small file's pack neighbours with it (one range GET per 4 MiB of pack), so it is not " +
        'bound by one GET per file. Each file also costs four FUSE requests (a LOOKUP, answered in JavaScript, ' +
        "which registers the file for native opens; then OPEN, READ and RELEASE, answered on the addon's threads " +
        'for a committed, unchanged file; the kernel keeps entries and attributes, invalidated exactly on reload)' +
        (warmBest
          ? `; warm reads, which never reach the store, reach ${fps(warmBest)} at best in this run (${NAMES[warmBest.system]})`
          : '') +
        ". Ten times s3fs cold is bound by the store round trips of the pack blocks and the daemon's CPU per file.",
    );
  }
  const slow = missed.filter((g) => g.workload === 'programs' && g.ratio !== undefined && g.target.startsWith('≤'));
  if (slow.length) {
    const worst = [...slow].sort((a, b) => b.ratio! - a.ratio!).slice(0, 3);
    const ops = Object.entries((res.workloads?.fuseOpStats ?? {}) as Record<string, { n: number; totalMs: number }>)
      .sort((a, b) => b[1].totalMs - a[1].totalMs)
      .slice(0, 5)
      .map(([op, x]) => `${op} ${x.n} × (${fmt(x.totalMs, 0)} ms)`);
    notes.push(
      `**Real programs in a mount**: ${slow.length} timed step(s) over their goal; the slowest against local disk: ` +
        `${worst.map((g) => `${g.goal.replace(/ \(ms, mount vs local disk\)$/, '')} ${fmt(g.ratio, 2)}× (${fmt(g.cairn, 0)} vs ${fmt(g.reference, 0)} ms)`).join('; ')}. ` +
        'Each step is a few thousand to a few hundred thousand FUSE requests (lookups, creates, setattrs, fsyncs), each a ' +
        'round trip through the kernel and the daemon, where local disk answers from the kernel alone' +
        (ops.length ? `; the FUSE requests of this run that took longest in total: ${ops.join(', ')}.` : '.') +
        floorNote(res, slow),
    );
  }
  if (missed.some((g) => g.workload === 'metadata')) {
    notes.push(
      'Metadata goals: commit and reload cost O(change) (one record), and bootstrap and checkpoints run in child ' +
        "processes, so neither latency nor the daemon's memory is meant to grow with the volume; a miss here needs " +
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
        `groups included: ${store}, the daemons and the readers share the cores), so rounds vary: single-round ` +
        'figures are less reliable than medians.' +
        (spreads.length ? ` Rounds of the figures measured more than once ranged: ${spreads.join('; ')}.` : ''),
    );
  }
  return notes;
}

/** The "fio through each mount" section of docs/BENCHMARKS.md (empty for results without fio). */
/** Cairn's daemon CPU per GiB and µs per request by type (issue 14), when the run recorded them. */
function costSection(res: BenchResults): string[] {
  const t = costTable(res);
  if (!t) return [];
  return [
    '## Daemon costs per request',
    '',
    "Cairn's serving daemon (the benchmark container's own process) over each group: CPU seconds (`process.cpuUsage`) per GiB read, and per FUSE request type the mean time from the adapter's call to its answer and the count (the mount's metrics; `read_native`: READs the native addon answered from verified chunks on its own threads, never entering JavaScript, timed there). Summed over the group's daemons and its rounds.",
    '',
    mdTable(t),
    '',
  ];
}

function fioSection(res: BenchResults): string[] {
  const fio = res.fio;
  if (!fio) return [];
  const out = ['## fio through each mount', ''];
  if (!fio.rows.length) return [...out, `Not run: ${fio.skipped ?? 'every job failed (see Failures)'}.`, ''];
  out.push(
    `${fio.version}, read-only jobs over the big file (${res.dataset.bigBytes / 2 ** 20} MiB), each inside a ` +
      "container's mount namespace (the same `bench/container.ts` as the readers, fio in place of the reader) for " +
      `Cairn on both stores, s3fs and rclone mount${fio.rows.some((r) => r.system === 'floor') ? ", the FUSE floor (the local copy through libfuse's C passthrough)" : ''}, and directly on the local copy for local disk:`,
    '',
    '- **seq**: sequential read, 1 MiB blocks, one job: `fio ' + fio.jobs.seq + '`',
    '- **rand**: random read, 128 KiB blocks (the largest request FUSE passes by default, so one fio read is one FUSE request), 4 jobs with psync (iodepth 1 each), aggregated: `fio ' +
      fio.jobs.rand +
      '`',
    '',
    'Cold and warm as for the read matrix (cold: chunk cache deleted for Cairn, `drop_caches` for every system; ' +
      "warm: right after the same system's cold job, same offsets" +
      (res.method.fioWarmup
        ? '; for Cairn the big file is first put in the host cache with `cairn volume warmup`, as a cold random job cut short by `--runtime` leaves most of it out'
        : '') +
      "). One run per figure. Latencies are fio's " +
      'completion latency percentiles of one read; `*` marks a job stopped by `--runtime` before its `--io_size`. ' +
      'fio counts the bytes it reads but cannot check random data, so unlike the readers these jobs do not verify ' +
      "content. Cairn's ratios are of MiB/s, to the same job and cache state (s3fs and rclone: cold only).",
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
  const store = STORE_NAMES[storeOf(res)];
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
    'npm run bench -- --no-workloads  # skip the real programs in a mount (git, SQLite, tar, rsync, creates, make, venv)',
    'npm run bench -- --store s3rver  # the object store: ceph (Ceph RGW, the default when /usr/bin/radosgw exists) or s3rver',
    "npm run bench -- --big-mib 512  # a smaller big file: the main lever on the suite's duration",
    'npm run bench -- --profile    # also `node --cpu-prof` one Cairn daemon (1 reader, big file, cold and warm)',
    'node dist/bench/report.js bench/results/<timestamp>.json   # publish a results file: docs/benchmarks.json and this page',
    '```',
    '',
    "Modules: `bench/run.ts` (driver), `bench/reads.ts` (read matrix), `bench/fio.ts` (fio jobs through each mount), `bench/fioexec.ts` (one fio process), `bench/writes.ts` (writes, commits, metadata), `bench/workloads.ts` (real programs in a mount), `bench/fusefloor.ts` (the FUSE floor: libfuse's C passthrough over local disk), `bench/container.ts` (one reader in its own mount namespace), `bench/reader.ts` (the reader), `bench/costs.ts` (a Cairn daemon's CPU and µs per request), `bench/verify.ts` (what readers check), `bench/harness.ts` (processes, barrier, teardown), `bench/dataset.ts`, `bench/s3serve.ts`, `bench/stores.ts` (which object store), `bench/systems.ts` (systems, workloads, cache states), `bench/results.ts` (the results file), `bench/goals.ts`, `bench/tables.ts`, `bench/chart.ts`, `bench/report.ts` (this page, with `bench/programsreport.ts` and `bench/gcreport.ts`). `test/bench/quick.test.ts` runs the quick mode and checks the JSON (never speed); `test/bench/report.test.ts` checks goals and tables on a fixed results file; `test/bench/verify.test.ts` the readers' checks. `bench/store.ts` and `bench/chunks.ts` are separate micro-benchmarks of the store and chunk layers; `bench/nread.ts` compares warm reads through fresh native mounts with native cached reads on and off.",
    '',
    '## Method',
    '',
    '`npm run bench` (or `npm run bench -- --quick`) installs the peers if missing (`scripts/bench-setup.sh`: s3fs, rclone, fio), ' +
      (storeOf(res) === 'ceph'
        ? 'brings up a Ceph RGW of its own on loopback (`scripts/ceph.sh`: one monitor, one bluestore OSD on a sparse file, radosgw; pools of size 1)'
        : "starts s3rver on loopback behind the test harness's conditional-write proxy") +
      ', uses a fresh temporary `CAIRN_HOME`, and generates random data:',
    '',
    `- **big**: one ${ds.bigBytes / 2 ** 20} MiB file; **small**: ${ds.smallCount} files of ${ds.smallBytes / 1024} KiB in one directory; the peers mount the prefix of each workload (plain/big, plain/small).`,
    `- The same bytes are uploaded twice to the same bucket: into a Cairn volume with \`vol.batchUpload\` (${ds.cairnUploadSec} s) and as plain objects under another prefix (${ds.plainUploadSec} s) for the references.` +
      (ds.cairnFileUploadSec !== undefined
        ? ` They also go into a Cairn volume on the embedded file store (\`file://\`, a directory on the same temp disk; ${ds.cairnFileUploadSec} s), so Cairn runs on both stores side by side: "Cairn" is Cairn on ${store}, "Cairn (file store)" Cairn on the file store, each with its own chunk cache.`
        : ''),
    '',
    'Each reader is a "container": a process started with `unshare --mount --propagation private` that mounts the filesystem itself (Cairn: `mount({ foreground: true })` served by that process; s3fs; `rclone mount --daemon`) and runs one reader process inside its namespace. All readers of a group are released together after every mount is ready; aggregate throughput is all bytes read over first start → last finish. TTFB is the time from `open` to the first bytes of the first file (median over readers). Big files are read sequentially with 1 MiB `read`s; small files 8 at a time per reader.',
    '',
    `- **cold**: host chunk cache directory deleted (Cairn) and \`sync; echo 3 > /proc/sys/vm/drop_caches\` before the group (for Cairn on the file store the store's own files are then cold on disk too, as local disk's are); **warm**: ${warmWhen(res)}, the cache filled (new mounts, new processes).`,
    `- References, in the same run and alternating with Cairn (each round runs every system once): local disk (same files after drop_caches), raw AWS SDK GetObject of the same objects from the same ${store} (same reader count, one process each), s3fs and rclone mount of the plain copy (default options, read-only, cold only${peerSmallOnlyOne ? '; small files with 1 reader only' : ''})` +
      (res.reads.some((r) => r.system === 'floor')
        ? "; the FUSE floor: the local copy through libfuse's own C passthrough (`passthrough_ll` from libfuse3-dev's examples, built by the bench, `-o cache=always`; `bench/fusefloor.ts`), a fresh mount per group, cold and warm as local disk: what any FUSE file system reaches on this machine."
        : '.'),
    res.method.verify
      ? '- Every reader checks what it reads against the dataset (`bench/verify.ts`): the size of every file, and ' +
        'the SHA-256 of the first 4 KiB of every MiB and the last 4 KiB of every file (sampled: hashing every byte ' +
        "would slow the readers down); a group's totals must be its readers × the workload's bytes and files. A " +
        'group that fails a check records a failure, and its figure is left out.'
      : '- The readers of this run counted the bytes they read but did not check them against the dataset ' + '(the check came later).',
    `- Each figure is the median of its rounds (${String(res.method.runs)}); ` +
      (res.reads.some((r) => r.runs?.length) ? 'the JSON keeps every round.' : 'this results file keeps no rounds.') +
      (res.method.warmReaderCounts ? ` Warm at ${String(res.method.warmReaderCounts)}.` : ''),
    ...hostIdleLine(res.reads),
    ...(res.stepSec
      ? [
          `- Time per step of this run: ${Object.entries(res.stepSec)
            .map(([k, v]) => `${k} ${v} s`)
            .join(', ')}.`,
        ]
      : []),
    '',
    '## Machine',
    '',
    `${m.cpus} × ${m.cpuModel}, ${m.memGiB} GiB RAM, ${m.kernel}, Node ${m.node}, temp disk ${m.tmpDisk}. s3fs: ${res.peers.s3fs ?? 'not run'}; rclone: ${res.peers.rclone ?? 'not run'}.`,
    `The object store (${storeOf(res) === 'ceph' ? 'Ceph RGW: a monitor, an OSD and radosgw' : 's3rver, one Node.js process'}), the daemons and the readers all share these cores, so the ` +
      "absolute figures are this machine's, not those of a real S3 endpoint; compare systems by their ratios " +
      'within one run.',
    '',
    '## Parallel reads',
    '',
    '![aggregate MiB/s per workload](benchmarks.svg)',
    '',
    mdTable(readTable(res)),
    '',
    ...fioSection(res),
    ...costSection(res),
  ];
  if (res.writes?.rows.length) {
    md.push(
      '## Writes, commits, metadata',
      '',
      `Each on a fresh volume of the same ${store}, with a detached mount daemon (\`mount()\`), files copied in by \`cp\` in a child process, then a commit over the control socket (what \`cairn commit DIR\` does); the same \`cp\` to local disk and through the FUSE floor, for reference; the same bytes with \`vol.batchUpload\`, and with the CLI (\`cairn volume create\` + \`cairn volume put\`, two processes).` +
        (volumes.length
          ? ` For volumes of ${listOf(volumes)} files (64 B each, inlined, in directories of 1,000): mount time (a fresh session: the journal is filled from the log), the commit of one new file and a reload after another writer committed one file (medians of 5, in ms), \`ls -R\` over the mount, \`find DIR -type f\` (stat + readdir of every file; up to 100,000 files), and the daemon's peak RSS (VmHWM) over all of it.`
          : ''),
      '',
      mdTable([
        ['measure', 'value', 'unit', 'note'],
        ...res.writes.rows.map((w) => [w.name, fmt(w.value, w.value < 10 ? 2 : 1), w.unit, w.note ?? '']),
      ]),
      '',
    );
  }
  md.push(...programsSection(res));
  md.push(...gcSection(res));
  md.push('## Goals', '');
  if (res.reads.some((r) => r.system === 'floor'))
    md.push(
      "Where a goal is an absolute figure of warm reads, its reference is the FUSE floor's figure for the same reads " +
        "(libfuse's C passthrough over local disk, fresh mount, files in the page cache: what any FUSE mount reaches here).",
      '',
    );
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
// `node dist/bench/report.js --gc GC.json [DOCS_DIR]` adds the output of bench/gc.ts to the
// published results (as `gc`) and renders the page again.
if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const gcMode = process.argv[2] === '--gc';
  const args = process.argv.slice(gcMode ? 3 : 2);
  const file = args[0];
  if (!file) {
    process.stderr.write(
      'usage: node dist/bench/report.js RESULTS.json [DOCS_DIR]\n       node dist/bench/report.js --gc GC.json [DOCS_DIR]\n',
    );
    process.exit(2);
  }
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  const docs = args[1] ?? path.join(root, 'docs');
  const read = async (f: string): Promise<unknown> => JSON.parse(await fsp.readFile(f, 'utf8')) as unknown;
  const res = gcMode
    ? ((await read(path.join(docs, path.basename(PUBLISHED_JSON)))) as BenchResults)
    : ((await read(file)) as BenchResults);
  if (gcMode) res.gc = (await read(file)) as GcResults;
  res.goals = summarizeGoals(res);
  await renderDocs(res, docs);
  process.stdout.write(`${table(res)}\n`);
}
