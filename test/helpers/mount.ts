/**
 * Helpers for tests that use real FUSE mounts: temp mount points, starting daemons in child
 * processes, shell commands run in children, and a teardown that always unmounts.
 *
 * Invariant: the test process never touches a mount synchronously and never serves one; every
 * daemon is a child process, and `stop()` (or `cleanupAll()`) always ends with `fusermount -uz`.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { controlRequest } from '../../src/fuse/control.js';
import { Volume } from '../../src/index.js';
import { spawnNode, waitReport } from '../../src/util/child.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** dist/ of the compiled tree (this file is dist/test/helpers/mount.js). */
export const DIST = path.resolve(HERE, '..', '..');
export const MAIN_JS = path.join(DIST, 'src', 'fuse', 'main.js');

export interface DaemonSpec {
  mountpoint: string;
  volume?: string;
  readOnly?: boolean;
  /** The file store's directory (daemons of one test share it; default: `store` beside the mount point). */
  storeDir?: string;
  commitIntervalSec?: number;
}

export interface RunningDaemon {
  mountpoint: string;
  volume: string;
  pid: number;
  device: string;
  child: ChildProcess;
  /** Everything the daemon wrote on stderr so far. */
  logs(): string;
  /** SIGTERM, wait for exit (then SIGKILL), and `fusermount -uz` regardless. Exit code or null. */
  stop(): Promise<number | null>;
  /** Resolves with the exit code when the daemon exits by itself. */
  exited: Promise<number | null>;
}

/** How a suite starts a daemon (see startFileDaemon). */
export type StartDaemon = (spec: DaemonSpec) => Promise<RunningDaemon>;

const live = new Set<RunningDaemon>();

/** A new empty directory under the OS temp dir. */
export async function tmpDir(prefix = 'cairn-fuse-'): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), prefix));
}

/** `fusermount -uz DIR`, ignoring failures (teardown). */
export function forceUnmount(dir: string): Promise<void> {
  return new Promise((resolve) => execFile('fusermount', ['-uz', dir], () => resolve()));
}

/** Spawns `node SCRIPT JSON` and waits for its ready/error report (src/util/child.ts). */
export async function spawnDaemon(script: string, config: object, spec: DaemonSpec, env: NodeJS.ProcessEnv = {}): Promise<RunningDaemon> {
  const child = spawnNode(script, config, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let err = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (c: string) => (err += c));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let report: Record<string, unknown>;
  try {
    report = await waitReport(child, { name: 'the test daemon', code: 'UNAVAILABLE', timeoutMs: 20_000, tail: () => err });
  } catch (e) {
    // Its own error (a CairnError with its code), or it died or hung: leave nothing mounted.
    await forceUnmount(spec.mountpoint);
    child.kill('SIGKILL');
    throw e;
  }
  const d: RunningDaemon = {
    mountpoint: spec.mountpoint,
    volume: String(report.volume),
    pid: Number(report.pid),
    device: String(report.device),
    child,
    exited,
    logs: () => err,
    async stop() {
      live.delete(d);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(t);
      }
      await forceUnmount(spec.mountpoint);
      return child.exitCode;
    },
  };
  live.add(d);
  return d;
}

/**
 * Creates these volumes in a store if they are missing (a mount serves only an existing volume).
 *
 * @example await createVolumes(`file://${dir}/store`, 'vol');
 */
export async function createVolumes(store: string, ...names: string[]): Promise<void> {
  for (const name of names) await (await Volume.fromName(name, { store, createIfMissing: true })).close();
}

/**
 * Starts `src/fuse/main.js` with a config (`volume`, `mountpoint`, `readOnly`, `commitIntervalSec`
 * from the spec, then `extra(spec)`), as is: the volume must exist in the store `extra` names.
 *
 * @example
 *   const d = await startMainDaemon(() => ({ store }))({ mountpoint: mnt, volume: 'vol' });
 */
export function startMainDaemon(
  extra: (spec: DaemonSpec) => Record<string, unknown> = () => ({}),
  env: NodeJS.ProcessEnv = {},
): StartDaemon {
  return (spec) =>
    spawnDaemon(
      MAIN_JS,
      {
        volume: spec.volume ?? 'vol',
        mountpoint: spec.mountpoint,
        readOnly: !!spec.readOnly,
        commitIntervalSec: spec.commitIntervalSec ?? 0,
        ...extra(spec),
      },
      spec,
      env,
    );
}

/** The file store URL of a spec: `storeDir`, or `store` beside the mount point. */
export function fileStoreOf(spec: DaemonSpec): string {
  return `file://${spec.storeDir ?? path.join(path.dirname(spec.mountpoint), 'store')}`;
}

/**
 * Starts `src/fuse/main.js`, the real session, over the file store of the spec (see fileStoreOf),
 * creating the volume first when it is missing.
 *
 * @example
 *   conformanceSuite('real session, file store', startFileDaemon());
 */
export function startFileDaemon(
  extra: (spec: DaemonSpec) => Record<string, unknown> = () => ({}),
  env: NodeJS.ProcessEnv = {},
): StartDaemon {
  return async (spec) => {
    const store = fileStoreOf(spec);
    const volume = spec.volume ?? 'vol';
    await createVolumes(store, volume);
    return startMainDaemon(() => ({ store, ...extra(spec) }), env)({ ...spec, volume });
  };
}

/** A volume whose files were committed through a first mount (see committedFiles). */
export interface Committed {
  /** The test's temp directory: `mnt`, `mntW` and `store` are in it. */
  base: string;
  /** The mount point for readers (nothing mounted there yet). */
  mnt: string;
  /** The writer's mount point (unmounted again; another writer may use it). */
  mntW: string;
  storeDir: string;
  volume: string;
  /** Starts a daemon of `volume` over `storeDir` (at `mnt` unless told; `env` over the one given). */
  start(mountpoint?: string, env?: NodeJS.ProcessEnv): Promise<RunningDaemon>;
}

/**
 * Writes `files` (volume path -> bytes; parent directories made) through a first mount of a new
 * volume in a new temp directory, commits, unmounts it, and with `emptyCache` empties the host
 * chunk cache (`$CAIRN_HOME/cache`): a new mount then reads them committed and unchanged (a
 * mount's own written files stay staged, read from local disk), cold when the cache was emptied.
 *
 * @example
 *   const c = await committedFiles('vol', { '/big.bin': big }, { env: { CAIRN_FUSE_BINDING: 'native' } });
 *   const d = await c.start(); // reads c.mnt/big.bin
 */
export async function committedFiles(
  volume: string,
  files: Record<string, Buffer>,
  opts: { env?: NodeJS.ProcessEnv; emptyCache?: boolean } = {},
): Promise<Committed> {
  const base = await tmpDir();
  const [mnt, mntW, storeDir] = ['mnt', 'mntW', 'store'].map((n) => path.join(base, n)) as [string, string, string];
  const start = (mountpoint = mnt, env: NodeJS.ProcessEnv = {}): Promise<RunningDaemon> =>
    startFileDaemon(() => ({}), { ...opts.env, ...env })({ mountpoint, volume, storeDir });
  const w = await start(mntW);
  try {
    for (const [p, bytes] of Object.entries(files)) {
      await fsp.mkdir(path.dirname(path.join(mntW, p)), { recursive: true });
      await fsp.writeFile(path.join(mntW, p), bytes);
    }
    await controlRequest(mntW, 'commit');
  } finally {
    await w.stop();
  }
  if (opts.emptyCache) {
    const home = process.env.CAIRN_HOME;
    if (!home) throw new Error('committedFiles: emptyCache needs CAIRN_HOME (import test/helpers/env.js first)');
    await fsp.rm(path.join(home, 'cache'), { recursive: true, force: true });
  }
  return { base, mnt, mntW, storeDir, volume, start };
}

/** Stops every daemon still running (call in `after`). */
export async function cleanupAll(): Promise<void> {
  await Promise.all([...live].map((d) => d.stop()));
}

export interface ShResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a bash command in a child process; never throws for a non-zero exit. */
export function sh(cmd: string, opts: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<ShResult> {
  return new Promise((resolve) => {
    execFile(
      'bash',
      ['-c', cmd],
      { cwd: opts.cwd, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, ...opts.env } },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as any).code === 'number' ? (err as any).code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Runs a bash command and throws (with its stderr) unless it exits 0; returns stdout. */
export async function shOk(cmd: string, opts: { cwd?: string; timeoutMs?: number } = {}): Promise<string> {
  const r = await sh(cmd, opts);
  if (r.code !== 0) throw new Error(`command failed (${r.code}): ${cmd}\n${r.stderr}`);
  return r.stdout;
}

/** Runs a Node script (ESM) in a child process; returns its stdout. */
export async function nodeScript(code: string, opts: { timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', code],
      { timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`node script failed: ${stderr || err.message}`));
        else resolve(stdout);
      },
    );
  });
}

/** Single-quotes a string for bash. */
export function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** sha256 of a file read from start to end in 1 MiB reads (a sequential reader, in a child process) after its pages were dropped. */
export async function freshSha(file: string): Promise<string> {
  const py = `import os,hashlib,sys
fd=os.open(sys.argv[1],os.O_RDONLY); os.posix_fadvise(fd,0,0,os.POSIX_FADV_DONTNEED); h=hashlib.sha256()
while True:
  b=os.read(fd,1<<20)
  if not b: break
  h.update(b)
print(h.hexdigest())`;
  return (await shOk(`python3 -c ${q(py)} ${q(file)}`)).trim();
}

/**
 * The committed bytes of `p` in `volume` of the file store at `storeDir`, read by a fresh reader
 * of the volume (no mount).
 * @example assert.ok((await readVolumeFile(spec.storeDir!, 'vol', '/a.bin')).equals(payload));
 */
export async function readVolumeFile(storeDir: string, volume: string, p: string): Promise<Buffer> {
  const vol = await Volume.fromName(volume, { store: `file://${storeDir}` });
  try {
    const parts: Buffer[] = [];
    for await (const b of vol.readFile(p)) parts.push(b);
    return Buffer.concat(parts);
  } finally {
    await vol.close();
  }
}
