/**
 * Hints in the CLI's words. The library's errors carry hints that name its options (`force: true`,
 * `recursive: true`, `createIfMissing`); the CLI shows the same error with its flags instead
 * (`--force`, `-r`, `--create`). The one mechanism: library hints stay library-worded at the
 * source, and this table rewrites them here, by the exact hint text and the running command.
 *
 * Invariants: every key is a hint the library raises verbatim (test/cli/hints.test.ts checks that
 * each one still occurs in the built sources, so a reworded hint cannot silently slip through); a
 * hint not in the table is shown as it is.
 */
import type { CairnError } from '../errors.js';

/** The command running, as `volume delete`, `mount`, `run` (set before its action runs). */
export const running = { command: '' };

type Rewrite = string | ((e: CairnError, command: string) => string);

const volumeName = (e: CairnError) => (typeof e.context.volume === 'string' ? e.context.volume : 'NAME');

/** Library hint -> the CLI's. */
export const CLI_HINTS: Readonly<Record<string, Rewrite>> = {
  'pass force: true to overwrite': 'pass --force to overwrite',
  'pass recursive: true to remove it and its contents': 'pass -r to remove it and its contents',
  'pass recursive: true to copy directories': 'pass -r to copy directories',
  'use rmdir, or remove recursively': 'pass -r to remove it and its contents',
  'remove its contents first, or remove recursively': 'pass -r to remove it and its contents',
  'pick another name, or pass allowExisting / createIfMissing to use it': (_e, cmd) =>
    cmd === 'volume create' ? 'pick another name, or pass --allow-existing to use it' : 'pick another name',
  'create it first (Volume.objects.create, or createIfMissing: true)': (e, cmd) => {
    const name = volumeName(e);
    if (cmd === 'run') return `create it first (cairn volume create ${name}), or pass --create`;
    if (cmd === 'volume delete') return 'pass --allow-missing to succeed when it does not exist';
    if (cmd === 'volume rename') return 'see the names with cairn volume list';
    return `create it first: cairn volume create ${name}`;
  },
  'mount on an empty directory, or pass nonEmpty to hide what is there while mounted':
    'mount on an empty directory, or pass --non-empty to hide what is there while mounted',
  'close the files, or unmount with force': 'close the files, or pass --force (lazy unmount)',
  'files are open or a process has its cwd there; close them or use force (lazy unmount)':
    'files are open or a process has its cwd there; close them or pass --force (lazy unmount)',
  'open a new session to see newer snapshots': (_e, cmd) =>
    cmd === 'reload'
      ? 'a mount with --seq stays at that snapshot: unmount it, then mount without --seq for the newest'
      : 'open a new session to see newer snapshots',
  'see vol.history() for the seqs there are': (e) => `see the seqs with cairn volume history ${volumeName(e)}`,
  'open a newer snapshot (vol.history() lists the seqs kept); vol.setRetention() sets what is kept': (e) =>
    `see the seqs kept with cairn volume history ${volumeName(e)}; cairn volume retention sets what is kept`,
};

/** The hint to show for `e` in the CLI: the library's, rewritten when the table knows it. */
export function cliHint(e: CairnError, command = running.command): string | undefined {
  const hint = e.context.hint;
  if (typeof hint !== 'string') return undefined;
  const rewrite = CLI_HINTS[hint];
  if (rewrite === undefined) return hint;
  return typeof rewrite === 'string' ? rewrite : rewrite(e, command);
}
