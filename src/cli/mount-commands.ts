/**
 * `cairn mount / unmount / commit / reload / status`: the mount daemon's controls (src/fuse).
 */
import path from 'node:path';
import { Command } from 'commander';
import { mount, unmount } from '../fuse/mount.js';
import { controlRequest } from '../fuse/control.js';
import { findMounts } from '../fuse/mountinfo.js';
import type { CommitResult, ReloadResult } from '../volume/index.js';
import { UsageError, formatBytes, notice, printJson, table } from './output.js';

type Globals = () => { store?: string };

/** A --commit-interval value (seconds, >= 0); a UsageError (exit 2) otherwise. */
export function interval(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`--commit-interval must be a number of seconds >= 0, not ${JSON.stringify(v)}`);
  return n;
}

function describeCommit(c: CommitResult): string {
  if (!c.committed) return `nothing to commit (seq ${c.seq})`;
  const over = c.overwrote.length ? `; overwrote changes of other writers to ${c.overwrote.map((p) => `/${p}`).join(' ')}` : '';
  // bytesUploaded counts new pack data only: small files travel inline in the commit record and known chunks are
  // not sent again, so "0 B uploaded" for a commit of small files would mislead
  const data = c.bytesUploaded > 0 ? `, ${formatBytes(c.bytesUploaded)} of new chunk data` : '';
  return `committed seq ${c.seq}: ${c.paths.length} path${c.paths.length === 1 ? '' : 's'} changed${data}${over}`;
}

/** What a mount daemon's `status` reports (the fields the human layout shows; --json prints all). */
interface DaemonStatus {
  volume: string;
  mountpoint: string;
  pid: number;
  readOnly: boolean;
  seq: number;
  pending: number;
  openFiles: { path: string }[];
  commitIntervalSec: number;
  commits: number;
  lastCommit: { at: string; why: string; seq?: number; error?: { code: string; message: string } } | null;
  startedAt: string;
  session?: {
    store?: string;
    sessionDir?: string;
    chunks?: { storeGets?: number; memoryBytes?: number; cache?: { hits?: number; misses?: number; hitRate?: number | null }; leases?: { waited?: number; fromOthers?: number } };
  } | null;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

function ago(iso: string): string {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

/** `cairn status DIR` for a person: one headline and a few labelled lines (every figure is in --json). */
function describeStatus(r: DaemonStatus): string {
  const last = r.lastCommit;
  const lastText = !last ? 'none yet' : last.error ? `failed ${ago(last.at)} ago: ${last.error.code}: ${last.error.message}` : `seq ${last.seq} (${last.why}) ${ago(last.at)} ago`;
  const commitsText = r.readOnly ? 'read-only' : `${r.commitIntervalSec > 0 ? `every ${r.commitIntervalSec}s` : 'on demand and at unmount'}; ${plural(r.commits, 'commit')}, last ${lastText}`;
  const open = r.openFiles.length === 0 ? 'none' : r.openFiles.slice(0, 5).map((f) => f.path).join(' ') + (r.openFiles.length > 5 ? ` (+${r.openFiles.length - 5} more)` : '');
  const ch = r.session?.chunks;
  const cache = ch?.cache;
  const rate = typeof cache?.hitRate === 'number' ? `${Math.round(cache.hitRate * 100)}%` : '-';
  const rows = [
    ['snapshot', `seq ${r.seq}, ${plural(r.pending, 'pending change')}`],
    ['commits', commitsText],
    ['open files', open],
    ...(ch
      ? [
          ['store', `${r.session?.store ?? '?'}: ${plural(ch.storeGets ?? 0, 'GET')}`],
          ['cache', `${cache?.hits ?? 0} hits, ${cache?.misses ?? 0} misses (hit rate ${rate}); ${formatBytes(ch.memoryBytes ?? 0)} in memory`],
          ['fetches', `${ch.leases?.waited ?? 0} waited for another reader, ${ch.leases?.fromOthers ?? 0} served by others`],
        ]
      : []),
  ];
  const head = `${r.volume} at ${r.mountpoint} (${r.readOnly ? 'read-only' : 'read-write'}), daemon pid ${r.pid}, up ${ago(r.startedAt)}\n`;
  return head + table(rows.map(([k, v]) => [`  ${k}`, v!]));
}

/** `cairn status` without DIR: every Cairn mount in this mount namespace, with what its daemon reports. */
async function listMounts(json: boolean): Promise<void> {
  const rows = await Promise.all(
    (await findMounts()).map(async (m) => {
      const s = (await controlRequest(m.mountpoint, 'status').catch((err: unknown) => ({ error: err instanceof Error ? err.message : String(err) }))) as {
        seq?: number;
        pending?: number;
        openFiles?: unknown[];
        error?: string;
      };
      return { volume: m.volume, mountpoint: m.mountpoint, readOnly: m.readOnly, seq: s.seq ?? null, pending: s.pending ?? null, openFiles: s.openFiles?.length ?? null, ...(s.error ? { error: s.error } : {}) };
    }),
  );
  if (json) return printJson(rows);
  if (!process.stdout.isTTY) return void process.stdout.write(rows.map((r) => `${r.mountpoint}\n`).join(''));
  if (rows.length === 0) return notice('no cairn mounts here (cairn mount VOLUME DIR makes one)');
  const n = (v: number | null) => (v === null ? '?' : String(v));
  process.stdout.write(
    table(
      rows.map((r) => [r.volume, r.mountpoint, n(r.seq), n(r.pending), n(r.openFiles), r.readOnly ? 'ro' : 'rw']),
      ['VOLUME', 'MOUNTPOINT', 'SEQ', 'PENDING', 'OPEN', 'MODE'],
    ),
  );
}

export function registerMountCommands(program: Command, g: Globals): void {
  program
    .command('mount <volume> <dir>')
    .description('mount a volume with FUSE (a background daemon unless --foreground)')
    .option('--read-only', 'refuse every write (EROFS)')
    .option('--commit-interval <seconds>', 'commit in the background every N seconds (0: only on demand and at unmount)', '5')
    .option('--foreground', 'serve the mount in this process until it is unmounted or gets SIGTERM/SIGINT')
    .option('--non-empty', 'mount over a directory that has files (they are hidden while mounted)')
    .addHelpText('after', '\nExamples:\n  cairn mount data /mnt/data\n  cairn mount weights /mnt/weights --read-only\n  cairn mount data /mnt/data --commit-interval 0 --foreground')
    .action(async (volume: string, dir: string, o: { readOnly?: boolean; commitInterval: string; foreground?: boolean; nonEmpty?: boolean }) => {
      const m = await mount({
        volume,
        mountpoint: path.resolve(dir),
        store: g().store,
        readOnly: !!o.readOnly,
        commitIntervalSec: interval(o.commitInterval),
        foreground: !!o.foreground,
        nonEmpty: !!o.nonEmpty,
      });
      notice(`mounted ${volume} at ${m.mountpoint}${o.readOnly ? ' (read-only)' : ''} (daemon pid ${m.pid}${m.logFile ? `, log ${m.logFile}` : ''})`);
      if (m.closed) {
        const r = await m.closed;
        if (r.commit) notice(describeCommit(r.commit));
        if (r.error) throw new Error(`shutdown: ${r.error.code}: ${r.error.message}`);
      }
    });

  program
    .command('unmount <dir>')
    .alias('umount')
    .description('commit pending changes, then unmount')
    .option('--force', 'unmount even with open files')
    .addHelpText('after', '\nExample:\n  cairn unmount /mnt/data')
    .action(async (dir: string, o: { force?: boolean }) => {
      const r = await unmount(path.resolve(dir), { force: !!o.force });
      const c = r.result?.commit;
      notice(`unmounted ${r.mountpoint}${c ? ` (${describeCommit(c)})` : ''}`);
    });

  program
    .command('commit <dir>')
    .description('commit the pending changes of a mount; others see them after they reload')
    .option('--json', 'machine-readable output')
    .addHelpText('after', '\nExample:\n  cairn commit /mnt/data')
    .action(async (dir: string, o: { json?: boolean }) => {
      const r = (await controlRequest(path.resolve(dir), 'commit')) as CommitResult;
      if (o.json) return printJson(r);
      process.stdout.write(`${describeCommit(r)}\n`);
    });

  program
    .command('reload <dir>')
    .description('commit pending changes, then show the newest snapshot (refused while files are open)')
    .option('--json', 'machine-readable output')
    .addHelpText('after', '\nExample:\n  cairn reload /mnt/data')
    .action(async (dir: string, o: { json?: boolean }) => {
      const r = (await controlRequest(path.resolve(dir), 'reload')) as ReloadResult;
      if (o.json) return printJson(r);
      process.stdout.write(`${r.commit?.committed ? `${describeCommit(r.commit)}; ` : ''}reloaded: seq ${r.from} -> ${r.seq}\n`);
    });

  program
    .command('status [dir]')
    .description('seq, pending changes, open files and cache figures of a mount; without DIR, every cairn mount here')
    .option('--json', 'machine-readable output')
    .addHelpText('after', '\nExamples:\n  cairn status\n  cairn status /mnt/data\n  cairn status /mnt/data --json')
    .action(async (dir: string | undefined, o: { json?: boolean }) => {
      if (dir === undefined) return listMounts(!!o.json);
      const r = (await controlRequest(path.resolve(dir), 'status')) as DaemonStatus;
      if (o.json) return printJson(r);
      process.stdout.write(describeStatus(r));
    });
}
