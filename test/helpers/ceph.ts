/**
 * Ceph RGW (a real distributed S3 store) for tests, brought up by scripts/ceph.sh.
 *
 * Two ways in:
 * - `npm test` (scripts/test.sh) brings one cluster up before the tests, passes its endpoint in
 *   CAIRN_CEPH_ENDPOINT (with the keys in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) and tears it down
 *   after, whatever happens; test processes only use it.
 * - A test file run by hand (no CAIRN_CEPH_ENDPOINT) shares one cluster under a fixed directory
 *   (CAIRN_CEPH_DIR, default $TMPDIR/cairn-ceph-harness) with every other such process:
 *   `scripts/ceph.sh acquire DIR PID` records this process as a user and brings the cluster up (or
 *   restarts it: ~7 s; ~20 s the first time), `release` forgets it and stops the cluster when no
 *   live user is left. The data directory stays for the next, faster start.
 *
 * Ceph is used when CAIRN_CEPH_ENDPOINT is set, when CAIRN_CEPH=1 (installing it if missing), or
 * when radosgw is installed and CAIRN_CEPH is not 0.
 *
 * Invariants: each `acquireCeph()` is matched by its handle's `release()` (also at process exit,
 * so a failing test file does not leave a cluster it started); the S3 keys are the same as the
 * s3rver harness's, so both servers can be used from one process's environment.
 */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface CephHandle {
  /** `http://127.0.0.1:PORT` of radosgw. */
  readonly endpoint: string;
  /** Gives the cluster back (stops it if this process started it and nobody else uses it). Idempotent. */
  release(): Promise<void>;
}

/** scripts/ceph.sh of this checkout (found upwards from this module: works from src and dist). */
export function cephScript(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'scripts', 'ceph.sh');
    if (fs.existsSync(candidate)) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('scripts/ceph.sh not found above test/helpers');
    dir = parent;
  }
}

/** Whether the tests should run against Ceph RGW here (see the module comment). */
export function cephWanted(): boolean {
  if (process.env.CAIRN_CEPH === '0') return false;
  if (process.env.CAIRN_CEPH_ENDPOINT || process.env.CAIRN_CEPH === '1') return true;
  return fs.existsSync('/usr/bin/radosgw');
}

/** Parses the `NAME=value` lines `scripts/ceph.sh up|acquire|env` prints. */
export function parseCephEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) out[m[1]] = m[2];
  }
  return out;
}

function applyEnv(vars: Record<string, string>): string {
  const endpoint = vars.CAIRN_CEPH_ENDPOINT;
  if (!endpoint) throw new Error('scripts/ceph.sh printed no CAIRN_CEPH_ENDPOINT');
  for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_REGION']) {
    if (vars[name]) process.env[name] = vars[name];
  }
  delete process.env.AWS_SESSION_TOKEN;
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  return endpoint;
}

/** This process's one registration with the shared cluster, counted across handles. */
let shared: { endpoint: Promise<string>; users: number; releaseSync(): void; release(): Promise<void> } | undefined;

/** Registers this process as a user of the shared cluster under CAIRN_CEPH_DIR (see the module comment). */
function register(): NonNullable<typeof shared> {
  const dir = process.env.CAIRN_CEPH_DIR ?? path.join(os.tmpdir(), 'cairn-ceph-harness');
  const script = cephScript();
  const pid = String(process.pid);
  let released = false;
  const releaseSync = (): void => {
    if (released) return;
    released = true;
    try {
      execFileSync('bash', [script, 'release', dir, pid], { stdio: 'ignore', timeout: 60_000 });
    } catch {
      // best effort at exit; the next acquire/release drops this dead user
    }
  };
  process.once('exit', releaseSync);
  const endpoint = run('bash', [script, 'acquire', dir, pid], { timeout: 600_000, maxBuffer: 1 << 24 }).then(
    ({ stdout }) => applyEnv(parseCephEnv(stdout)),
    (err: { stderr?: string; message: string }) => {
      releaseSync();
      throw new Error(`cannot start Ceph RGW in ${dir}: ${err.stderr || err.message}`);
    },
  );
  return {
    endpoint,
    users: 0,
    releaseSync,
    async release() {
      if (released) return;
      released = true;
      process.removeListener('exit', releaseSync);
      await run('bash', [script, 'release', dir, pid], { timeout: 60_000 });
    },
  };
}

/**
 * The cluster's endpoint: the one scripts/test.sh started, or one shared by the test processes
 * run by hand (started on first use).
 * @example const ceph = await acquireCeph(); try { … ceph.endpoint … } finally { await ceph.release(); }
 */
export async function acquireCeph(): Promise<CephHandle> {
  const given = process.env.CAIRN_CEPH_ENDPOINT;
  if (given) {
    applyEnv({
      CAIRN_CEPH_ENDPOINT: given,
      AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'S3RVER',
      AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'S3RVER',
      AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
    });
    return { endpoint: given, release: async () => undefined };
  }
  const reg = (shared ??= register());
  reg.users++;
  let mine = true;
  const release = async (): Promise<void> => {
    if (!mine) return;
    mine = false;
    if (--reg.users > 0) return;
    if (shared === reg) shared = undefined;
    await reg.release();
  };
  try {
    return { endpoint: await reg.endpoint, release };
  } catch (err) {
    await release().catch(() => undefined);
    throw err;
  }
}
