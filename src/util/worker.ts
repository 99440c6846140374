/** Options of worker threads shared by every pool that starts them (hashing, fetching, WAL checkpoints). */

/**
 * Flags a worker's `execArgv` must not carry: V8's own options (heap and stack sizes, GC switches:
 * a worker refuses every V8 option with ERR_WORKER_INVALID_EXEC_ARGV, and they are process-wide
 * anyway) and process-wide ones such as `--title`. Dropping one is always safe: the worker runs
 * with the process's V8 settings.
 */
const PROCESS_WIDE =
  /^--(no-)?((max|min|initial)[-_][\w-]+|stack[-_]size|expose[-_]gc|gc[-_][\w-]+|trace[-_]gc[\w-]*|single[-_]threaded[\w-]*|jitless|lite[-_]mode|optimize[-_]for[-_]size|title|v8[-_][\w-]+)(=|$)/;

/**
 * The process's flags minus those that stop a worker from starting (-e/-p and their script,
 * --input-type, V8's and process-wide options: `PROCESS_WIDE`) and --cpu-prof (one profile per
 * worker thread would overwrite the process's).
 * @example new Worker(url, { execArgv: workerExecArgv() });
 */
export function workerExecArgv(args: readonly string[] = process.execArgv): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '-e' || a === '--eval' || a === '-p' || a === '--print' || a === '--title') i++;
    else if (PROCESS_WIDE.test(a)) continue;
    else if (!['--input-type', '--eval=', '--print=', '--cpu-prof'].some((f) => a.startsWith(f))) out.push(a);
  }
  return out;
}
