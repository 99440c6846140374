/**
 * The `cairn run` subcommand: argument parsing only; the work is in run.ts.
 */
import { Command, Option } from 'commander';
import { runInContainer } from './run.js';

/**
 * Adds `run` to a commander program. `globals()` returns the global options (`store`).
 * Resolves the action with the command's exit code through `exit`.
 */
export function registerRunCommand(program: Command, globals: () => { store?: string }, exit: (code: number) => void): Command {
  return program
    .command('run')
    .description('run a command in its own container (a private mount namespace) with volumes mounted')
    .addOption(
      new Option('-v, --volume <spec>', 'mount VOLUME at /path inside the container; add :ro for read-only (repeatable)').argParser(
        (v: string, prev: string[] = []) => [...prev, v],
      ),
    )
    .option('--commit-interval <seconds>', 'background commit period, 0 to disable', '5')
    .option('--workdir <dir>', 'working directory of the command (absolute)')
    .option('--create', 'create volumes that do not exist yet')
    .argument('<command...>', 'the command and its arguments (after --)')
    .addHelpText(
      'after',
      `
The container starts on the latest committed state of each volume, commits in the background,
and commits once more when the command exits (also on SIGTERM/SIGINT/SIGHUP/SIGQUIT to cairn run
or its process group: they are forwarded to the command and do not interrupt the final commit).
The exit code is the command's. Volume paths may not be inside one another; the workdir may be
on a volume and must exist.

Examples:
  cairn run -v data:/data -- sh -c 'echo hello > /data/hello.txt'
  cairn run -v weights:/weights:ro -v out:/out --commit-interval 10 -- python train.py
  cairn run --create -v scratch:/scratch --workdir /scratch -- make`,
    )
    .action(async (command: string[], opts: { volume?: string[]; commitInterval: string; workdir?: string; create?: boolean }) => {
      const code = await runInContainer({
        volumes: opts.volume ?? [],
        command,
        commitIntervalSec: Number(opts.commitInterval),
        workdir: opts.workdir,
        store: globals().store,
        createIfMissing: !!opts.create,
      });
      exit(code);
    });
}
