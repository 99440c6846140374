/**
 * Drives the built `cairn` binary (dist/src/cli/main.js) as a child process for the CLI tests:
 * exit code, stdout (bytes and text) and stderr of one run.
 */
import { execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');

export interface Result {
  code: number;
  stdout: Buffer;
  out: string;
  err: string;
}

/** Runs `node main.js ...args` with stdin from `input` (empty by default). */
export function cairn(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Result> {
  return new Promise((resolve) => {
    const env = opts.env ?? process.env;
    const options = { encoding: 'buffer' as const, maxBuffer: 1 << 28, env };
    const child = execFile(process.execPath, [CLI, ...args], options, (error, stdout, stderr) => {
      const status = (error as { code?: unknown } | null)?.code;
      const code = error ? (typeof status === 'number' ? status : 1) : 0;
      resolve({ code, stdout, out: stdout.toString(), err: stderr.toString() });
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    else child.stdin!.end();
  });
}

/**
 * `cairn --store STORE …` for tests that drive one store: `run` gives code and text output, `ok`
 * fails the test on a non-zero exit and returns stdout.
 * @example const { ok } = cliWithStore(() => store); await ok('volume', 'create', 'v1');
 */
export function cliWithStore(store: () => string): {
  run: (...args: string[]) => Promise<{ code: number; stdout: string; stderr: string }>;
  ok: (...args: string[]) => Promise<string>;
} {
  const run = async (...args: string[]) => {
    const r = await cairn(['--store', store(), ...args]);
    return { code: r.code, stdout: r.out, stderr: r.err };
  };
  const ok = async (...args: string[]) => {
    const r = await run(...args);
    if (r.code !== 0) throw new Error(`cairn ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  };
  return { run, ok };
}

/**
 * Runs the binary with a stdout whose reader goes away after `keep` bytes (0: before anything is
 * written), as `cairn … | head -c KEEP` does; resolves with the exit code (or signal) and stderr.
 */
export function cairnIntoClosedPipe(
  args: string[],
  keep = 0,
): Promise<{ code: number | null; signal: string | null; err: string; got: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
    let err = '';
    let got = 0;
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const closeReader = () => child.stdout.destroy();
    if (keep === 0) closeReader();
    else {
      child.stdout.on('data', (d: Buffer) => {
        got += d.length;
        if (got >= keep) closeReader();
      });
    }
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, err, got }));
  });
}

/** Unmounts DIR with `cairn unmount`, falling back to `fusermount -uz` (for test teardown). */
export async function unmountQuietly(dir: string): Promise<void> {
  if ((await cairn(['unmount', dir])).code === 0) return;
  await new Promise((resolve) => {
    spawn('fusermount', ['-uz', dir], { stdio: 'ignore' }).on('close', resolve).on('error', resolve);
  });
}
