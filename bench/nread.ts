/**
 * Warm reads through fresh native mounts, with and without native cached reads (issue 14):
 * `node dist/bench/nread.js [--big-mib 1024] [--rounds 2]`. Prints one JSON object on stdout.
 *
 * A file-store volume holds one big file and 5,000 × 64 KiB files (batchUpload). The host chunk
 * cache is filled once; then, rotating three modes — native reads loading warm chunks from the host
 * cache on the addon's threads (the default), native reads fed by JavaScript only
 * (`CAIRN_FUSE_NCACHE=0`), reads in JavaScript (`CAIRN_FUSE_NREAD_BYTES=0`) — each
 * workload runs against a new mount daemon (`src/fuse/main.js`, read-only, native binding,
 * `CAIRN_FUSE_OPSTATS=1`): big file, 1 reader (`dd bs=1M`); small files, 8 readers (`xargs -P 8
 * cat`); fio random 128 KiB × 4 jobs (64 MiB each). Per run: MiB/s or files/s, the daemon's CPU
 * seconds per GiB read (/proc/PID/stat) and µs per request by type (its fuseOpStats line, with
 * READ_NATIVE for reads the addon answered). Local disk runs the same commands on the local copy
 * after `drop_caches` (as the main bench's local disk). `--profile DIR`: a CPU profile of each daemon;
 * `--only big|small|fio`: one workload; `--modes ncache,js`: only those modes;
 * `--base DIR --modes ncache,base`: before/after against another build's daemon; `--fio-after-cold`:
 * each fio run follows the same fio through a mount of its mode with the host cache emptied (as the main bench's warm
 * fio; with `--only fio`).
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { spawn } from 'node:child_process';
import { nodeArgs, waitReport } from '../src/util/child.js';
import { execFio } from './fioexec.js';
import { controlRequest } from '../src/fuse/control.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const MAIN_JS = path.join(HERE, '..', 'src', 'fuse', 'main.js');
const SMALL_FILES = 5000;
const SMALL_BYTES = 64 << 10;
const CLK_TCK = 100;

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const log = (m: string): void => void process.stderr.write(`[nread] ${m}\n`);

function sh(cmd: string): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('bash', ['-c', cmd], { maxBuffer: 64 << 20 }, (err, out, errOut) =>
      err ? reject(new Error(`${cmd}: ${errOut}`)) : resolve(out),
    ),
  );
}

/** utime + stime of a process, seconds. */
async function cpuOf(pid: number): Promise<number> {
  const f = (await fsp.readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

interface Daemon {
  pid: number;
  child: ChildProcess;
  stop(): Promise<Record<string, { n: number; totalMs: number; avgUs: number }>>;
}

type Mode = 'ncache' | 'nread' | 'js' | 'base';
const MODE_ENV: Record<Mode, Record<string, string>> = {
  ncache: {},
  base: {},
  nread: { CAIRN_FUSE_NCACHE: '0' },
  js: { CAIRN_FUSE_NREAD_BYTES: '0' },
};
const MODE_NAME: Record<Mode, string> = {
  ncache: 'Cairn, native reads + host cache',
  nread: 'Cairn, native reads fed by JS',
  js: 'Cairn, reads in JS',
  base: 'Cairn, native reads + host cache, --base build',
};
/** `--base DIR`: mode `base` runs the daemon of another build (a worktree copy with dist/ and native/build) for before/after. */
const baseAt = process.argv.indexOf('--base');
const BASE_MAIN_JS = baseAt > 0 ? path.join(process.argv[baseAt + 1]!, 'dist', 'src', 'fuse', 'main.js') : MAIN_JS;

async function startDaemon(store: string, mountpoint: string, mode: Mode): Promise<Daemon> {
  await fsp.mkdir(mountpoint, { recursive: true });
  const env = { ...process.env, CAIRN_FUSE_BINDING: 'native', CAIRN_FUSE_OPSTATS: '1', ...MODE_ENV[mode] };
  const config = { volume: 'bench', store, mountpoint, readOnly: true, commitIntervalSec: 0 };
  // --profile DIR: `node --cpu-prof` each daemon into DIR.
  const prof = process.argv.indexOf('--profile');
  const flags = prof > 0 ? ['--cpu-prof', `--cpu-prof-dir=${process.argv[prof + 1]}`] : [];
  const child = spawn(process.execPath, [...flags, ...nodeArgs(mode === 'base' ? BASE_MAIN_JS : MAIN_JS, config)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  const ready = await waitReport(child, { name: 'the bench daemon', code: 'UNAVAILABLE', timeoutMs: 60_000, tail: () => err });
  const exited = new Promise((r) => child.once('exit', r));
  return {
    pid: Number(ready.pid),
    child,
    async stop() {
      child.kill('SIGTERM');
      await exited;
      const line = err.split('\n').find((l) => l.includes('"fuseOpStats"'));
      return line
        ? (JSON.parse(line.slice(line.indexOf('{'))) as { fuseOpStats: Record<string, { n: number; totalMs: number; avgUs: number }> })
            .fuseOpStats
        : {};
    },
  };
}

interface Run {
  system: string;
  workload: string;
  mibps: number;
  filesPerSec?: number;
  cpuSecPerGiB?: number;
  usPerRequest?: Record<string, number>;
  requests?: Record<string, number>;
  /** Bytes the addon hashed (verifying host-cache loads) per byte it served. */
  hashedPerServed?: number;
  /** Outboards (`<hash>.ob`) the addon wrote: a sequential reader should write none. */
  outboardsWritten?: number;
}

async function timed(cmd: string): Promise<number> {
  const t0 = performance.now();
  await sh(cmd);
  return (performance.now() - t0) / 1000;
}

const WORKLOADS = ['big 1 reader', 'small 8 readers', 'fio rand 128k x4'] as const;
type Workload = (typeof WORKLOADS)[number];

async function runWorkload(w: Workload, dir: string, bigBytes: number): Promise<{ sec: number; bytes: number; files?: number }> {
  if (w === 'big 1 reader') return { sec: await timed(`dd if=${dir}/big.bin of=/dev/null bs=1M status=none`), bytes: bigBytes };
  if (w === 'small 8 readers') {
    const sec = await timed(`cd ${dir}/small && ls | xargs -P 8 -n ${SMALL_FILES / 8} cat > /dev/null`);
    return { sec, bytes: SMALL_FILES * SMALL_BYTES, files: SMALL_FILES };
  }
  const io = 64 << 20;
  const args = [
    '--name=rand',
    '--readonly',
    '--allow_file_create=0',
    '--ioengine=psync',
    '--thread',
    '--direct=0',
    '--invalidate=0',
    `--size=${bigBytes}`,
    '--group_reporting',
    '--output-format=json',
    '--rw=randread',
    '--bs=128k',
    '--numjobs=4',
    `--io_size=${io}`,
    `--filename=${dir}/big.bin`,
    '--randseed=42',
  ];
  const t0 = performance.now();
  await execFio(args).report;
  return { sec: (performance.now() - t0) / 1000, bytes: 4 * io };
}

async function main(): Promise<void> {
  const bigMiB = arg('--big-mib', 1024);
  const rounds = arg('--rounds', 2);
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'cairn-nread-bench-'));
  process.env.CAIRN_HOME = path.join(work, 'home');
  const local = path.join(work, 'local');
  await fsp.mkdir(path.join(local, 'small'), { recursive: true });
  log(`dataset: ${bigMiB} MiB + ${SMALL_FILES} × 64 KiB in ${work}`);
  const fh = await fsp.open(path.join(local, 'big.bin'), 'w');
  for (let i = 0; i < bigMiB; i += 16) await fh.write(randomBytes(16 << 20));
  await fh.close();
  for (let i = 0; i < SMALL_FILES; i++)
    await fsp.writeFile(path.join(local, 'small', `f${String(i).padStart(5, '0')}`), randomBytes(SMALL_BYTES));
  const storeDir = path.join(work, 'store');
  await fsp.mkdir(storeDir);
  const store = pathToFileURL(storeDir).href;
  const { Volume } = await import('../src/index.js');
  const vol = await Volume.fromName('bench', { store, createIfMissing: true });
  await vol.batchUpload({ force: true }, (b) => {
    b.putFile(path.join(local, 'big.bin'), '/big.bin');
    b.putDirectory(path.join(local, 'small'), '/small');
  });
  await vol.close();
  const bigBytes = bigMiB << 20;
  const runs: Run[] = [];
  // --only big|small|fio: one workload.
  const onlyAt = process.argv.indexOf('--only');
  const only = onlyAt > 0 ? process.argv[onlyAt + 1] : undefined;
  const workloads = WORKLOADS.filter((w) => !only || w.startsWith(only));
  if (process.argv.includes('--fio-after-cold') && only !== 'fio')
    throw new Error('--fio-after-cold empties the host cache: use it with --only fio');

  log('local disk (after drop_caches)');
  for (const w of workloads) {
    await sh('sync; echo 3 > /proc/sys/vm/drop_caches');
    const r = await runWorkload(w, local, bigBytes);
    runs.push({
      system: 'local disk',
      workload: w,
      mibps: r.bytes / 2 ** 20 / r.sec,
      ...(r.files ? { filesPerSec: r.files / r.sec } : {}),
    });
  }

  let n = 0;
  const mnt = (): string => path.join(work, `mnt${n++}`);
  log('filling the host chunk cache');
  {
    const m = mnt();
    const d = await startDaemon(store, m, 'js');
    await sh(`cat ${m}/big.bin > /dev/null; cat ${m}/small/* > /dev/null`);
    await d.stop();
    log(`host chunk cache: ${(await sh(`du -sm ${process.env.CAIRN_HOME}/cache | cut -f1`)).trim()} MiB`);
  }
  for (let round = 0; round < rounds; round++) {
    // --modes ncache,js: only those modes (default all three).
    const modesAt = process.argv.indexOf('--modes');
    const modes: Mode[] = modesAt > 0 ? (process.argv[modesAt + 1]!.split(',') as Mode[]) : ['ncache', 'nread', 'js'];
    for (const on of [...modes.slice(round % modes.length), ...modes.slice(0, round % modes.length)]) {
      for (const w of workloads) {
        if (w === 'fio rand 128k x4' && process.argv.includes('--fio-after-cold')) {
          // As the main bench: the host cache emptied, the same fio cold through a mount of this mode, then warm through a new one.
          await fsp.rm(path.join(process.env.CAIRN_HOME!, 'cache'), { recursive: true, force: true });
          const mc = mnt();
          const dc = await startDaemon(store, mc, on);
          await runWorkload(w, mc, bigBytes);
          await dc.stop();
        }
        const m = mnt();
        const d = await startDaemon(store, m, on);
        const cpu0 = await cpuOf(d.pid);
        const r = await runWorkload(w, m, bigBytes);
        const cpu = (await cpuOf(d.pid)) - cpu0;
        // Bytes the addon hashed per byte it served (host-cache loads: whole chunks, or verified blocks).
        const st = (await controlRequest(m, 'status').catch(() => undefined)) as { nativeReads?: Record<string, number> } | undefined;
        const nr = st?.nativeReads;
        const hashed = nr ? (nr.cacheHashed ?? nr.cacheLoadBytes ?? 0) : 0;
        const ops = await d.stop();
        const run: Run = {
          system: MODE_NAME[on],
          workload: w,
          mibps: r.bytes / 2 ** 20 / r.sec,
          ...(r.files ? { filesPerSec: r.files / r.sec } : {}),
          cpuSecPerGiB: cpu / (r.bytes / 2 ** 30),
          usPerRequest: Object.fromEntries(Object.entries(ops).map(([k, v]) => [k, v.avgUs])),
          requests: Object.fromEntries(Object.entries(ops).map(([k, v]) => [k, v.n])),
          ...(nr?.servedBytes ? { hashedPerServed: Math.round((hashed / nr.servedBytes) * 100) / 100 } : {}),
          ...(nr?.cacheOutboardPuts !== undefined ? { outboardsWritten: nr.cacheOutboardPuts } : {}),
        };
        runs.push(run);
        log(JSON.stringify(run));
      }
    }
  }
  process.stdout.write(`${JSON.stringify({ bigMiB, rounds, runs }, null, 1)}\n`);
  await fsp.rm(work, { recursive: true, force: true });
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
