/**
 * Process plumbing for the benchmark driver: the S3 server process, dropping caches, starting
 * groups of readers (plain or in their own mount namespace) that begin together, and a registry
 * of everything started so that teardown always unmounts and kills what is left.
 *
 * Invariants: the driver never reads a mountpoint itself; every child started here is either
 * awaited or killed by `cleanup()`; every mountpoint handed out by `mountDir()` is
 * `fusermount -uz`-ed by `cleanup()` (mounts in private namespaces vanish with their processes).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ContainerSpec } from './container.js';
import type { ReaderResult, ReaderSpec } from './reader.js';
import { specArg } from './specarg.js';
import { mergeRequests, type DaemonCosts, type RequestCost } from './costs.js';
import { DAEMON_NODE_FLAGS } from '../src/fuse/mount.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const READER_JS = path.join(HERE, 'reader.js');
export const CONTAINER_JS = path.join(HERE, 'container.js');
export const S3SERVE_JS = path.join(HERE, 's3serve.js');
/** The `cairn` CLI of this build. */
export const CLI_JS = path.join(HERE, '..', 'src', 'cli', 'main.js');
export const MiB = 1024 * 1024;

const children = new Set<ChildProcess>();
const daemonPids = new Set<number>();
const mountDirs = new Set<string>();
/** Set by cleanup(): nothing new starts afterwards (a signal's cleanup races the running loops). */
let stopping = false;

/** Whether cleanup() has begun. */
export const isStopping = (): boolean => stopping;

function notStopping(): void {
  if (stopping) throw new Error('the benchmark is stopping');
}

/** Runs a command; resolves with its stdout, rejects with its stderr. */
export function sh(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 600_000, maxBuffer: 64 * MiB }, (err, out, stderr) =>
      err ? reject(new Error(`${cmd} ${args.join(' ')} failed: ${stderr || err.message}`)) : resolve(out),
    ),
  );
}

/** `sync; echo 3 > /proc/sys/vm/drop_caches` (root). Returns false when not permitted. */
export async function dropCaches(): Promise<boolean> {
  try {
    await sh('sh', ['-c', 'sync; echo 3 > /proc/sys/vm/drop_caches']);
    return true;
  } catch {
    return false;
  }
}

/** A fresh mountpoint path under `root`, remembered for teardown. */
export async function mountDir(root: string, name: string): Promise<string> {
  notStopping();
  const dir = path.join(root, name);
  await fsp.mkdir(dir, { recursive: true });
  mountDirs.add(dir);
  return dir;
}

export interface S3Endpoint {
  endpoint: string;
  bucket: string;
  url: string;
  child: ChildProcess;
}

/** Starts bench/s3serve.js and waits for its endpoint line. */
export async function startS3Process(env: NodeJS.ProcessEnv): Promise<S3Endpoint> {
  const child = spawn(process.execPath, [S3SERVE_JS], { stdio: ['pipe', 'pipe', 'inherit'], env });
  children.add(child);
  const line = await firstLine(child, 180_000); // a Ceph RGW bootstraps in ~20 s, more on a loaded machine
  const info = JSON.parse(line) as { endpoint: string; bucket: string; url: string };
  return { ...info, child };
}

/** Stops the S3 process (closing its stdin asks it to stop; SIGKILL after 10 s). */
export async function stopS3Process(s3: S3Endpoint): Promise<void> {
  s3.child.stdin?.end();
  await waitExit(s3.child, 10_000);
}

function waitExit(child: ChildProcess, ms: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), ms);
    child.once('exit', () => {
      clearTimeout(t);
      children.delete(child);
      resolve();
    });
  });
}

function firstLine(child: ChildProcess, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: child.stdout! });
    const t = setTimeout(() => reject(new Error('child did not report in time')), timeoutMs);
    rl.once('line', (l) => {
      clearTimeout(t);
      rl.close();
      resolve(l);
    });
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`child exited (${code}) before reporting`));
    });
  });
}

/**
 * One JSON line of a participant (bench/reader.ts, bench/container.ts): `ready` (with the mount
 * time and the peer daemon's pid), then `result` (a reader's figures, or a container's fio
 * report), or `error` with a message.
 */
export interface Message extends Partial<ReaderResult> {
  event?: string;
  message?: string;
  peer?: boolean;
  daemonPid?: number;
  mountMs?: number;
  daemonHwmKiB?: number;
  fio?: unknown;
  /** A Cairn container's daemon CPU and request costs (bench/costs.ts). */
  costs?: DaemonCosts;
}

/** A started participant of a group: waits for `ready`, then `go`, then yields its result. */
interface Participant {
  child: ChildProcess;
  next(): Promise<Message>;
}

function participant(cmd: string, args: string[], env: NodeJS.ProcessEnv): Participant {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
  children.add(child);
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (c: string) => {
    stderr = (stderr + c).slice(-4000);
  });
  const rl = readline.createInterface({ input: child.stdout! });
  const queue: string[] = [];
  const waiters: ((l: string | null) => void)[] = [];
  rl.on('line', (l) => (waiters.length ? waiters.shift()!(l) : queue.push(l)));
  // 'close' (not 'exit'): stdout may still hold the last lines when the process has exited.
  let closed = false;
  rl.on('close', () => {
    closed = true;
    while (waiters.length) waiters.shift()!(null);
  });
  child.on('exit', () => children.delete(child));
  return {
    child,
    async next() {
      const l = queue.length ? queue.shift()! : await new Promise<string | null>((r) => (closed ? r(null) : waiters.push(r)));
      if (l === null)
        throw new Error(`participant exited (${child.exitCode}) without a report: ${stderr.trim().split('\n').slice(-6).join('\n')}`);
      try {
        return JSON.parse(l) as Message;
      } catch {
        throw new Error(`participant said: ${l}`);
      }
    },
  };
}

export interface GroupMember {
  result: ReaderResult;
  mountMs?: number;
  daemonHwmKiB?: number;
  costs?: DaemonCosts;
}

export interface GroupResult {
  members: GroupMember[];
  /** Aggregate over the group: bytes and files of all readers over first start → last end. */
  seconds: number;
  bytes: number;
  files: number;
  MiBps: number;
  filesPerSec: number;
  /** Median over readers of first byte − start, ms. */
  ttfbMs: number;
  mountMs?: number;
  daemonHwmMiB?: number;
  /** Cairn: CPU seconds of the serving daemons per GiB read, and their requests by type. */
  cpuSecPerGiB?: number;
  requests?: Record<string, RequestCost>;
  /** Idle fraction of the host's CPUs just before the group started (bench/settle.ts). */
  hostIdle?: number | null;
}

export type Member = { kind: 'plain'; reader: ReaderSpec } | { kind: 'container'; spec: ContainerSpec; nodeArgs?: string[] };

/**
 * Starts every member, waits until all are ready, releases them at once and gathers results.
 * Any failure kills the whole group (containers unmount on SIGTERM) and rethrows.
 */
export async function runGroup(members: Member[], env: NodeJS.ProcessEnv): Promise<GroupResult> {
  notStopping();
  const parts = members.map((m) =>
    m.kind === 'plain'
      ? participant(process.execPath, [READER_JS, specArg(m.reader)], env)
      : participant(
          'unshare',
          [
            '--mount',
            '--propagation',
            'private',
            process.execPath,
            ...DAEMON_NODE_FLAGS,
            ...(m.nodeArgs ?? []),
            CONTAINER_JS,
            specArg(m.spec),
          ],
          env,
        ),
  );
  try {
    const ready = await Promise.all(parts.map((p) => p.next()));
    for (const r of ready) {
      if (r.event !== 'ready') throw new Error(`not ready: ${r.message ?? JSON.stringify(r)}`);
      if (r.peer && typeof r.daemonPid === 'number' && r.daemonPid > 0) daemonPids.add(r.daemonPid);
    }
    for (const p of parts) p.child.stdin!.write('go\n');
    const results = await Promise.all(parts.map((p) => p.next()));
    for (const r of results) if (r.event !== 'result') throw new Error(`reader failed: ${r.message ?? JSON.stringify(r)}`);
    await Promise.all(parts.map((p) => waitExit(p.child, 30_000)));
    const out: GroupMember[] = results.map((r, i) => ({
      result: readerResult(r),
      mountMs: ready[i].mountMs,
      daemonHwmKiB: r.daemonHwmKiB,
      ...(r.costs ? { costs: r.costs } : {}),
    }));
    return aggregate(out);
  } catch (err) {
    for (const p of parts) if (p.child.exitCode === null) p.child.kill('SIGTERM');
    await Promise.all(parts.map((p) => waitExit(p.child, 15_000)));
    throw err;
  }
}

/** A reader's figures from its `result` line (a line without all of them is a failure). */
function readerResult(r: Message): ReaderResult {
  const { startMs, firstByteMs, endMs, bytes, files } = r;
  if (startMs === undefined || firstByteMs === undefined || endMs === undefined || bytes === undefined || files === undefined) {
    throw new Error(`reader result without its figures: ${JSON.stringify(r)}`);
  }
  return { startMs, firstByteMs, endMs, bytes, files };
}

/**
 * Runs one container (bench/container.ts) alone: waits for `ready`, sends `go`, returns both
 * reports (the result is the container's raw `result` message, e.g. a fio report). Failures kill
 * the container (it unmounts on SIGTERM) and rethrow.
 */
export async function runContainer(spec: ContainerSpec, env: NodeJS.ProcessEnv): Promise<{ ready: Message; result: Message }> {
  const argv = ['--mount', '--propagation', 'private', process.execPath, ...DAEMON_NODE_FLAGS, CONTAINER_JS, JSON.stringify(spec)];
  const p = participant('unshare', argv, env);
  try {
    const ready = await p.next();
    if (ready.event !== 'ready') throw new Error(`not ready: ${ready.message ?? JSON.stringify(ready)}`);
    if (ready.peer && typeof ready.daemonPid === 'number' && ready.daemonPid > 0) daemonPids.add(ready.daemonPid);
    p.child.stdin!.write('go\n');
    const result = await p.next();
    if (result.event !== 'result') throw new Error(`container failed: ${result.message ?? JSON.stringify(result)}`);
    await waitExit(p.child, 30_000);
    return { ready, result };
  } catch (err) {
    if (p.child.exitCode === null) p.child.kill('SIGTERM');
    await waitExit(p.child, 15_000);
    throw err;
  }
}

export function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;

function aggregate(members: GroupMember[]): GroupResult {
  const start = Math.min(...members.map((m) => m.result.startMs));
  const end = Math.max(...members.map((m) => m.result.endMs));
  const seconds = Math.max(1e-6, (end - start) / 1000);
  const bytes = members.reduce((a, m) => a + m.result.bytes, 0);
  const files = members.reduce((a, m) => a + m.result.files, 0);
  const mounts = members.map((m) => m.mountMs).filter((x): x is number => typeof x === 'number');
  const hwm = members.map((m) => m.daemonHwmKiB).filter((x): x is number => typeof x === 'number');
  const costs = members.map((m) => m.costs).filter((x): x is DaemonCosts => !!x);
  return {
    members,
    seconds: round(seconds, 3),
    bytes,
    files,
    MiBps: round(bytes / MiB / seconds),
    filesPerSec: round(files / seconds),
    ttfbMs: round(median(members.map((m) => m.result.firstByteMs - m.result.startMs)), 2),
    ...(mounts.length ? { mountMs: round(median(mounts)) } : {}),
    ...(hwm.length ? { daemonHwmMiB: round(Math.max(...hwm) / 1024) } : {}),
    ...(costs.length && bytes > 0 ? { cpuSecPerGiB: round(costs.reduce((a, c) => a + c.cpuSec, 0) / (bytes / 2 ** 30), 2) } : {}),
    ...(costs.length ? { requests: mergeRequests(costs.map((c) => c.requests)) } : {}),
  };
}

const hooks = new Set<() => void | Promise<void>>();

/** Registers something for `cleanup()` to stop first (e.g. a fio run); returns its deregistration. */
export function atCleanup(fn: () => void | Promise<void>): () => void {
  hooks.add(fn);
  return () => hooks.delete(fn);
}

/** Kills every child still running and every recorded daemon, and lazily unmounts every dir. */
export async function cleanup(): Promise<void> {
  stopping = true;
  for (const fn of [...hooks]) await Promise.resolve(fn()).catch(() => undefined);
  hooks.clear();
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  await Promise.all([...children].map((c) => waitExit(c, 10_000)));
  for (const pid of daemonPids) {
    // Only a peer daemon (s3fs / rclone) that is still that process.
    const cmd = await fsp.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (/s3fs|rclone/.test(cmd)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  daemonPids.clear();
  for (const dir of mountDirs) await sh('fusermount', ['-uz', dir]).catch(() => undefined);
}
