/**
 * Time travel in the CLI: `--seq N` (a past snapshot, read-only) for `volume ls|get` and `mount`,
 * and `cairn volume restore VOL --seq N [PATHS…]`, which commits the old content of the given
 * paths as a NEW snapshot (history is never rewritten: seq N and everything after it stay).
 *
 * Invariants: a restore copies entries by reference (chunk refs and inline data of the old
 * snapshot, no data is fetched or uploaded); it lands as one commit or not at all; a seq that does
 * not exist or was pruned is a typed error (NOT_FOUND / PRUNED, exit 1) and changes nothing.
 */
import { Command } from 'commander';
import { CairnError, isCairnError } from '../errors.js';
import type { Session, Volume, FileEntry } from '../volume/index.js';
import { normalizePath } from '../volume/index.js';
import type { JournalEntry } from '../session/journal.js';
import { toFileEntry } from '../session/index.js';
import type { EntryData } from '../format/records.js';
import { UsageError, notice, printJson } from './output.js';

type Globals = () => { store?: string };

/** A --seq value: an integer >= 0 (a UsageError, exit 2, otherwise). */
export function parseSeq(v: string): number {
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) {
    throw new UsageError(`--seq must be a snapshot number (an integer >= 0), not ${JSON.stringify(v)}`);
  }
  return Number(v);
}

/** The `--seq <n>` option, as every time-travel command spells it. */
export function seqOption(cmd: Command, what = 'read the snapshot of that seq (see cairn volume history)'): Command {
  return cmd.option('--seq <n>', what, parseSeq);
}

/**
 * A read-only session of `vol` at snapshot `seq` (the newest without one). A seq the volume does
 * not have becomes NOT_FOUND naming the volume and how to list its seqs; PRUNED passes through.
 */
export async function sessionAt(vol: Volume, seq: number | undefined): Promise<Session> {
  if (seq === undefined) return vol.session({ readOnly: true });
  try {
    return await vol.session({ seq });
  } catch (err) {
    if (isCairnError(err, 'NOT_FOUND') && !err.context.path) {
      throw new CairnError(
        'NOT_FOUND',
        `volume ${vol.name} has no snapshot ${seq}`,
        {
          volume: vol.name,
          hint: `see the seqs with cairn volume history ${vol.name}`,
        },
        { cause: err },
      );
    }
    throw err;
  }
}

/** `listdir` of a session (what `vol.listdir` returns, at that session's snapshot). */
export async function listAt(s: Session, p: string): Promise<FileEntry[]> {
  const st = await s.stat(p);
  if (st.type !== 'directory') return [toFileEntry(st)];
  return (await s.readdir(p)).map(toFileEntry);
}

/** An entry and everything under it, by path (without the root's own entry: the root always exists). */
function tree(s: Session, p: string): Map<string, JournalEntry> {
  const out = new Map<string, JournalEntry>();
  const top = s.journal.get(p);
  if (!top) return out;
  if (p !== '') out.set(p, top);
  if (top.type === 'directory') for (const st of s.descendants(p)) out.set(st.path, s.journal.get(st.path)!);
  return out;
}

const dataOf = ({ path: _p, staged: _s, ...data }: JournalEntry): EntryData => data;

function same(a: EntryData, b: EntryData): boolean {
  const refs = (e: EntryData) => JSON.stringify(e.chunks ?? null);
  const inline = (e: EntryData) => (e.inline ? Buffer.from(e.inline).toString('base64') : null);
  return (
    a.type === b.type &&
    a.mode === b.mode &&
    a.mtimeMs === b.mtimeMs &&
    a.size === b.size &&
    a.target === b.target &&
    refs(a) === refs(b) &&
    inline(a) === inline(b)
  );
}

export interface RestoreResult {
  volume: string;
  from: number;
  /** The new snapshot (the current one when nothing changed). */
  seq: number;
  committed: boolean;
  /** Paths set to their old entry (added back or changed back). */
  restored: string[];
  /** Paths removed because they did not exist at `from`. */
  removed: string[];
}

/**
 * Commits the content of `paths` (default: the whole volume) as it was at snapshot `from`, as a
 * new snapshot: entries of `from` are put back by reference, paths that did not exist then are
 * removed. A path that exists neither then nor now is NOT_FOUND.
 */
export async function restore(vol: Volume, from: number, paths: string[]): Promise<RestoreResult> {
  const roots = [...new Set((paths.length ? paths : ['/']).map((p) => normalizePath(p)))];
  const old = await sessionAt(vol, from);
  try {
    const cur = await vol.session();
    try {
      const puts: [string, EntryData][] = [];
      const removes: string[] = [];
      for (const root of roots) {
        const then = tree(old, root);
        const now = tree(cur, root);
        if (root !== '' && !old.journal.get(root) && !cur.journal.get(root)) {
          throw new CairnError('NOT_FOUND', `/${root} exists neither at seq ${from} nor now in volume ${vol.name}`, {
            path: `/${root}`,
            volume: vol.name,
            hint: `see what there was with cairn volume ls ${vol.name} PATH --seq ${from}`,
          });
        }
        // what did not exist then, or changed between file and directory, goes (shallowest first;
        // removing a directory removes what is under it)
        for (const [p, e] of now) {
          const was = then.get(p);
          if (was && (was.type === 'directory') === (e.type === 'directory')) continue;
          if (!removes.some((r) => p.startsWith(`${r}/`))) removes.push(p);
        }
        for (const [p, e] of then) {
          const is = now.get(p);
          const gone = removes.some((r) => p === r || p.startsWith(`${r}/`));
          if (gone || !is || !same(dataOf(e), dataOf(is))) puts.push([p, dataOf(e)]);
        }
      }
      for (const p of removes) await cur.removeTree(`/${p}`);
      // parents before children, so each directory lands with its own mode and mtime
      puts.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      cur.putEntries([], puts);
      const c = await cur.commit();
      return {
        volume: vol.name,
        from,
        seq: c.seq,
        committed: c.committed,
        restored: puts.map(([p]) => `/${p}`),
        removed: removes.map((p) => `/${p}`),
      };
    } finally {
      await cur.close();
    }
  } finally {
    await old.close();
  }
}

const shown = (paths: string[]) => (paths.length > 5 ? `${paths.slice(0, 5).join(' ')} (+${paths.length - 5} more)` : paths.join(' '));

type WithVolume = <T>(name: string, g: Globals, fn: (v: Volume) => Promise<T>) => Promise<T>;

/** `cairn volume restore` (registered under `volume`, sharing its volume opener). */
export function registerRestoreCommand(volume: Command, g: Globals, withVolume: WithVolume): void {
  volume
    .command('restore <volume> [paths...]')
    .description('commit the content of PATHS (default: everything) as it was at --seq N, as a new snapshot')
    .requiredOption('--seq <n>', 'the snapshot to restore from (see cairn volume history)', parseSeq)
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      '\nHistory is never rewritten: the restore is a new commit, and seq N and every later one stay readable.' +
        '\nFiles that did not exist at seq N are removed from the restored paths.' +
        '\n\nExamples:\n  cairn volume restore data --seq 12' +
        '\n  cairn volume restore data /models /config.json --seq 12',
    )
    .action(async (name: string, paths: string[], o: { seq: number; json?: boolean }) => {
      const r = await withVolume(name, g, (v) => restore(v, o.seq, paths));
      if (o.json) return printJson(r);
      const what = paths.length ? shown(paths) : name;
      if (!r.committed) return notice(`nothing to restore: ${what} already as at seq ${r.from} (seq ${r.seq})`);
      const parts = [`${r.restored.length} restored`, `${r.removed.length} removed`];
      process.stdout.write(`restored ${name} to seq ${r.from} as seq ${r.seq}: ${parts.join(', ')}\n`);
      if (r.restored.length) process.stdout.write(`  restored: ${shown(r.restored)}\n`);
      if (r.removed.length) process.stdout.write(`  removed:  ${shown(r.removed)}\n`);
    });
}
