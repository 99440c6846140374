/**
 * Real-program workloads on a mount and on local disk in the same run (issue 20): git (init,
 * add, commit, status, clone over N files), SQLite (rows in transactions, rollback journal and
 * WAL), tar extract and create of a generated tree, `rsync -a` in and a no-op second `rsync -a`,
 * N creates then `ls -l`, `make -j2` of C files and a no-op rebuild, `python3 -m venv`. Each step
 * is timed on local disk, on the FUSE floor (libfuse's C passthrough over local disk, a fresh
 * mount per workload: bench/fusefloor.ts) and on a fresh Cairn mount (the real session on the embedded file store,
 * `src/fuse/main.js` as `cairn mount` starts it); one JSON line per step with the ratios
 * mount/local and mount/floor, then one line of integrity checks made after a commit and a
 * remount (git fsck, integrity_check, tar -d, the no-op rsync, make -q, counts).
 *
 * Usage: node dist/bench/workloads.js [--quick] [--only=git,sqlite,tar,rsync,creates,make,venv] [--cpu-prof]
 *   --quick      smaller sizes (CI)
 *   --cpu-prof   the daemon runs with `node --cpu-prof`; the profile directory is printed
 *   CAIRN_FUSE_OPSTATS=1 (passed to the daemon): per-FUSE-op counts and µs in the last JSON line
 *
 * Invariants: this process never touches the mount itself (every step is a child process); the
 * daemon it starts is stopped (SIGTERM: final commit, unmount) and `fusermount -uz`-ed at exit.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { controlRequest } from '../src/fuse/control.js';
import { terminate } from '../src/util/child.js';
import { DAEMON_NODE_FLAGS } from '../src/fuse/mount.js';
import { Volume } from '../src/index.js';
import { FuseFloor } from './fusefloor.js';
import { settle } from './settle.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const MAIN_JS = path.resolve(HERE, '..', 'src', 'fuse', 'main.js');

export interface WorkloadSizes {
  gitFiles: number;
  sqliteRows: number;
  treeEntries: number;
  creates: number;
  /** C files of the make workload. */
  cFiles: number;
}

export const FULL: WorkloadSizes = { gitFiles: 2000, sqliteRows: 100_000, treeEntries: 18_000, creates: 10_000, cFiles: 50 };
export const QUICK: WorkloadSizes = { gitFiles: 300, sqliteRows: 10_000, treeEntries: 2_000, creates: 1_000, cFiles: 10 };

/** One timed step, on local disk and on the mount. */
export interface StepResult {
  workload: string;
  step: string;
  localMs: number;
  mountMs: number;
  /** mountMs / localMs. */
  ratio: number;
  /** The same step on the FUSE floor (bench/fusefloor.ts), when it could be built. */
  floorMs?: number;
  /** mountMs / floorMs: what Cairn costs beyond any FUSE file system's round trips. */
  floorRatio?: number;
  /** Idle fraction of the host's CPUs before the local and the mount run (bench/settle.ts). */
  hostIdle?: [number | null, number | null];
  /** What the step's command printed (trimmed), when it reports a figure (e.g. rsync's changes). */
  out?: string;
}

interface Step {
  name: string;
  /** A bash command run with the working directory as $W and the shared sources in $S. */
  cmd: string;
  /** Keep the command's output in the result (a count, a check). */
  report?: boolean;
}

interface Workload {
  name: string;
  steps: Step[];
  /** Checks after commit and remount: a bash command that exits 0 when the result is intact. */
  verify: string;
}

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** Runs a bash command; resolves with its stdout and wall time, rejects on a non-zero exit. */
function bash(cmd: string, env: NodeJS.ProcessEnv = {}): Promise<{ out: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) =>
    execFile(
      'bash',
      ['-c', `set -eo pipefail\n${cmd}`],
      { env: { ...process.env, ...env }, maxBuffer: 256 << 20, timeout: 3_600_000 },
      (err, out, stderr) => (err ? reject(new Error(`failed: ${cmd}\n${stderr}`)) : resolve({ out, ms: performance.now() - t0 })),
    ),
  );
}

/** A Python script generating a tree of `n` entries (dirs of 30, files of 0.5–16 KiB, some symlinks) in $1. */
const TREE_PY = `
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
random.seed(20)
made, d = 0, 0
while made < n:
    dp = os.path.join(root, 'd%03d' % (d // 20), 'e%03d' % d)
    os.makedirs(dp)
    made += 1 if d % 20 else 2
    for i in range(29):
        if made >= n: break
        p = os.path.join(dp, 'f%02d.txt' % i)
        if i == 28:
            os.symlink('f00.txt', p)
        else:
            with open(p, 'wb') as f: f.write(random.randbytes(random.randint(512, 16384)))
            os.utime(p, (1.6e9 + made, 1.6e9 + made + 0.123456789))
        made += 1
    d += 1
`;

/** A Makefile and `n` C files (each a few functions) in $1. */
const MAKE_SH = `
mkdir -p "$1" && cd "$1"
for i in $(seq 1 "$2"); do
  { echo "#include <stdio.h>"; for j in $(seq 1 40); do echo "int f\${i}_\${j}(int x) { return x * $j + $i; }"; done; } > "c$i.c"
done
{ echo 'SRC := $(wildcard *.c)'; echo 'all: prog'
  echo 'prog: $(SRC:.c=.o)'; printf '\tcc -shared -o $@ $^\n'
  echo '%.o: %.c'; printf '\tcc -O1 -fPIC -c -o $@ $<\n'; } > Makefile
`;

/**
 * The SQLite load: `rows` rows in transactions of 1,000, then a rolled-back delete and an index
 * (`--append`: into the table an earlier run made, with 0 rows).
 */
const SQLITE_PY = `
import sqlite3, sys, os
db, mode, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
con = sqlite3.connect(db, isolation_level=None, timeout=30)
con.execute('PRAGMA journal_mode=' + mode)
if '--append' not in sys.argv: con.execute('CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v BLOB)')
for s in range(0, rows, 1000):
    con.execute('BEGIN')
    con.executemany('INSERT INTO t(k, v) VALUES (?, ?)', ((f'k{i}', os.urandom(64)) for i in range(s, min(rows, s + 1000))))
    con.execute('COMMIT')
con.execute('BEGIN'); con.execute('DELETE FROM t WHERE id % 2 = 0'); con.execute('ROLLBACK')
con.execute('CREATE INDEX IF NOT EXISTS tk ON t(k)')
print(con.execute('SELECT count(*) FROM t').fetchone()[0])
con.close()
`;

/** A reader polling the table's row count every 10 ms until killed (the concurrent-reader case). */
const READER_PY = `
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], timeout=30)
n = 0
while True:
    try:
        con.execute('SELECT count(*) FROM t').fetchone()
        n += 1
    except sqlite3.OperationalError:
        pass
    time.sleep(0.01)
`;

function workloads(z: WorkloadSizes): Workload[] {
  const git = 'git -c user.name=bench -c user.email=b@e -c init.defaultBranch=main -c gc.auto=0';
  return [
    {
      name: 'creates',
      steps: [
        {
          name: `create ${z.creates}`,
          cmd: `mkdir "$W/c" && cd "$W/c" && python3 -c "import sys\nfor i in range(${z.creates}): open('f%05d' % i, 'w').close()"`,
        },
        { name: `ls -l ${z.creates}`, cmd: `ls -l "$W/c" | wc -l`, report: true },
      ],
      verify: `test "$(ls "$W/c" | wc -l)" = ${z.creates}`,
    },
    {
      name: 'tar',
      steps: [
        { name: `extract ${z.treeEntries}`, cmd: `mkdir "$W/t" && tar -C "$W/t" -xf "$S/tree.tar"` },
        { name: `create ${z.treeEntries}`, cmd: `tar -C "$W/t" -cf - . | wc -c`, report: true },
      ],
      verify: `tar -C "$W/t" -df "$S/tree.tar"`,
    },
    {
      name: 'rsync',
      steps: [
        { name: `rsync -a ${z.treeEntries}`, cmd: `rsync -a "$S/tree/" "$W/r/"` },
        // Prints the number of changes, then the first few (none expected).
        {
          name: 'no-op rsync -a',
          cmd: `rsync -a --itemize-changes "$S/tree/" "$W/r/" | awk '{ n++; if (n <= 5) l = l " " $0 } END { print n + 0 l }'`,
          report: true,
        },
      ],
      verify: `c=$(rsync -a --itemize-changes "$S/tree/" "$W/r/"); test -z "$c" || { echo "$c" | head -5 >&2; false; }`,
    },
    {
      name: 'git',
      steps: [
        { name: 'init', cmd: `mkdir "$W/g" && cp -a "$S/gitsrc/." "$W/g/" && cd "$W/g" && ${git} init -q` },
        { name: `add -A ${z.gitFiles}`, cmd: `cd "$W/g" && ${git} add -A` },
        { name: 'commit', cmd: `cd "$W/g" && ${git} commit -qm one` },
        { name: 'status', cmd: `cd "$W/g" && ${git} status --porcelain | wc -l`, report: true },
        { name: 'clone', cmd: `${git} clone -q "$W/g" "$W/g2"` },
      ],
      verify: `cd "$W/g" && git fsck --no-progress && test -z "$(git status --porcelain)" && cd "$W/g2" && git fsck --no-progress`,
    },
    {
      name: 'make',
      steps: [
        { name: `make -j2 ${z.cFiles} C files`, cmd: `cp -a "$S/mk" "$W/mk" && make -s -C "$W/mk" -j2` },
        { name: 'no-op make', cmd: `make -C "$W/mk" -j2 --no-print-directory | { grep -c '^cc' || true; }`, report: true },
      ],
      verify: `make -q -C "$W/mk"`,
    },
    {
      name: 'venv',
      steps: [{ name: 'python3 -m venv', cmd: `python3 -m venv "$W/venv"` }],
      verify: `"$W/venv/bin/python" -c 'import pip'`,
    },
    ...(['delete', 'wal'] as const).map((mode) => ({
      name: `sqlite-${mode}`,
      steps: [{ name: `${z.sqliteRows} rows`, cmd: `python3 "$S/load.py" "$W/${mode}.db" ${mode} ${z.sqliteRows}`, report: true }],
      verify: `test "$(sqlite3 "$W/${mode}.db" 'PRAGMA integrity_check; SELECT count(*) FROM t')" = "ok
${z.sqliteRows}"`,
    })),
    {
      name: 'sqlite-wal-reader',
      steps: [
        {
          name: `${z.sqliteRows} rows, a reader polling`,
          // The reader is killed however the load ends (and holds no pipe the bench waits on).
          cmd:
            `python3 "$S/load.py" "$W/rd.db" wal 0 >/dev/null; python3 "$S/reader.py" "$W/rd.db" >/dev/null 2>&1 & ` +
            `trap "kill $! 2>/dev/null" EXIT; python3 "$S/load.py" "$W/rd.db" wal ${z.sqliteRows} --append`,
          report: true,
        },
      ],
      verify: `test "$(sqlite3 "$W/rd.db" 'PRAGMA integrity_check; SELECT count(*) FROM t')" = "ok
${z.sqliteRows}"`,
    },
  ];
}

/** A Cairn mount daemon (main.js) of a fresh volume on a file store. */
class Daemon {
  private child?: ChildProcess;
  private err = '';
  constructor(
    private readonly mountpoint: string,
    private readonly store: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly nodeArgs: string[],
  ) {}

  async start(): Promise<void> {
    const config = {
      volume: 'workloads',
      mountpoint: this.mountpoint,
      store: `file://${this.store}`,
      commitIntervalSec: 0,
    };
    // The daemon serves an existing volume only.
    await (await Volume.fromName(config.volume, { store: config.store, createIfMissing: true })).close();
    const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, ...this.nodeArgs, MAIN_JS, JSON.stringify(config)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...this.env },
    });
    this.child = child;
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (this.err += c));
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.setEncoding('utf8').on('data', (c: string) => {
        out += c;
        if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')));
      });
      child.on('exit', (code) => reject(new Error(`daemon exited (${code}): ${this.err}`)));
    });
    if (JSON.parse(line).event !== 'ready') throw new Error(`daemon failed: ${line}`);
  }

  /** SIGTERM (final commit), wait; returns the daemon's stderr. */
  async stop(): Promise<string> {
    const c = this.child;
    if (c) await terminate(c, 60_000);
    await bash(`fusermount -uz ${q(this.mountpoint)} 2>/dev/null || true`);
    this.child = undefined;
    return this.err;
  }
}

/** Per-op FUSE statistics the daemon logged at unmount (CAIRN_FUSE_OPSTATS=1), if any. */
function opStats(log: string): unknown {
  const line = log
    .split('\n')
    .reverse()
    .find((l) => l.includes('"fuseOpStats"'));
  return line ? JSON.parse(line).fuseOpStats : undefined;
}

/** What a run measured: the steps, and the checks after commit and remount. */
export interface WorkloadsResult {
  steps: StepResult[];
  /** Workload name -> 'ok' or 'FAILED …'. */
  verify: Record<string, string>;
  /** The commit of everything the workloads wrote. */
  commitMs: number;
  /** Per-FUSE-op counts and times (CAIRN_FUSE_OPSTATS=1 in the environment), if any. */
  fuseOpStats?: unknown;
  /** Why the FUSE floor was not measured, when it was not. */
  floorError?: string;
}

/**
 * Runs the workloads and prints JSON lines: one per step, then `{ "verify": ... }`.
 *
 * @example
 *   const { steps, verify } = await runWorkloads({ sizes: QUICK });
 */
export async function runWorkloads(o: {
  sizes: WorkloadSizes;
  only?: string[];
  cpuProf?: boolean;
  print?: (l: string) => void;
  /** The longest wait for a quiet host before each side of a step (bench/settle.ts); 0: none. */
  settleMs?: number;
}): Promise<WorkloadsResult> {
  const print = o.print ?? ((l: string) => console.log(l));
  const base = await fsp.mkdtemp(path.join(os.tmpdir(), 'cairn-workloads-'));
  const S = path.join(base, 'src');
  const local = path.join(base, 'local');
  const M = path.join(base, 'mnt');
  const profDir = path.join(base, 'prof');
  const home = path.join(base, 'home');
  await Promise.all([S, local, M, home].map((d) => fsp.mkdir(d, { recursive: true })));
  const env = { CAIRN_HOME: home };
  const daemon = new Daemon(M, path.join(base, 'store'), env, o.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []);
  const list = workloads(o.sizes).filter((w) => !o.only || o.only.some((n) => w.name.startsWith(n)));
  const results: StepResult[] = [];
  let floor: FuseFloor | undefined;
  let floorError: string | undefined;
  try {
    const built = await FuseFloor.build(base);
    if (built instanceof FuseFloor) await (floor = built).start();
    else print(JSON.stringify({ floorError: (floorError = built.error) }));
    await fsp.writeFile(path.join(S, 'tree.py'), TREE_PY);
    await fsp.writeFile(path.join(S, 'load.py'), SQLITE_PY);
    await fsp.writeFile(path.join(S, 'make.sh'), MAKE_SH);
    await fsp.writeFile(path.join(S, 'reader.py'), READER_PY);
    await bash(
      `cd ${q(S)} && python3 tree.py tree ${o.sizes.treeEntries} && tar -C tree -cf tree.tar . && ` +
        `python3 tree.py gitsrc ${o.sizes.gitFiles} && bash make.sh mk ${o.sizes.cFiles}`,
    );
    await daemon.start();
    for (const [i, w] of list.entries()) {
      // The floor's inodes (one descriptor each in passthrough_ll) go with a fresh mount per workload.
      if (floor && i > 0) await floor.stop().then(() => floor!.start());
      for (const st of w.steps) {
        // Each side starts with no dirty pages of the step before (the local side's writeback
        // otherwise lands in the next step: tar -x on local disk took 0.3 to 6 s in one session)
        // and on a quiet host (bench/settle.ts).
        const quiet = async () => (await bash('sync', {}), await settle({ maxMs: o.settleMs ?? 0 }));
        const lIdle = await quiet();
        const l = await bash(st.cmd, { W: local, S });
        const f = floor && (await quiet(), await bash(st.cmd, { W: floor.mountpoint, S }));
        const mIdle = await quiet();
        const m = await bash(st.cmd, { W: M, S });
        const r: StepResult = {
          workload: w.name,
          step: st.name,
          localMs: Math.round(l.ms),
          mountMs: Math.round(m.ms),
          ratio: Math.round((m.ms / l.ms) * 100) / 100,
          ...(f ? { floorMs: Math.round(f.ms), floorRatio: Math.round((m.ms / f.ms) * 100) / 100 } : {}),
          hostIdle: [lIdle.idle, mIdle.idle],
        };
        if (st.report) r.out = m.out.trim() === l.out.trim() ? m.out.trim() : `${m.out.trim()} (local ${l.out.trim()})`;
        results.push(r);
        print(JSON.stringify(r));
      }
    }
    const commit0 = performance.now();
    await controlRequest(M, 'commit');
    const commitMs = Math.round(performance.now() - commit0);
    const log = await daemon.stop();
    await daemon.start();
    const verify: Record<string, string> = {};
    for (const w of list) {
      verify[w.name] = await bash(w.verify, { W: M, S }).then(
        () => 'ok',
        (e: Error) => `FAILED ${e.message.slice(0, 300)}`,
      );
    }
    const fuseOpStats = opStats(log);
    print(JSON.stringify({ verify, commitMs, fuseOpStats, ...(o.cpuProf ? { cpuProfDir: profDir } : {}) }));
    return { steps: results, verify, commitMs, fuseOpStats, ...(floorError ? { floorError } : {}) };
  } finally {
    await daemon.stop();
    await floor?.stop();
    if (!o.cpuProf) await fsp.rm(base, { recursive: true, force: true }).catch(() => undefined);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const only = args
    .find((a) => a.startsWith('--only='))
    ?.slice('--only='.length)
    .split(',');
  const quick = args.includes('--quick');
  runWorkloads({ sizes: quick ? QUICK : FULL, only, cpuProf: args.includes('--cpu-prof'), settleMs: quick ? 0 : 20_000 }).then(
    (r) => {
      if (Object.values(r.verify).some((v) => v !== 'ok')) process.exitCode = 1;
    },
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exitCode = 1;
    },
  );
}
