/**
 * How the CLI talks: one-line errors with the code and the fix, tables on a terminal and bare
 * lines in pipes, JSON when asked, progress bars on a terminal only.
 *
 * Invariants: data goes to stdout, everything else (progress, notices, errors) to stderr;
 * nothing is drawn on a stream that is not a TTY; `--quiet` silences notices and progress; a reader of
 * stdout that goes away (`cairn … | head`) ends the command quietly with exit 0, as `ls | head` does.
 */
import cliProgress from 'cli-progress';
import { CairnError, isCairnError } from '../errors.js';
import { cliHint } from './hints.js';

/** A usage error: exit code 2. With a CairnError as cause (a bad value), its line keeps the code. */
export class UsageError extends Error {}

export const flags = { verbose: false, quiet: false };

/** True once the reader of stdout went away: later output is dropped. */
let stdoutGone = false;

/** A write to a pipe whose reader is gone (EPIPE), or a later write to that closed stdout. */
export function isBrokenPipe(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return code === 'EPIPE' || (stdoutGone && code === 'ERR_STREAM_DESTROYED');
}

/**
 * Installs the one handler for stdout errors: EPIPE marks stdout gone (the command ends as usual,
 * and main exits 0 without a message); any other error stays fatal. Call once, before any output.
 */
export function guardStdout(): void {
  process.stdout.on('error', (err) => {
    if (!isBrokenPipe(err)) throw err;
    stdoutGone = true;
  });
}

export function notice(msg: string): void {
  if (!flags.quiet) process.stderr.write(`${msg}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${units[u]}`;
}

/** "3 files, 12 B": what put and get report (small files, kept inline, count as files too). */
export function counts(files: number, bytes: number): string {
  return `${files} file${files === 1 ? '' : 's'}, ${formatBytes(bytes)}`;
}

export function formatTime(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
}

/** Left-aligned columns; the last column is not padded. */
export function table(rows: string[][], header?: string[]): string {
  const all = header ? [header, ...rows] : rows;
  const widths = all.reduce<number[]>((w, r) => r.map((c, i) => Math.max(w[i] ?? 0, c.length)), []);
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + (all.length ? '\n' : '');
}

/** A byte progress bar on stderr when it is a terminal (and not --quiet); otherwise no-ops. */
export function progressBar(label: string, total: number): { update(bytes: number): void; stop(): void } {
  if (flags.quiet || !process.stderr.isTTY || total <= 0) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {percentage}% | {done} / {size} | {rate}/s | ETA {eta_formatted}`,
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: false,
    },
    cliProgress.Presets.shades_classic,
  );
  const started = Date.now();
  bar.start(total, 0, { done: formatBytes(0), size: formatBytes(total), rate: formatBytes(0) });
  return {
    update(bytes: number) {
      const secs = Math.max(0.001, (Date.now() - started) / 1000);
      bar.update(bytes, { done: formatBytes(bytes), rate: formatBytes(Math.round(bytes / secs)) });
    },
    stop() {
      bar.stop();
    },
  };
}

/** The one line printed for a failure (hints in the CLI's words, see hints.ts), and the exit code for it. */
export function describeFailure(err: unknown): { line: string; code: number } {
  if (err instanceof UsageError) {
    return { line: isCairnError(err.cause) ? describeFailure(err.cause).line : `cairn: ${err.message}`, code: 2 };
  }
  if (isCairnError(err)) {
    const e = err as CairnError;
    const procs = Array.isArray(e.context.processes)
      ? ` [${(e.context.processes as { pid: number; command?: string }[]).map((p) => `pid ${p.pid}${p.command ? ` ${p.command}` : ''}`).join(', ')}]`
      : '';
    const hint = cliHint(e);
    return { line: `cairn: ${e.code}: ${e.message}${procs}${hint ? ` (${hint})` : ''}`, code: 1 };
  }
  return { line: `cairn: ${err instanceof Error ? err.message : String(err)}`, code: 1 };
}
