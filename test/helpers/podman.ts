/**
 * A real container engine for tests: Debian's podman with runc, running busybox containers from a
 * plain root directory (no image registry). See the machine notes in design.md: `--runtime runc`
 * (crun rejects this machine's cgroups), explicit ulimits, options before `--rootfs`.
 *
 * Invariants: every container a test starts has a name from `containerName()` and `--rm`;
 * `removeContainers()` (call it in `after`) removes any of them still there, so a failed test
 * never leaves podman state behind. Nothing here touches images or networks.
 */
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const RUNC = '/usr/sbin/runc';
const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'];

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program; never throws for a non-zero exit. */
export function exec(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Run> {
  const options = { env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 16 << 20 };
  return new Promise((resolve) => {
    execFile(cmd, args, options, (err, stdout, stderr) => {
      const status = (err as { code?: unknown } | null)?.code;
      const code = err ? (typeof status === 'number' ? status : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Why podman cannot be used here (undefined when it can): tests skip with this reason. */
export async function podmanMissing(): Promise<string | undefined> {
  const p = await exec('podman', ['--version']);
  if (p.code !== 0) return 'podman is not installed (scripts/setup.sh installs it)';
  if (
    !(await fsp.access(RUNC).then(
      () => true,
      () => false,
    ))
  )
    return `${RUNC} is missing (apt-get install runc)`;
  if (!(await busyboxPath())) return 'busybox-static is not installed';
  if (process.getuid?.() !== 0) return 'podman tests run as root';
  return undefined;
}

async function busyboxPath(): Promise<string | undefined> {
  for (const p of BUSYBOX)
    if (
      await fsp.access(p).then(
        () => true,
        () => false,
      )
    )
      return p;
  return undefined;
}

/** A busybox root filesystem in a new temp dir: bin/busybox, its applet links, /data. */
export async function busyboxRootfs(): Promise<string> {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'cairn-rootfs-'));
  for (const d of ['bin', 'data', 'proc', 'sys', 'dev', 'tmp', 'etc']) await fsp.mkdir(path.join(root, d));
  const bb = (await busyboxPath())!;
  await fsp.copyFile(bb, path.join(root, 'bin', 'busybox'));
  await fsp.chmod(path.join(root, 'bin', 'busybox'), 0o755);
  const list = await exec(bb, ['--list']);
  for (const applet of list.stdout.split('\n').filter((a) => a && a !== 'busybox')) {
    await fsp.symlink('busybox', path.join(root, 'bin', applet)).catch(() => undefined);
  }
  return root;
}

/**
 * A local image made from a root directory (`podman import`, no registry). Containers of an image
 * get podman's full clean-up at exit, which `--rootfs` containers do not: podman 4.3 never unmounts
 * the named (plugin) volumes of a `--rootfs` container, so volume plugin tests need an image.
 * Remove it with `removeImage`.
 */
export async function importImage(rootfs: string, tag: string, env?: NodeJS.ProcessEnv): Promise<string> {
  const r = await exec('bash', ['-c', `tar -C '${rootfs}' -c . | podman import -q - '${tag}'`], { env });
  if (r.code !== 0) throw new Error(`podman import failed: ${r.stderr}`);
  return tag;
}

export async function removeImage(tag: string, env?: NodeJS.ProcessEnv): Promise<void> {
  await exec('podman', ['rmi', '-f', tag], { env });
}

const started = new Set<string>();
let counter = 0;

/** A unique container name, remembered for removeContainers(). */
export function containerName(): string {
  const name = `cairn-test-${process.pid}-${++counter}`;
  started.add(name);
  return name;
}

/** podman's global options (runtime) and `run` options this machine needs. */
export const PODMAN_GLOBAL = ['--runtime', RUNC];
export const RUN_OPTS = ['--rm', '--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];

/**
 * Runs `sh -c SCRIPT` in a new busybox container and waits for it: from `rootfs` (a directory),
 * or from `o.image` when given (rootfs is then ignored). `o.detach` starts it and returns its name
 * in stdout at once.
 *
 * @example
 *   const r = await runBusybox(rootfs, 'cat /data/x', { volumes: ['/mnt/vol:/data'] });
 */
export async function runBusybox(
  rootfs: string,
  script: string,
  o: {
    volumes?: string[];
    env?: NodeJS.ProcessEnv;
    extra?: string[];
    timeoutMs?: number;
    image?: string;
    detach?: boolean;
  } = {},
): Promise<Run> {
  const name = containerName();
  const args = [...PODMAN_GLOBAL, 'run', ...RUN_OPTS, '--name', name, ...(o.detach ? ['-d'] : []), ...(o.extra ?? [])];
  for (const v of o.volumes ?? []) args.push('-v', v);
  if (o.image) args.push(o.image, '/bin/sh', '-c', script);
  else args.push('--rootfs', rootfs, '/bin/sh', '-c', script);
  const r = await exec('podman', args, { env: o.env, timeoutMs: o.timeoutMs });
  if (o.detach) return { ...r, stdout: name };
  started.delete(name);
  return r;
}

/** Removes every container the tests of this process started that is still there. */
export async function removeContainers(env?: NodeJS.ProcessEnv): Promise<void> {
  for (const name of started) await exec('podman', [...PODMAN_GLOBAL, 'rm', '-f', '-t', '0', name], { env });
  started.clear();
}
