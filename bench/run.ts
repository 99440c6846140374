/**
 * `npm run bench [-- --quick]`: Cairn's benchmark suite in one command.
 *
 * Installs the peers when missing (scripts/bench-setup.sh), starts the object store (bench/s3serve.ts:
 * Ceph RGW when installed, s3rver otherwise) with a fresh temporary CAIRN_HOME, generates the data,
 * then runs the parallel-read matrix (bench/reads.ts), the write/commit/metadata workloads
 * (bench/writes.ts), real programs in a mount against local disk (bench/workloads.ts) and fio jobs
 * through each mount (bench/fio.ts), prints a table,
 * writes JSON to bench/results/<timestamp>.json and, for full runs, publishes it: a copy in
 * docs/benchmarks.json, and docs/BENCHMARKS.md and docs/benchmarks.svg rendered from it
 * (bench/report.ts). Every reader verifies what it reads (bench/verify.ts).
 *
 * Options:
 *   --quick          small data, 1 run per figure (< 3 minutes)
 *   --no-peers       skip s3fs and rclone (and their installation)
 *   --no-writes      skip the write/commit/metadata workloads
 *   --no-workloads   skip the real programs in a mount (git, SQLite, tar, rsync, creates + ls -l, make, venv;
 *                    QUICK sizes with --quick, FULL otherwise)
 *   --no-fio         skip the fio jobs (they are skipped, with the reason recorded, when fio is missing)
 *   --big-mib N      size of the big file in MiB (default 1024; quick 64): the main lever on the suite's duration
 *   --out PATH       JSON file (or directory) to write instead of bench/results/<timestamp>.json
 *   --docs / --no-docs  render docs/ (default: full runs only)
 *   --profile        `node --cpu-prof` one Cairn daemon (cold, 1 reader, big file)
 *   --only cold1     only 1-reader cold reads (both workloads) by Cairn on the S3 store, raw GetObject and s3fs
 *                    (implies --no-writes --no-workloads --no-fio --no-docs): the cheapest measure of the cold read path
 *   --rounds N       rounds of the 1-reader cold figures (default 3 in full runs, 1 with --quick)
 *   CAIRN_BENCH_CEPH_ENDPOINT=http://…  reuse a running RGW (keys S3RVER/S3RVER; a fresh bucket) instead of bootstrapping one
 *   --store s3rver|ceph  the object store: `ceph` is a real Ceph RGW of the run's own (scripts/ceph.sh;
 *                    installed if missing, ~20 s to bootstrap), see bench/s3serve.ts. Default: ceph when
 *                    /usr/bin/radosgw exists, s3rver otherwise; CAIRN_CEPH=0 forces s3rver (bench/stores.ts)
 *
 * Invariant: whatever fails, every mount is unmounted and every child is stopped before exit.
 */
import { execFile } from 'node:child_process';
import { promises as fsp, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { prepareDataset } from './dataset.js';
import { cleanup, MiB, sh, startS3Process, stopS3Process, type S3Endpoint } from './harness.js';
import { fioBench, type FioSystem } from './fio.js';
import { buildFloor } from './fusefloor.js';
import { readBench } from './reads.js';
import type { System, Workload } from './systems.js';
import { summarizeGoals } from './goals.js';
import { PUBLISHED_JSON, renderDocs } from './report.js';
import type { BenchResults } from './results.js';
import { table } from './tables.js';
import { defaultStore, STORE_DESCRIPTIONS, STORE_NAMES, type StoreKind } from './stores.js';
import { FULL, QUICK, runWorkloads } from './workloads.js';
import { writeBench } from './writes.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** The repository root (this file is dist/bench/run.js). */
const ROOT = path.resolve(HERE, '..', '..');

interface Args {
  quick: boolean;
  peers: boolean;
  writes: boolean;
  workloads: boolean;
  fio: boolean;
  bigMiB?: number;
  out?: string;
  docs: boolean;
  profile: boolean;
  only?: 'cold1';
  rounds?: number;
  /** As given; undefined: defaultStore(). */
  store?: StoreKind;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { quick: false, peers: true, writes: true, workloads: true, fio: true, docs: false, profile: false };
  let docs: boolean | undefined;
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i];
    if (x === '--quick') a.quick = true;
    else if (x === '--no-peers') a.peers = false;
    else if (x === '--no-writes') a.writes = false;
    else if (x === '--no-workloads') a.workloads = false;
    else if (x === '--no-fio') a.fio = false;
    else if (x === '--docs') docs = true;
    else if (x === '--no-docs') docs = false;
    else if (x === '--profile') a.profile = true;
    else if (x === '--only=cold1' || (x === '--only' && argv[i + 1] === 'cold1')) {
      if (x === '--only') i++;
      Object.assign(a, { only: 'cold1', writes: false, workloads: false, fio: false });
      docs = false;
    } else if (x === '--rounds' || x.startsWith('--rounds=')) {
      const v = Number(x.includes('=') ? x.slice(x.indexOf('=') + 1) : argv[++i]);
      if (!Number.isInteger(v) || v < 1) throw new Error('--rounds takes a positive whole number');
      a.rounds = v;
    } else if (x === '--big-mib' || x.startsWith('--big-mib=')) {
      const v = Number(x.includes('=') ? x.slice(x.indexOf('=') + 1) : argv[++i]);
      if (!Number.isInteger(v) || v < 1) throw new Error(`--big-mib takes a positive whole number of MiB`);
      a.bigMiB = v;
    } else if (x === '--out') a.out = argv[++i];
    else if (x.startsWith('--out=')) a.out = x.slice(6);
    else if (x === '--store' || x.startsWith('--store=')) {
      const v = x.includes('=') ? x.slice(x.indexOf('=') + 1) : argv[++i];
      if (v !== 's3rver' && v !== 'ceph') throw new Error('--store takes s3rver or ceph');
      a.store = v;
    } else throw new Error(`unknown option ${x} (see the header of bench/run.ts)`);
  }
  a.docs = docs ?? !a.quick;
  return a;
}

const log = (msg: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
};

function has(cmd: string): Promise<string | null> {
  return new Promise((resolve) =>
    execFile(cmd, ['--version'], { timeout: 10_000 }, (err, out, stderr) => resolve(err ? null : (out || stderr).split('\n')[0].trim())),
  );
}

async function machine(): Promise<Record<string, unknown>> {
  const cpus = os.cpus();
  const disk = await sh('df', ['-h', '--output=source,fstype,size', os.tmpdir()]).catch(() => '');
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    tmpDisk: disk.trim().split('\n').slice(1).join(' ').replace(/\s+/g, ' '),
    // Other work on the machine shows here (1, 5, 15 min): the benchmark shares the cores with it.
    loadAvg: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const mode = args.quick ? 'quick' : 'full';
  const store = args.store ?? defaultStore(process.env);

  if (args.peers) {
    await sh('bash', [path.join(ROOT, 'scripts', 'bench-setup.sh')], { timeoutMs: 600_000 }).catch((err) =>
      log(`bench-setup: ${(err as Error).message}`),
    );
  }
  const peers = {
    s3fs: args.peers ? await has('s3fs') : null,
    rclone: args.peers ? await has('rclone') : null,
  };
  const fioVersion = args.fio ? await has('fio') : null;
  const fuseOk = await fsp.access('/dev/fuse').then(
    () => true,
    () => false,
  );

  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'cairn-bench-'));
  workDir = work;
  const home = path.join(work, 'home');
  const cacheDir = path.join(home, 'cache');
  // Cairn on the file store has its own chunk cache, so each Cairn system's cold and warm states are its own.
  const cacheDirs = { cairn: cacheDir, 'cairn-file': path.join(home, 'cache-file') };
  process.env.CAIRN_HOME = home;
  process.env.CAIRN_CACHE_DIR = cacheDir;
  delete process.env.CAIRN_STORE;
  process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
  process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';
  process.env.AWS_REGION ??= 'us-east-1';
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  process.env.CAIRN_BENCH_STORE = store; // read by bench/s3serve.ts
  const env = { ...process.env };

  let s3: S3Endpoint | undefined;
  let code = 0;
  try {
    log(
      `mode ${mode}; store ${store}; work dir ${work}; peers: s3fs ${peers.s3fs ? 'yes' : 'no'}, rclone ${peers.rclone ? 'yes' : 'no'}; fio ${fioVersion ?? 'no'}`,
    );
    if (store === 'ceph') {
      await sh('bash', [path.join(ROOT, 'scripts', 'ceph.sh'), 'install'], { timeoutMs: 600_000 });
    }
    s3 = await startS3Process(env);
    log(`${STORE_NAMES[store]} at ${s3.endpoint}`);
    // Seconds each step took (the suite has a time budget: this shows where it goes).
    const steps: Record<string, number> = {};
    let tStep = performance.now();
    const stepDone = (name: string): void => {
      steps[name] = Math.round((performance.now() - tStep) / 100) / 10;
      tStep = performance.now();
    };
    const ds = await prepareDataset(
      args.quick
        ? { bigBytes: (args.bigMiB ?? 64) * MiB, smallCount: 200, smallBytes: 16 * 1024 }
        : { bigBytes: (args.bigMiB ?? 2048) * MiB, smallCount: 5000, smallBytes: 64 * 1024 },
      work,
      s3,
      log,
    );
    // Full mode, to fit the time budget on 2 cores shared with the object store's processes:
    //  - 16 readers only for Cairn (S3 store) and local disk, and cold only;
    //  - s3fs and rclone read the small files with 1 reader only (the big file with 1 and 4);
    //  - 3 rounds only for the headline comparison, which varies most: 1-reader cold reads through
    //    the S3 store by Cairn (both workloads) and raw GetObject (big file); 1 round for everything else.
    const counts = args.quick ? [1, 4] : [1, 4, 16];
    const peerCounts = [1, 4];
    const threeRounds = (w: Workload, sys: System): boolean => sys === 'cairn' || (sys === 's3get' && w === 'big');
    const runs = (w: Workload, n: number, sys: System, cache: string): number =>
      n === 1 && cache === 'cold' && (args.rounds !== undefined || (!args.quick && threeRounds(w, sys))) ? (args.rounds ?? 3) : 1;
    const runsText = args.quick
      ? '1 per figure'
      : `3 for 1-reader cold reads through ${STORE_NAMES[store]} by Cairn (both workloads) and raw GetObject (big file); 1 for everything else`;
    const readers: Partial<Record<System, number[]>> = { cairn: counts, 'cairn-file': peerCounts, local: counts, s3get: peerCounts };
    if (peers.s3fs) readers.s3fs = peerCounts;
    if (peers.rclone) readers.rclone = peerCounts;
    if (args.only === 'cold1')
      for (const sys of Object.keys(readers) as System[]) readers[sys] = ['cairn', 's3get', 's3fs'].includes(sys) ? [1] : [];
    // The FUSE floor (libfuse's C passthrough over the local copy): what any FUSE mount gets here.
    const floor = fuseOk ? await buildFloor(work) : { error: 'no /dev/fuse' };
    if (typeof floor === 'string') readers.floor = peerCounts;
    else log(`FUSE floor: ${floor.error}`);
    if (args.only === 'cold1') delete readers.floor;
    if (!fuseOk) {
      delete readers.cairn;
      delete readers['cairn-file'];
    }
    stepDone('dataset');
    log('parallel reads');
    const reads = await readBench(ds, {
      runs,
      readers,
      // s3fs and rclone read small files at ~300 files/s: at 4 readers that is ~2 minutes of the budget.
      only: (w, n, sys) => args.quick || !(w === 'small' && n > 1 && (sys === 's3fs' || sys === 'rclone')),
      warm: args.only
        ? {}
        : args.quick
          ? { cairn: peerCounts, 'cairn-file': peerCounts, local: peerCounts, floor: peerCounts, s3get: peerCounts }
          : { cairn: peerCounts, 'cairn-file': peerCounts, local: peerCounts, floor: peerCounts },
      smallConcurrency: 8,
      work,
      env,
      cacheDirs,
      settleMs: args.quick ? 0 : 20_000,
      sessionsDir: path.join(home, 'sessions'),
      log,
      ...(typeof floor === 'string' ? { floorBinary: floor } : {}),
      ...(args.profile ? { cpuProfDir: path.join(work, 'profiles') } : {}),
    });
    stepDone('reads');
    const results: BenchResults = {
      version: 1,
      timestamp: new Date().toISOString(),
      mode,
      durationSec: 0,
      machine: await machine(),
      peers,
      store,
      dataset: {
        bigBytes: ds.bigBytes,
        smallCount: ds.smallCount,
        smallBytes: ds.smallBytes,
        cairnUploadSec: +ds.cairnUploadSec.toFixed(3),
        plainUploadSec: +ds.peerUploadSec.toFixed(3),
        cairnFileUploadSec: +ds.cairnFileUploadSec.toFixed(3),
      },
      method: {
        runs: runsText,
        readerCounts: readers,
        warmReaderCounts: args.quick
          ? '1 and 4 (Cairn on both stores, local disk, the FUSE floor, raw GetObject)'
          : '1 and 4 (Cairn on both stores, local disk, the FUSE floor); 16 readers cold only',
        fio: 'seq (bs=1M, 1 job) and rand (bs=128k, 4 psync jobs) over the big file, 1 run each; Cairn (both stores), local disk and the FUSE floor cold and warm, s3fs and rclone cold',
        smallConcurrency: 8,
        warmAfterOwnCold: true,
        fioWarmup: true,
        verify: 'size of every file; SHA-256 of the first 4 KiB of every MiB and the last 4 KiB of every file',
        store: STORE_DESCRIPTIONS[store],
      },
      stepSec: steps,
      reads: reads.rows,
      failures: [...reads.failures],
      goals: [],
    };
    if (args.profile) results.profile = await summarizeProfile(path.join(work, 'profiles'));
    results.goals = summarizeGoals(results);
    let out = args.out ?? path.join(ROOT, 'bench', 'results', `${results.timestamp.replace(/[:.]/g, '-')}.json`);
    if (!out.endsWith('.json')) out = path.join(out, `${results.timestamp.replace(/[:.]/g, '-')}.json`);
    await fsp.mkdir(path.dirname(out), { recursive: true });
    const save = async (): Promise<void> => {
      results.durationSec = Math.round((performance.now() - t0) / 100) / 10;
      await fsp.writeFile(out, `${JSON.stringify(results, null, 2)}\n`);
    };
    await save(); // the read figures survive a failure in what follows

    if (args.writes && fuseOk) {
      log('writes, commits, metadata');
      results.writes = await writeBench({
        quick: args.quick,
        work,
        env,
        storeUrl: (p: string) => `s3://${s3!.bucket}/${p}?endpoint=${s3!.endpoint}&path_style=true`,
        log,
      });
      results.failures.push(...results.writes.failures);
      results.goals = summarizeGoals(results);
      stepDone('writes');
      await save();
    }
    if (args.workloads && fuseOk) {
      log('real programs in a mount (bench/workloads.ts)');
      const sizes = args.quick ? QUICK : FULL;
      try {
        const w = await runWorkloads({ sizes, print: (line) => log(`workload ${line}`), settleMs: args.quick ? 0 : 20_000 });
        results.workloads = { ...w, sizes, store: 'file' };
        for (const [name, v] of Object.entries(w.verify)) {
          if (v !== 'ok') results.failures.push(`workloads: ${name} after commit and remount: ${v}`);
        }
      } catch (err) {
        // A step that exits non-zero ends the workloads: the run goes on, the failure is recorded.
        results.failures.push(`workloads: ${(err as Error).message.slice(0, 1000)}`);
      }
      results.goals = summarizeGoals(results);
      stepDone('workloads');
      await save();
    }
    // fio last: a peer that stops answering FUSE requests cannot hold up the other workloads.
    const fioSystems: FioSystem[] = [
      ...(fuseOk ? (['cairn', 'cairn-file'] as const) : []),
      'local',
      ...(typeof floor === 'string' ? (['floor'] as const) : []),
      ...(peers.s3fs ? (['s3fs'] as const) : []),
      ...(peers.rclone ? (['rclone'] as const) : []),
    ];
    if (args.fio) {
      log(fioVersion ? 'fio through each mount' : 'fio: not installed, skipped');
      results.fio = await fioBench(ds, {
        quick: args.quick,
        version: fioVersion,
        systems: fioSystems,
        warm: ['cairn', 'cairn-file', 'local', 'floor'],
        cacheDirs,
        ...(typeof floor === 'string' ? { floorBinary: floor } : {}),
        work,
        env,
        sessionsDir: path.join(home, 'sessions'),
        log,
      });
      results.failures.push(...results.fio.failures);
      stepDone('fio');
    }
    results.goals = summarizeGoals(results); // with the fio figures
    await save();
    process.stdout.write(`${table(results)}\n`);
    log(`results: ${out}`);
    if (args.docs) {
      // The gc figures come from a run of their own (bench/gc.ts): the published ones stay.
      const published = await fsp.readFile(path.join(ROOT, PUBLISHED_JSON), 'utf8').then(
        (t) => JSON.parse(t) as BenchResults,
        () => undefined,
      );
      if (published?.gc && !results.gc) results.gc = published.gc;
      results.goals = summarizeGoals(results); // with the gc figures
      await renderDocs(results, path.join(ROOT, 'docs'));
      log(
        `published the results: docs/benchmarks.json, docs/BENCHMARKS.md and docs/benchmarks.svg${results.gc ? ' (with the gc figures published before)' : ''}`,
      );
    }
  } catch (err) {
    log(`FAILED: ${(err as Error)?.stack ?? err}`);
    code = 1;
  } finally {
    await cleanup();
    if (s3) await stopS3Process(s3).catch(() => undefined);
    await fsp.rm(work, { recursive: true, force: true }).catch(() => undefined);
  }
  return code;
}

/** The run's temporary directory (data, file store, cache), removed on every exit path after cleanup(). */
let workDir: string | undefined;

/** Top self-time functions of the recorded daemon profiles (ms). */
async function summarizeProfile(dir: string): Promise<BenchResults['profile']> {
  const files = await fsp.readdir(dir).catch(() => [] as string[]);
  const out: NonNullable<BenchResults['profile']> = [];
  for (const f of files) {
    const prof = JSON.parse(await fsp.readFile(path.join(dir, f), 'utf8')) as {
      nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
      samples: number[];
      timeDeltas: number[];
    };
    const byId = new Map(prof.nodes.map((n) => [n.id, n]));
    const self = new Map<string, number>();
    let total = 0;
    prof.samples.forEach((id, i) => {
      const n = byId.get(id)!;
      const key = `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${n.callFrame.lineNumber + 1}`;
      const dt = (prof.timeDeltas[i] ?? 0) / 1000;
      total += dt;
      self.set(key, (self.get(key) ?? 0) + dt);
    });
    const pct = (ms: number): number => Math.round((ms / total) * 1000) / 10;
    const top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 15);
    // Self time per module (file), the layer view: dist/src/chunks/…, node_modules/…, node:…
    const mods = new Map<string, number>();
    for (const [key, ms] of self) {
      const file = key.slice(key.indexOf(' ') + 1).replace(/:\d+$/, '') || key;
      const mod = file.startsWith('node_modules/')
        ? file
            .split('/')
            .slice(0, file.startsWith('node_modules/@') ? 3 : 2)
            .join('/')
        : file;
      mods.set(mod, (mods.get(mod) ?? 0) + ms);
    }
    out.push({
      file: f,
      totalMs: Math.round(total),
      top: top.map(([fn, ms]) => ({ fn, ms: Math.round(ms), pct: pct(ms) })),
      modules: [...mods.entries()]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 10)
        .map(([fn, ms]) => ({ fn, ms: Math.round(ms), pct: pct(ms) })),
    });
  }
  return out;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    log(`${sig}: cleaning up`);
    // The work directory goes last and synchronously, just before exiting: the step that was running
    // goes on between awaits while the children are stopped, and an earlier, asynchronous rm lost
    // the race with it (a stopped run left its 1.4 GB work directory).
    void cleanup()
      .catch(() => undefined)
      .finally(() => {
        if (workDir) rmSync(workDir, { recursive: true, force: true });
        process.exit(130);
      });
  });
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`${(err as Error)?.stack ?? err}\n`);
    void cleanup().finally(() => process.exit(1));
  },
);
