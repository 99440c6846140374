/**
 * Running one fio job: the fio process with a hard time limit, killed as a whole process group,
 * and its JSON report parsed. Used on the host (bench/fio.ts, local disk) and inside a benchmark
 * container (bench/container.ts), so it imports nothing else of the benchmark.
 */
import { spawn } from 'node:child_process';

/** A running fio process: its parsed JSON report, and a way to stop it early. */
export interface FioProcess {
  report: Promise<unknown>;
  kill(): void;
}

/** After killing a fio that overran, how long to wait for its exit before giving up on it. */
const GRACE_MS = 5_000;

/**
 * Runs fio (its arguments include `--output-format=json`) with a hard time limit. fio may print
 * notes before the JSON report: parsing starts at the first `{`. fio runs in its own process
 * group, and `kill()` kills the whole group: no fio process outlives a stopped benchmark.
 */
export function execFio(args: string[], timeoutMs = fioTimeoutMs(args)): FioProcess {
  const child = spawn('fio', args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const kill = (): void => {
    if (!child.pid || child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  let out = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr = (stderr + c).slice(-4000)));
  const report = new Promise<unknown>((resolve, reject) => {
    // A fio thread stuck in a FUSE request (a peer daemon that stopped answering) keeps fio a
    // zombie that never reports its exit, and SIGKILL cannot free it: give up GRACE_MS after the kill.
    const timer = setTimeout(() => {
      kill();
      setTimeout(
        () => reject(new Error(`fio did not finish within ${timeoutMs / 1000} s (stuck in a read of the mount?)`)),
        GRACE_MS,
      ).unref();
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`fio: ${err.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`fio ${args.join(' ')} exited ${code ?? signal}: ${stderr.trim() || out.slice(0, 400)}`));
      try {
        resolve(JSON.parse(out.slice(out.indexOf('{'))));
      } catch {
        reject(new Error(`fio printed no JSON report: ${out.slice(0, 400)} ${stderr.slice(0, 400)}`));
      }
    });
  });
  return { report, kill };
}

/**
 * A job's time limit: its `--runtime` plus 20 s (60 s without one). fio stops reading at the
 * runtime; a job still running 20 s later is stuck in a read of the mount, not slow.
 */
export function fioTimeoutMs(args: readonly string[]): number {
  const runtime = Number(args.find((a) => a.startsWith('--runtime='))?.slice(10));
  return Number.isFinite(runtime) && runtime > 0 ? (runtime + 20) * 1000 : 60_000;
}
