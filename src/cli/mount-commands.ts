/**
 * `cairn mount / unmount / commit / reload / mounts / status / stats`: the mount daemon's controls (src/fuse).
 */
import path from 'node:path';
import { Command } from 'commander';
import { mount, unmount } from '../fuse/mount.js';
import { controlRequest } from '../fuse/control.js';
import { CairnError, describeError, type ErrorCode } from '../errors.js';
import type { CommitResult, ReloadResult } from '../volume/index.js';
import { UsageError, formatBytes, notice, printJson } from './output.js';
import { type DaemonStatus, describeStatus, listMounts } from './status.js';
import { parseSeq } from './time-travel.js';
import { runStats } from './stats.js';
import { type MetricsSnapshot, parseListen } from '../util/metrics.js';

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

interface MountFlags {
  readOnly?: boolean;
  commitInterval: string;
  foreground?: boolean;
  nonEmpty?: boolean;
  allowOther?: boolean;
  seq?: number;
  metrics?: string;
  writebackCache?: boolean;
}

/** A positive number of seconds (`--interval`); a UsageError (exit 2) otherwise. */
function seconds(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0.1 || n > 3600)
    throw new UsageError(`--interval must be seconds from 0.1 to 3600, not ${JSON.stringify(v)}`);
  return n;
}

/** A count of rows (`--count`); a UsageError (exit 2) otherwise. */
function count(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--count must be a whole number >= 1, not ${JSON.stringify(v)}`);
  return n;
}

export function registerMountCommands(program: Command, g: Globals): void {
  program
    .command('mount <volume> <dir>')
    .description('mount a volume with FUSE (a background daemon unless --foreground)')
    .option('--read-only', 'refuse every write (EROFS)')
    .option('--commit-interval <seconds>', 'commit in the background every N seconds (0: only on demand and at unmount)', '5')
    .option('--foreground', 'serve the mount in this process until it is unmounted or gets SIGTERM/SIGINT')
    .option('--non-empty', 'mount over a directory that has files (they are hidden while mounted)')
    .option('--allow-other', "let every user of the host reach the mount (the kernel checks each entry's owner and mode)")
    .option('--seq <n>', 'mount the snapshot of that seq, read-only (time travel; see cairn volume history)', parseSeq)
    .option('--metrics <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics (cairn status shows the address)')
    .option(
      '--writeback-cache',
      'let the kernel cache writes (fast small writes, e.g. SQLite); unclosed, unsynced writes are lost if the daemon is killed',
    )
    .addHelpText(
      'after',
      '\nExamples:\n  cairn mount data /mnt/data\n  cairn mount weights /mnt/weights --read-only' +
        '\n  cairn mount data /mnt/data --commit-interval 0 --foreground\n  cairn mount data /mnt/data-12 --seq 12' +
        '\n  cairn mount data /mnt/data --metrics 127.0.0.1:9567',
    )
    .action(async (volume: string, dir: string, o: MountFlags) => {
      if (o.metrics !== undefined) {
        try {
          parseListen(o.metrics);
        } catch (err) {
          throw new UsageError(describeError(err), { cause: err });
        }
      }
      const m = await mount({
        volume,
        mountpoint: path.resolve(dir),
        store: g().store,
        readOnly: !!o.readOnly || o.seq !== undefined,
        ...(o.seq !== undefined ? { seq: o.seq } : {}),
        commitIntervalSec: interval(o.commitInterval),
        foreground: !!o.foreground,
        nonEmpty: !!o.nonEmpty,
        allowOther: !!o.allowOther,
        ...(o.metrics !== undefined ? { metrics: o.metrics } : {}),
        ...(o.writebackCache ? { writebackCache: true } : {}),
      });
      const mode = o.seq !== undefined ? ` (seq ${o.seq}, read-only)` : o.readOnly ? ' (read-only)' : '';
      notice(`mounted ${volume} at ${m.mountpoint}${mode} (daemon pid ${m.pid}${m.logFile ? `, log ${m.logFile}` : ''})`);
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
      const e = r.result?.error;
      if (e) throw new CairnError(e.code as ErrorCode, `the final commit failed: ${e.message}`, { path: r.mountpoint });
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
    .command('mounts')
    .description('every cairn mount in this mount namespace: volume, mount point, seq, pending changes, open files, mode, binding')
    .option('--json', 'machine-readable output')
    .addHelpText('after', "\nExamples:\n  cairn mounts\n  cairn mounts --json | jq '.[] | select(.pending > 0)'")
    .action((o: { json?: boolean }) => listMounts(!!o.json));

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

  program
    .command('stats <dir>')
    .description("a mount's live figures, one line per interval: operations, bytes, cache hits, store GETs, commits")
    .option('--interval <seconds>', 'seconds between lines', seconds, 1)
    .option('--count <n>', 'stop after N lines (default: until interrupted)', count)
    .option('--json', 'one JSON object per line')
    .addHelpText('after', '\nExamples:\n  cairn stats /mnt/data\n  cairn stats /mnt/data --interval 5 --count 12 --json')
    .action(async (dir: string, o: { interval: number; count?: number; json?: boolean }) => {
      const mountpoint = path.resolve(dir);
      const sample = async (): Promise<MetricsSnapshot> => {
        const r = (await controlRequest(mountpoint, 'status')) as { metrics?: MetricsSnapshot };
        if (!r.metrics)
          throw new CairnError('UNSUPPORTED', `the daemon of ${mountpoint} reports no figures`, {
            path: mountpoint,
            hint: 'remount it with this version of cairn',
          });
        return r.metrics;
      };
      await runStats(sample, { interval: o.interval, json: !!o.json, ...(o.count !== undefined ? { count: o.count } : {}) }, (line) =>
        process.stdout.write(`${line}\n`),
      );
    });
}
