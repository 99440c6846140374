/** Options of worker threads shared by every pool that starts them (hashing, fetching, WAL checkpoints). */

/**
 * The process's flags minus those that stop a worker from starting (-e/-p and their script,
 * --input-type) and --cpu-prof (one profile per worker thread would overwrite the process's).
 * @example new Worker(url, { execArgv: workerExecArgv() });
 */
export function workerExecArgv(): string[] {
  const out: string[] = [];
  const args = process.execArgv;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '-e' || a === '--eval' || a === '-p' || a === '--print') i++;
    else if (!['--input-type', '--eval=', '--print=', '--cpu-prof'].some((f) => a.startsWith(f))) out.push(a);
  }
  return out;
}
