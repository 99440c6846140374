/**
 * The OCI hook that gives each container its own session of its volumes (Modal's semantics),
 * driven by the annotation `cairn.volumes=VOL:/path[:ro],VOL2:/other[:ro]`.
 *
 * createRuntime (runs in the host's namespaces, with the container's state on stdin, after its
 * namespaces exist and before pivot_root): for each volume, a `cairn mount` daemon in the host's
 * namespaces mounts a new session at a staging directory under the hook's base directory, which
 * is a shared mount; the mount propagates into the container's mount namespace (a slave copy of
 * the host's, made when the container was created), where the hook bind-mounts it at
 * ROOTFS/PATH; the staging mount is then detached on the host. So the mount is visible in that
 * container only, and its daemon (and chunk cache) stays on the host. poststop: SIGTERM to each
 * daemon, which makes the final commit and exits; a daemon that died (SIGKILL) has its session
 * directory recovered and committed instead.
 *
 * Invariants: a failing createRuntime stops the daemons it started (the engine then refuses to
 * start the container); state lives in BASE/<container id>/state.json until poststop.
 * The base directory must be a shared mount before the container is created: `cairn oci-hook
 * install` makes it one (again after a reboot).
 */
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { cairnHome } from '../config.js';
import { CairnError } from '../errors.js';
import { mount } from '../fuse/mount.js';
import { readMounts } from '../fuse/mountinfo.js';
import { parseVolumeSpecs, type VolumeSpec } from '../run/spec.js';

export const ANNOTATION = 'cairn.volumes';
/** Optional: background commit period of the container's sessions, seconds (default 5; 0: none). */
export const INTERVAL_ANNOTATION = 'cairn.commit-interval';
export const DEFAULT_HOOKS_DIR = '/usr/share/containers/oci/hooks.d';

/** The hook's base directory (staging mounts and per-container state). */
export function hookBase(): string {
  return process.env.CAIRN_OCI_DIR ?? path.join(cairnHome(), 'oci');
}

interface ContainerState {
  id: string;
  pid?: number;
  bundle: string;
  annotations?: Record<string, string>;
}

interface HookMount {
  volume: string;
  path: string;
  readOnly: boolean;
  pid: number;
  staging: string;
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 60_000 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const why = stderr.trim() || err.message;
      reject(new CairnError('IO', `${cmd} ${args.join(' ')} failed: ${why}`, { hint: 'see the engine log' }));
    });
  });
}

/** Parses the annotation's value (specs separated by commas). */
export function parseAnnotation(value: string): VolumeSpec[] {
  return parseVolumeSpecs(
    value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
}

/** Makes the base directory a shared mount (idempotent). Containers created afterwards can receive mounts. */
export async function ensureSharedBase(base = hookBase()): Promise<void> {
  await fsp.mkdir(base, { recursive: true, mode: 0o700 });
  const real = await fsp.realpath(base);
  if (!(await readMounts()).some((e) => e.mountpoint === real)) await run('mount', ['--bind', real, real]);
  if (!(await isShared(real))) await run('mount', ['--make-shared', real]);
}

async function isShared(mountpoint: string): Promise<boolean> {
  const text = await fsp.readFile('/proc/self/mountinfo', 'utf8');
  return text.split('\n').some((l) => {
    const f = l.split(' ');
    return f[4] === mountpoint && f.slice(6, f.indexOf('-')).some((t) => t.startsWith('shared:'));
  });
}

async function readState(input: string): Promise<ContainerState> {
  let st: ContainerState;
  try {
    st = JSON.parse(input) as ContainerState;
  } catch {
    throw new CairnError('INVALID_ARGUMENT', 'the OCI hook expects the container state (JSON) on stdin', {
      hint: 'run it from the engine (hooks.d)',
    });
  }
  if (!st?.id || !st.bundle) throw new CairnError('INVALID_ARGUMENT', 'the container state has no id or bundle');
  return st;
}

async function rootfsOf(bundle: string): Promise<string> {
  const cfg = JSON.parse(await fsp.readFile(path.join(bundle, 'config.json'), 'utf8')) as { root?: { path?: string } };
  const root = cfg.root?.path;
  if (!root) throw new CairnError('INVALID_ARGUMENT', `${bundle}/config.json has no root.path`);
  return path.isAbsolute(root) ? root : path.join(bundle, root);
}

/**
 * createRuntime: one session per volume of the annotation, mounted in this container only.
 *
 * @example
 *   await createRuntime(stateJsonFromStdin); // podman runs `cairn oci-hook createRuntime`
 */
export async function createRuntime(input: string, log: (msg: string) => void = () => undefined): Promise<void> {
  const st = await readState(input);
  const value = st.annotations?.[ANNOTATION];
  if (!value) return;
  if (!st.pid) {
    throw new CairnError('INVALID_ARGUMENT', 'the container state has no pid (createRuntime stage expected)');
  }
  const specs = parseAnnotation(value);
  const every = st.annotations?.[INTERVAL_ANNOTATION] ?? '5';
  if (!/^\d+(\.\d+)?$/.test(every)) {
    throw new CairnError('INVALID_ARGUMENT', `${INTERVAL_ANNOTATION}=${every}: a number of seconds >= 0`);
  }
  const base = await fsp.realpath(hookBase()).catch(() => hookBase());
  if (!(await isShared(base))) {
    throw new CairnError('UNAVAILABLE', `${base} is not a shared mount, so mounts cannot reach containers`, {
      hint: 'run `cairn oci-hook install` (once per boot), then start the container again',
    });
  }
  const root = await rootfsOf(st.bundle);
  const dir = path.join(base, st.id);
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  const mounts: HookMount[] = [];
  try {
    for (const [i, s] of specs.entries()) {
      const staging = path.join(dir, String(i));
      const m = await mount({
        volume: s.volume,
        mountpoint: staging,
        readOnly: s.readOnly,
        movedAway: true,
        commitIntervalSec: Number(every),
      });
      mounts.push({ volume: s.volume, path: s.path, readOnly: s.readOnly, pid: m.pid, staging });
      await fsp.writeFile(path.join(dir, 'state.json'), JSON.stringify({ id: st.id, mounts }));
      const dest = path.join(root, s.path);
      const script = 'mkdir -p "$2" && mount --bind "$1" "$2"';
      await run('nsenter', ['--mount', '--target', String(st.pid), '--', 'sh', '-c', script, 'sh', staging, dest]);
      await run('umount', ['-l', staging]);
      log(`mounted ${s.volume} at ${s.path} in container ${st.id.slice(0, 12)} (daemon pid ${m.pid})`);
    }
  } catch (err) {
    await stopDaemons(mounts);
    await fsp.rm(dir, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
}

/** poststop: the final commit and exit of each daemon of the container. */
export async function poststop(input: string, log: (msg: string) => void = () => undefined): Promise<void> {
  const st = await readState(input);
  const dir = path.join(await fsp.realpath(hookBase()).catch(() => hookBase()), st.id);
  const text = await fsp.readFile(path.join(dir, 'state.json'), 'utf8').catch(() => undefined);
  if (!text) return;
  const { mounts } = JSON.parse(text) as { mounts: HookMount[] };
  await stopDaemons(mounts, log);
  for (const m of mounts) log(`stopped the session of ${m.volume} of container ${st.id.slice(0, 12)}`);
  await fsp.rm(dir, { recursive: true, force: true });
}

async function stopDaemons(mounts: HookMount[], log: (msg: string) => void = () => undefined, timeoutMs = 30 * 60_000): Promise<void> {
  for (const m of mounts) {
    try {
      process.kill(m.pid, 'SIGTERM');
    } catch {
      // The daemon died (SIGKILL, OOM): publish what its session directory holds.
      await recover(m, log);
      continue;
    }
    const end = Date.now() + timeoutMs;
    while (
      Date.now() < end &&
      (await fsp.access(`/proc/${m.pid}`).then(
        () => true,
        () => false,
      ))
    ) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await run('umount', ['-l', m.staging]).catch(() => undefined);
  }
}

/** Commits what a dead daemon left in its session directory (named after its mount point). */
async function recover(m: HookMount, log: (msg: string) => void): Promise<void> {
  if (m.readOnly) return;
  try {
    const { openSession } = await import('../volume/index.js');
    const session = await openSession({ volume: m.volume, mountpoint: m.staging, readOnly: false });
    log(`recovered the session of ${m.volume} (daemon ${m.pid} had died): seq ${session.seq}`);
    await session.close();
  } catch (err) {
    log(`could not recover the session of ${m.volume} at ${m.staging}: ${String(err)}`);
  }
}

/**
 * Writes the hooks.d files that run this hook for containers with the annotation, and makes the
 * base directory a shared mount. Returns the files written.
 *
 * @example
 *   await installHooks({ hooksDir: '/usr/share/containers/oci/hooks.d', command: [process.execPath, cliPath] });
 */
export async function installHooks(o: { hooksDir?: string; command: string[] }): Promise<string[]> {
  const hooksDir = o.hooksDir ?? DEFAULT_HOOKS_DIR;
  await fsp.mkdir(hooksDir, { recursive: true });
  await ensureSharedBase();
  const env = [
    'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    `CAIRN_HOME=${cairnHome()}`,
    `CAIRN_OCI_DIR=${hookBase()}`,
  ];
  // Not secrets: credentials stay in root's AWS files (HOME), never in hooks.d.
  const passed = ['CAIRN_STORE', 'CAIRN_CACHE_DIR', 'CAIRN_CACHE_BYTES', 'HOME'];
  passed.push('AWS_PROFILE', 'AWS_REGION', 'AWS_ENDPOINT_URL_S3');
  for (const k of passed) {
    if (process.env[k]) env.push(`${k}=${process.env[k]}`);
  }
  const files: string[] = [];
  for (const [stage, arg] of [
    ['createRuntime', 'createRuntime'],
    ['poststop', 'poststop'],
  ] as const) {
    const file = path.join(hooksDir, `cairn-${arg.toLowerCase()}.json`);
    const hook = {
      version: '1.0.0',
      hook: { path: o.command[0], args: [...o.command, 'oci-hook', arg], env },
      when: { annotations: { [`^${ANNOTATION.replace('.', '\\.')}$`]: '.*' } },
      stages: [stage],
    };
    await fsp.writeFile(file, `${JSON.stringify(hook, null, 2)}\n`);
    files.push(file);
  }
  return files;
}
