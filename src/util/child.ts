/**
 * The one protocol between Cairn and the Node child processes it starts (a mount daemon, the
 * inside of a `cairn run` container, an offloaded journal job).
 *
 * - Input: one JSON value as the argument after the script (`node SCRIPT '<json>'`).
 * - Output: one report line on stdout, the first line the child writes there:
 *   `{"event":"ready", ...value}` when it is up (a daemon) or done (a job), or
 *   `{"event":"error","error":WireError}` (errors.ts) when it failed; nothing else goes to stdout
 *   before it (logs go to stderr). A child whose stdio is the user's (`cairn run`) sends no report.
 *
 * Invariants: a parent waiting for a report gets the child's value, or the child's own error as
 * the same CairnError, or a CairnError of the caller's code saying that the child could not start,
 * exited before reporting (with the tail of its log), reported garbage, or did not report in time.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { CairnError, decodeError, encodeError, type ErrorCode, type ErrorContext, type WireError } from '../errors.js';

/** A report line as it travels. */
export type Report = ({ event: 'ready' } & Record<string, unknown>) | { event: 'error'; error: WireError };

/**
 * Starts `node [FLAGS…] SCRIPT '<json input>'`.
 *
 * @example
 *   const child = spawnNode(MAIN_JS, cfg, { stdio: ['ignore', 'pipe', log.fd], detached: true }, DAEMON_NODE_FLAGS);
 */
export function spawnNode(script: string, input: unknown, opts: SpawnOptions = {}, flags: readonly string[] = []): ChildProcess {
  return spawn(process.execPath, [...flags, ...nodeArgs(script, input)], opts);
}

/** The argv (after the node binary) of a child: the script and its JSON input. */
export function nodeArgs(script: string, input: unknown): string[] {
  return [script, JSON.stringify(input)];
}

/**
 * The input the parent passed (the JSON argument after the script); `fallback` when there is
 * none. Bad JSON is INVALID_ARGUMENT.
 *
 * @example const cfg = childInput<InnerConfig>();
 */
export function childInput<T>(argv: readonly string[] = process.argv, fallback?: T): T {
  const raw = argv[2];
  if (raw === undefined && fallback !== undefined) return fallback;
  try {
    return JSON.parse(raw ?? '') as T;
  } catch {
    throw new CairnError('INVALID_ARGUMENT', `bad child input: ${raw === undefined ? 'none' : 'not JSON'}`, {
      hint: 'this program is started by cairn, with its JSON input as the first argument',
    });
  }
}

/**
 * Writes the `ready` report line with `value`'s fields. Later stdout failures (the parent closed
 * the pipe) are ignored.
 *
 * @example reportReady({ pid: process.pid, device }); // {"event":"ready","pid":..,"device":..}
 */
export function reportReady(value: Record<string, unknown> = {}): void {
  writeReport({ event: 'ready', ...value });
}

/**
 * Writes the `error` report line: the error encoded by errors.ts (a non-CairnError as IO).
 *
 * @example reportError(err); // {"event":"error","error":{"code":..,"message":..,"context":{..}}}
 */
export function reportError(err: unknown, fallback = 'failed'): void {
  writeReport({ event: 'error', error: encodeError(err, fallback) });
}

function writeReport(line: Report): void {
  process.stdout.on('error', () => undefined);
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

/** True when the module at `importMetaUrl` is the process's entry script. */
export function isEntry(importMetaUrl: string): boolean {
  return !!process.argv[1] && pathToFileURL(process.argv[1]).href === importMetaUrl;
}

export interface WaitOptions {
  /** How the child is named in errors ("the mount daemon"). */
  name: string;
  /** The code of errors about the child itself (it could not start, it died, ...). */
  code: ErrorCode;
  /** Context of the errors about the child itself. */
  context?: ErrorContext;
  /** Added to the child's own error (without replacing its entries). */
  childContext?: ErrorContext;
  /** Hint of the errors about the child itself. */
  hint?: string;
  /** Give up after this long (the child is sent SIGTERM). Default: wait until it exits. */
  timeoutMs?: number;
  /** The last words of the child (its log's tail), for "exited before it reported". */
  tail?: () => Promise<string> | string;
}

/**
 * Waits for a child's report line: resolves with the `ready` line's fields; rejects with the
 * child's own error (decoded), or a CairnError of `o.code` when it reports no line.
 *
 * @example
 *   const ready = await waitReport(child, { name: 'the mount daemon', code: 'UNAVAILABLE', timeoutMs: 60_000 });
 */
export function waitReport(child: ChildProcess, o: WaitOptions): Promise<Record<string, unknown>> {
  const ctx = o.context ?? {};
  const own: ErrorContext = o.hint ? { ...ctx, hint: o.hint } : { ...ctx };
  return new Promise((resolve, reject) => {
    let buf = '';
    let settled = false;
    const done = (f: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.off('exit', onExit);
      f();
    };
    const timer =
      o.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            child.kill('SIGTERM');
            done(() => reject(new CairnError(o.code, `${o.name} did not report within ${o.timeoutMs} ms`, { ...own })));
          }, o.timeoutMs);
    const onExit = (code: number | null, signal: string | null): void => {
      // Let the last stdout bytes arrive first (a child may write its report and exit at once).
      setImmediate(() => {
        if (settled) return;
        void Promise.resolve(o.tail ? o.tail() : '')
          .catch(() => '')
          .then((tail) => {
            const words = tail.trim();
            const why = `${o.name} exited (${signal ?? `exit ${code}`}) before it reported${words ? `: ${words}` : ''}`;
            done(() => reject(new CairnError(o.code, why, { ...own })));
          });
      });
    };
    child.on('exit', onExit);
    child.on('error', (err) =>
      done(() => reject(new CairnError(o.code, `cannot start ${o.name}: ${err.message}`, { ...own }, { cause: err }))),
    );
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      if (settled) return;
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      let line: Report;
      try {
        line = JSON.parse(buf.slice(0, nl)) as Report;
      } catch {
        return done(() => reject(new CairnError('IO', `${o.name} reported garbage: ${buf.slice(0, 200)}`, { ...own })));
      }
      if (line.event === 'error') {
        const e = decodeError(line.error);
        for (const [k, v] of Object.entries(o.childContext ?? {})) if (!(k in e.context)) e.context[k] = v;
        return done(() => reject(e));
      }
      const { event: _event, ...value } = line;
      done(() => resolve(value));
    });
  });
}

/**
 * Resolves once a child has exited, with its exit code and signal.
 *
 * @example const { code, signal } = await exited(child);
 */
export function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/**
 * Asks `child` to end (SIGTERM), sends SIGKILL if it has not exited `graceMs` later, and resolves
 * once it has exited.
 * @example await terminate(daemon, 10_000);
 */
export async function terminate(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = exited(child);
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await done;
  clearTimeout(t);
}
