#!/usr/bin/env node
/**
 * The `cairn` command: argument parsing (commander), global options, and the one place where
 * failures become a one-line message and an exit code (0 ok, 1 failure, 2 usage).
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { registerVolumeCommands } from './volume-commands.js';
import { registerUpkeepCommands } from './upkeep-commands.js';
import { interval, registerMountCommands } from './mount-commands.js';
import { parseVolumeSpecs } from '../run/spec.js';
import { isCairnError } from '../errors.js';
import { registerRunCommand } from '../run/command.js';
import { registerPluginCommand } from './plugin-command.js';
import { registerOciHookCommand } from './oci-hook-command.js';
import { registerCompletionCommand } from './completion.js';
import { UsageError, describeFailure, flags, guardStdout, isBrokenPipe } from './output.js';
import { running } from './hints.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

guardStdout();
const program = new Command('cairn')
  .description('Cairn: named, writable volumes on object storage, mounted with FUSE, with commit/reload snapshots')
  .version(pkg.version, '-V, --version')
  .option('--store <url>', 'object store URL (default: $CAIRN_STORE, else the embedded file store in $CAIRN_HOME)')
  .option('--verbose', 'show stack traces and daemon details')
  .option('-q, --quiet', 'no progress bars or notices')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride()
  .addHelpText(
    'after',
    `
Stores: file:///absolute/path | s3://BUCKET/PREFIX?endpoint=URL&region=REGION&path_style=true
Exit codes: 0 ok (also when a reader of stdout such as head goes away), 1 failure (also "no" at a prompt),
2 usage (unknown command or flag, missing argument, bad value, a refusal that needs a flag such as --yes).

Examples:
  cairn volume create data
  cairn volume put data ./dataset /dataset
  cairn mount data /mnt/data
  cairn commit /mnt/data
  cairn run -v data:/data -- python train.py`,
  );
program.hook('preAction', (_program, action) => {
  const o = program.opts<{ verbose?: boolean; quiet?: boolean }>();
  const names: string[] = [];
  for (let c: Command | null = action; c && c !== program; c = c.parent) names.unshift(c.name());
  running.command = names.join(' ');
  flags.verbose = !!o.verbose;
  flags.quiet = !!o.quiet;
});

const globals = () => ({ store: program.opts<{ store?: string }>().store });
let exitCode = 0;
registerUpkeepCommands(registerVolumeCommands(program, globals), globals);
registerMountCommands(program, globals);
registerPluginCommand(program, globals);
registerOciHookCommand(program);
registerRunCommand(program, globals, (code) => (exitCode = code)).hook('preAction', (run) => {
  // bad values are usage errors (exit 2), caught before any volume is opened
  const o = run.opts<{ volume?: string[]; commitInterval: string }>();
  interval(o.commitInterval);
  try {
    parseVolumeSpecs(o.volume ?? []);
  } catch (err) {
    if (isCairnError(err, 'INVALID_ARGUMENT')) throw new UsageError(err.message, { cause: err });
    throw err;
  }
});
registerCompletionCommand(program);
for (const c of program.commands) {
  c.exitOverride();
  for (const sub of c.commands) sub.exitOverride();
}

try {
  await program.parseAsync(process.argv);
  process.exitCode = exitCode;
} catch (err) {
  if (isBrokenPipe(err)) {
    // the reader of stdout went away (`| head`): what it wanted was written
    process.exitCode = 0;
  } else if (err instanceof CommanderError) {
    // help and version exit 0; every other parse error is a usage error
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else {
    const { line, code } = describeFailure(err);
    process.stderr.write(`${line}\n`);
    if (flags.verbose && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    process.exitCode = code;
  }
}
