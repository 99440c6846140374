/**
 * One benchmark "container": run under `unshare --mount --propagation private`, so it has its own
 * mount namespace. It mounts the filesystem under test itself (a Cairn mount served on this
 * process's event loop, an `s3fs` / `rclone mount` daemon, or libfuse's passthrough_ll over local
 * disk: the FUSE floor, ./fusefloor.ts), starts one reader process
 * (bench/reader.ts) inside the namespace, and relays the start barrier and the result.
 * In fio mode (`spec.fio`, bench/fio.ts) it runs one read-only fio job over a file of the mount
 * instead of the reader.
 *
 * Protocol on stdout (one JSON line each): `{"event":"ready","mountMs":..,"daemonPid":..}` once
 * mounted and the reader is waiting; then, after a `go` line on stdin, `{"event":"result",
 * ...ReaderResult, "daemonHwmKiB":..}` (fio mode: `{"event":"result","fio":<fio's JSON report>,
 * "daemonHwmKiB":..}`); or `{"event":"error","message":..}`.
 *
 * Invariants: this process never touches the mountpoint with file I/O (it may serve it); every
 * exit path unmounts with `fusermount -uz`, and SIGTERM triggers the same teardown.
 *
 * Usage: unshare --mount --propagation private node dist/bench/container.js '<json ContainerSpec>'
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { execFio, type FioProcess } from './fioexec.js';
import { measureCosts, type DaemonCosts } from './costs.js';
import { floorCommand } from './fusefloor.js';
import { readSpecArg, specArg } from './specarg.js';
import type { ReaderSpec } from './reader.js';

export type MountKind = 'cairn' | 's3fs' | 'rclone' | 'floor';

export interface ContainerSpec {
  kind: MountKind;
  mountpoint: string;
  /** Cairn: the volume and its store URL. */
  volume?: string;
  store?: string;
  /** Cairn: the host chunk cache directory (`$CAIRN_CACHE_DIR`; default: inherited). */
  cacheDir?: string;
  /** s3fs / rclone: bucket, prefix (no slashes at the ends), endpoint, credential files. */
  bucket?: string;
  prefix?: string;
  endpoint?: string;
  passwdFile?: string;
  rcloneConfig?: string;
  /** floor: the passthrough_ll binary (./fusefloor.ts) and the local directory it serves. */
  floorBinary?: string;
  source?: string;
  /** Reader spec; `files` are relative to the mountpoint. Exactly one of `reader` and `fio`. */
  reader?: ReaderSpec;
  /** fio mode: fio's arguments (without `--filename`) and the file to read, relative to the mountpoint. */
  fio?: { args: string[]; file: string };
}

const HERE = path.dirname(fileURLToPath(import.meta.url));
const READER_JS = path.join(HERE, 'reader.js');

const emit = (o: object): void => {
  process.stdout.write(`${JSON.stringify(o)}\n`);
};

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { env, timeout: 120_000 }, (err, _o, stderr) =>
      err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`)) : resolve(),
    ),
  );
}

async function isMounted(dir: string): Promise<boolean> {
  const text = await fsp.readFile('/proc/self/mountinfo', 'utf8');
  return text.split('\n').some((l) => l.split(' ')[4] === dir);
}

async function waitMounted(dir: string, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await isMounted(dir))) {
    if (Date.now() > end) throw new Error(`${dir} not mounted after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The pid of a daemon whose command line names `needle` (s3fs/rclone fork into the background). */
async function findPid(needle: string): Promise<number | undefined> {
  for (const name of await fsp.readdir('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    const cmd = await fsp.readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(needle) && !cmd.includes('container.js')) return Number(name);
  }
  return undefined;
}

async function hwmKiB(pid: number): Promise<number | undefined> {
  const text = await fsp.readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const m = /VmHWM:\s+(\d+)/.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** Waits for the `go` line on stdin. */
async function waitGo(): Promise<void> {
  const stdin = readline.createInterface({ input: process.stdin });
  await new Promise<void>((resolve) => stdin.once('line', () => resolve()));
  stdin.close();
}

async function main(): Promise<void> {
  const spec = readSpecArg<ContainerSpec>(process.argv[2]);
  const mnt = path.resolve(spec.mountpoint);
  await fsp.mkdir(mnt, { recursive: true });
  let close: () => Promise<void> = async () => undefined;
  let reader: ChildProcess | undefined;
  let fioRun: FioProcess | undefined;
  let tornDown = false;
  /** A peer's daemon (s3fs, rclone: they fork into the background). */
  let peerPid: number | undefined;
  const teardown = async (): Promise<void> => {
    if (tornDown) return;
    tornDown = true;
    if (reader && reader.exitCode === null) reader.kill('SIGKILL');
    fioRun?.kill();
    await close().catch(() => undefined);
    await run('fusermount', ['-uz', mnt]).catch(() => undefined);
    // A lazy unmount leaves a daemon with requests in flight running, holding its connections to
    // the store (a stuck rclone once stalled s3rver for every later step): stop it for good. Its
    // death also fails the stuck requests, so a reader or fio blocked in them can exit.
    if (peerPid) {
      try {
        process.kill(peerPid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  process.on('SIGTERM', () => void teardown().finally(() => process.exit(143)));
  process.on('SIGINT', () => void teardown().finally(() => process.exit(130)));

  try {
    const t0 = performance.now();
    let daemonPid: number | undefined;
    /** Cairn: the daemon's CPU and request costs over the group (bench/costs.ts). */
    let costsOf: (() => Promise<() => Promise<DaemonCosts>>) | undefined;
    if (spec.kind === 'cairn') {
      // Before the first import of the chunk layer: the cache reads it lazily, once per process.
      if (spec.cacheDir) process.env.CAIRN_CACHE_DIR = spec.cacheDir;
      const { mount } = await import('../src/fuse/mount.js');
      const m = await mount({
        volume: spec.volume!,
        mountpoint: mnt,
        store: spec.store,
        readOnly: true,
        commitIntervalSec: 0,
        foreground: true,
      });
      daemonPid = process.pid;
      costsOf = () => measureCosts(() => m.handle!.status());
      close = async () => {
        await m.handle!.close('bench', { force: true });
      };
    } else if (spec.kind === 'floor') {
      // (without -f it forks into the background once mounted, as s3fs does)
      await run(...floorCommand(spec.floorBinary!, spec.source!, mnt, false));
      await waitMounted(mnt);
      daemonPid = peerPid = await findPid(mnt);
    } else if (spec.kind === 's3fs') {
      const src = spec.prefix ? `${spec.bucket}:/${spec.prefix}` : spec.bucket!;
      await run('s3fs', [src, mnt, '-o', `passwd_file=${spec.passwdFile},url=${spec.endpoint},use_path_request_style,ro`]);
      await waitMounted(mnt);
      daemonPid = peerPid = await findPid(mnt);
    } else {
      const env = { ...process.env };
      delete env.AWS_CA_BUNDLE;
      const src = `bench:${spec.bucket}${spec.prefix ? `/${spec.prefix}` : ''}`;
      await run('rclone', ['mount', src, mnt, '--config', spec.rcloneConfig!, '--read-only', '--daemon'], env);
      await waitMounted(mnt);
      daemonPid = peerPid = await findPid(mnt);
    }
    const mountMs = performance.now() - t0;

    if (spec.fio) {
      emit({ event: 'ready', mountMs, daemonPid, peer: spec.kind !== 'cairn' });
      await waitGo();
      const costsDone = await costsOf?.();
      fioRun = execFio([...spec.fio.args, `--filename=${path.join(mnt, spec.fio.file)}`]);
      const fio = await fioRun.report;
      const costs = await costsDone?.();
      const daemonHwmKiB = daemonPid ? await hwmKiB(daemonPid) : undefined;
      await teardown();
      emit({ event: 'result', fio, daemonHwmKiB, ...(costs ? { costs } : {}) });
      setTimeout(() => process.exit(), 200).unref();
      return;
    }
    if (!spec.reader) throw new Error('container spec has neither reader nor fio');
    const files = (spec.reader.files ?? []).map((f) => path.join(mnt, f));
    reader = spawn(process.execPath, [READER_JS, specArg({ ...spec.reader, files })], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = readline.createInterface({ input: reader.stdout! });
    const next = (): Promise<Record<string, unknown>> =>
      new Promise((resolve, reject) => {
        // The line stream's 'close' (not the process's 'exit'): stdout may still hold the last line.
        const onClose = (): void => reject(new Error(`reader exited (${reader!.exitCode}) early`));
        lines.once('close', onClose);
        lines.once('line', (l) => {
          lines.off('close', onClose);
          try {
            resolve(JSON.parse(l) as Record<string, unknown>);
          } catch {
            reject(new Error(`reader said: ${l}`));
          }
        });
      });
    const ready = await next();
    if (ready.event !== 'ready') throw new Error(`reader: ${JSON.stringify(ready)}`);
    emit({ event: 'ready', mountMs, daemonPid, peer: spec.kind !== 'cairn' });

    await waitGo();
    const costsDone = await costsOf?.();
    reader.stdin!.write('go\n');
    const result = await next();
    if (result.event !== 'result') throw new Error(`reader: ${String(result.message ?? JSON.stringify(result))}`);
    const costs = await costsDone?.();
    const daemonHwmKiB = daemonPid ? await hwmKiB(daemonPid) : undefined;
    await teardown();
    emit({ ...result, daemonHwmKiB, ...(costs ? { costs } : {}) });
  } catch (err) {
    await teardown();
    emit({ event: 'error', message: String((err as Error)?.stack ?? err) });
    process.exitCode = 1;
  }
  // fuse-native / SDK handles may linger; the result is out, so leave promptly.
  setTimeout(() => process.exit(), 200).unref();
}

void main();
