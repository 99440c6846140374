/**
 * `cairn volume …`: create, list, ls, put, get, rm, cp, rename, delete, info, history, verify, gc,
 * du, retention — each
 * a thin wrapper over the Volume API (no storage logic here).
 *
 * Invariants: an existing local or remote target is never overwritten without --force; a
 * volume is never deleted without --yes or a "y" typed on a terminal; nothing is written before
 * every check passed.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline/promises';
import { Command } from 'commander';
import { CairnError, isCairnError } from '../errors.js';
import { normalizePath } from '../format/paths.js';
import type { ChunkRef } from '../chunks/index.js';
import { Volume } from '../volume/index.js';
import type { FileEntry, GcReport } from '../volume/index.js';
import { UsageError, counts, formatBytes, formatTime, notice, printJson, progressBar, table } from './output.js';
import { download } from './download.js';
import { listAt, registerRestoreCommand, seqOption, sessionAt } from './time-travel.js';

type Globals = () => { store?: string };

async function withVolume<T>(name: string, g: Globals, fn: (v: Volume) => Promise<T>): Promise<T> {
  const vol = await Volume.fromName(name, { store: g().store });
  try {
    return await fn(vol);
  } finally {
    await vol.close();
  }
}

async function remoteStat(vol: Volume, p: string): Promise<FileEntry | undefined> {
  try {
    const entries = await vol.listdir(p);
    const norm = p.replace(/^\/+|\/+$/g, '');
    const dir: FileEntry = { path: norm, type: 'directory', mtime: 0, size: 0, mode: 0o755, uid: 0, gid: 0, nlink: 2, atime: 0, ctime: 0 };
    return norm !== '' && entries.length === 1 && entries[0]!.path === norm ? entries[0] : dir;
  } catch (err) {
    if (isCairnError(err, 'NOT_FOUND')) return undefined;
    throw err;
  }
}

async function localExists(p: string) {
  return fs.lstat(p).then(
    (s) => s,
    () => undefined,
  );
}

/**
 * Where `put LOCAL REMOTE` writes, as `modal volume put` does: a directory's contents land AT
 * REMOTE (so a re-run with --force refreshes it in place); a file lands at REMOTE, or inside it when
 * it is an existing directory. A REMOTE ending in "/" always means "into this directory".
 */
async function putTarget(vol: Volume, remote: string, local: string, isDir: boolean): Promise<string> {
  const into = remote.endsWith('/') || (!isDir && (await remoteStat(vol, remote))?.type === 'directory');
  return into ? `${remote.replace(/\/+$/, '')}/${path.basename(path.resolve(local))}` : remote;
}

export function registerVolumeCommands(program: Command, g: Globals): void {
  const volume = program.command('volume').description('manage volumes and their files (like `modal volume`)');

  volume
    .command('create <name>')
    .description('create a volume')
    .option('--allow-existing', 'succeed when the volume exists already (and use it)')
    .addHelpText('after', '\nExamples:\n  cairn volume create data\n  cairn volume create data --allow-existing')
    .action(async (name: string, o: { allowExisting?: boolean }) => {
      try {
        await Volume.objects.create(name, { store: g().store });
      } catch (err) {
        if (!o.allowExisting || !isCairnError(err, 'ALREADY_EXISTS')) throw err;
        return notice(`volume ${name} exists already`);
      }
      notice(`created volume ${name}`);
    });

  volume
    .command('list')
    .description('list volumes, newest first')
    .option('--json', 'machine-readable output')
    .option('--sizes', 'also the bytes each volume stores (one LIST of its objects each)')
    .addHelpText('after', '\nExamples:\n  cairn volume list\n  cairn volume list --json\n  cairn volume list --sizes')
    .action(async (o: { json?: boolean; sizes?: boolean }) => {
      const vols = await Volume.objects.list({ store: g().store, sizes: !!o.sizes });
      if (o.json) {
        return printJson(vols.map((v) => ({
          name: v.name, id: v.id, createdAt: v.createdAt.toISOString(), createdBy: v.createdBy,
          ...(o.sizes ? { storedBytes: v.storedBytes } : {}),
        })));
      }
      if (!process.stdout.isTTY && !o.sizes) return void process.stdout.write(vols.map((v) => `${v.name}\n`).join(''));
      const rows = vols.map((v) => {
        const size = o.sizes ? [formatBytes(v.storedBytes ?? 0)] : [];
        return [v.name, formatTime(v.createdAt.getTime()), v.createdBy, ...size];
      });
      process.stdout.write(table(rows, ['NAME', 'CREATED', 'BY', ...(o.sizes ? ['STORED'] : [])]));
    });

  seqOption(
    volume
      .command('ls <volume> [path]')
      .description('list the files of a volume directory (bare paths when piped)')
      .option('--json', 'machine-readable output'),
  )
    .addHelpText('after', '\nExamples:\n  cairn volume ls data\n  cairn volume ls data /models --json\n  cairn volume ls data /models --seq 12')
    .action(async (name: string, p: string | undefined, o: { json?: boolean; seq?: number }) => {
      const entries = await withVolume(name, g, async (v) => {
        if (o.seq === undefined) return v.listdir(p ?? '/');
        const s = await sessionAt(v, o.seq);
        return listAt(s, p ?? '/').finally(() => s.close());
      });
      if (o.json) return printJson(entries);
      if (!process.stdout.isTTY) return void process.stdout.write(entries.map((e) => `${e.path}\n`).join(''));
      process.stdout.write(
        table(
          entries.map((e) => [e.type, e.type === 'directory' ? '-' : formatBytes(e.size), formatTime(e.mtime * 1000), e.type === 'directory' ? `${e.path}/` : e.path]),
          ['TYPE', 'SIZE', 'MODIFIED', 'PATH'],
        ),
      );
    });

  volume
    .command('put <volume> <local> [remote]')
    .description('upload a file, or a directory\'s contents to REMOTE (recursively); REMOTE ending in / means "into it"')
    .option('-f, --force', 'overwrite existing remote files')
    .addHelpText(
      'after',
      '\nA re-run with --force refreshes REMOTE in place (remote files missing locally stay).' +
        '\n\nExamples:\n  cairn volume put data ./model.bin /models/' +
        '\n  cairn volume put data ./dataset /dataset --force' +
        '\n  cairn volume put data ./dataset /backups/       # to /backups/dataset',
    )
    .action(async (name: string, local: string, remote: string | undefined, o: { force?: boolean }) => {
      const st = await localExists(local);
      if (!st) throw new CairnError('NOT_FOUND', `no local file or directory ${local}`, { path: local });
      await withVolume(name, g, async (vol) => {
        const target = await putTarget(vol, remote ?? '/', local, st.isDirectory());
        let bar: ReturnType<typeof progressBar> | undefined;
        const put = await vol.batchUpload(
          {
            force: !!o.force,
            onProgress: ({ bytes, totalBytes }) => {
              if (totalBytes >= 8 << 20) (bar ??= progressBar('put', totalBytes)).update(bytes);
            },
          },
          (b) => (st.isDirectory() ? b.putDirectory(local, target) : b.putFile(local, target)),
        );
        bar?.stop();
        notice(`uploaded ${local} to ${name}:${target} (${counts(put.files, put.bytes)})`);
      });
    });

  seqOption(
    volume
      .command('get <volume> <remote> [dest]')
      .description('download a file or a directory (recursively); "-" writes a file to stdout')
      .option('-f, --force', 'overwrite existing local files'),
  )
    .addHelpText('after', '\nExamples:\n  cairn volume get data /models/model.bin .\n  cairn volume get data /config.json - | jq .\n  cairn volume get data /dataset ./restore --force\n  cairn volume get data /config.json old.json --seq 12')
    .action(async (name: string, remote: string, dest: string | undefined, o: { force?: boolean; seq?: number }) => {
      await withVolume(name, g, async (vol) => {
        const s = await sessionAt(vol, o.seq);
        try {
          await download(s, name, remote, dest, !!o.force);
        } finally {
          await s.close();
        }
      });
    });

  volume
    .command('rm <volume> <path>')
    .description('remove a file, or a directory with -r')
    .option('-r, --recursive', 'remove directories and their contents')
    .addHelpText('after', '\nExamples:\n  cairn volume rm data /old.txt\n  cairn volume rm data /runs -r')
    .action(async (name: string, p: string, o: { recursive?: boolean }) => {
      await withVolume(name, g, (v) => v.removeFile(p, { recursive: !!o.recursive }));
      notice(`removed ${name}:${p}`);
    });

  volume
    .command('cp <volume> <paths...>')
    .description('copy files inside a volume (cp semantics: SRC... DST); copies references, not bytes')
    .option('-r, --recursive', 'copy directories')
    .addHelpText('after', '\nExamples:\n  cairn volume cp data /a.txt /b.txt\n  cairn volume cp data /x /y /backup/ -r')
    .action(async (name: string, paths: string[], o: { recursive?: boolean }) => {
      if (paths.length < 2) throw new UsageError('cp needs at least one source and a destination (cairn volume cp VOL SRC... DST)');
      const dst = paths[paths.length - 1]!;
      await withVolume(name, g, (v) => v.copyFiles(paths.slice(0, -1), dst, { recursive: !!o.recursive }));
      notice(`copied to ${name}:${dst}`);
    });

  volume
    .command('rename <old> <new>')
    .description('rename a volume')
    .addHelpText('after', '\nExample:\n  cairn volume rename data data-v1')
    .action(async (from: string, to: string) => {
      await Volume.rename(from, to, { store: g().store });
      notice(`renamed volume ${from} to ${to}`);
    });

  volume
    .command('delete <name>')
    .description('delete a volume and all its data (irreversible)')
    .option('--allow-missing', 'succeed when the volume does not exist')
    .option('-y, --yes', 'do not ask for confirmation')
    .addHelpText('after', '\nExamples:\n  cairn volume delete scratch\n  cairn volume delete scratch --yes --allow-missing')
    .action(async (name: string, o: { allowMissing?: boolean; yes?: boolean }) => {
      if (!o.yes) {
        if (!process.stdin.isTTY) throw new UsageError(`refusing to delete volume ${name} without confirmation: pass --yes`);
        const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
        const answer = await rl.question(`Delete volume ${name} and all its data? [y/N] `);
        rl.close();
        // a "no" is not a success: scripts must not go on as if the volume were gone
        if (!/^y(es)?$/i.test(answer.trim())) throw new Error(`volume ${name} not deleted (you answered no)`);
      }
      try {
        await Volume.objects.delete(name, { store: g().store });
      } catch (err) {
        if (!o.allowMissing || !isCairnError(err, 'NOT_FOUND')) throw err;
        return notice(`no volume ${name}; nothing to delete`);
      }
      notice(`deleted volume ${name}`);
    });

  volume
    .command('info <volume>')
    .description('a volume\'s id, creation, current seq, and its files and bytes')
    .option('--json', 'machine-readable output')
    .addHelpText('after', '\nExamples:\n  cairn volume info data\n  cairn volume info data --json')
    .action(async (name: string, o: { json?: boolean }) => {
      const info = await withVolume(name, g, async (vol) => {
        const meta = await vol.info();
        const s = await vol.session({ readOnly: true });
        try {
          const all = s.descendants('/');
          const files = all.filter((e) => e.type === 'file');
          const bytes = files.reduce((n, e) => n + e.size, 0);
          const directories = all.filter((e) => e.type === 'directory').length;
          const { name: n, id, createdAt, createdBy } = meta;
          return { name: n, id, createdAt: createdAt.toISOString(), createdBy, seq: s.seq, files: files.length, directories, bytes };
        } finally {
          await s.close();
        }
      });
      if (o.json) return printJson(info);
      const rows = [
        ['name:', info.name],
        ['id:', info.id],
        ['created:', `${formatTime(Date.parse(info.createdAt))} by ${info.createdBy}`],
        ['seq:', String(info.seq)],
        ['files:', `${info.files} (${formatBytes(info.bytes)})`],
        ['directories:', String(info.directories)],
      ];
      process.stdout.write(table(rows));
    });

  volume
    .command('history <volume>')
    .description('list the commits of a volume: seq, time, author, paths changed')
    .option('--json', 'machine-readable output')
    .addHelpText('after', '\nExamples:\n  cairn volume history data\n  cairn volume history data --json')
    .action(async (name: string, o: { json?: boolean }) => {
      const h = await withVolume(name, g, (v) => v.history());
      if (o.json) return printJson(h.map((x) => ({ seq: x.seq, time: new Date(x.time).toISOString(), author: x.author, paths: x.paths })));
      const shown = (ps: string[]) => (ps.length > 4 ? `${ps.slice(0, 4).join(' ')} (+${ps.length - 4} more)` : ps.join(' '));
      process.stdout.write(table(h.map((x) => [String(x.seq), formatTime(x.time), x.author, shown(x.paths)]), ['SEQ', 'TIME', 'AUTHOR', 'PATHS']));
    });

  registerRestoreCommand(volume, g, withVolume);

  volume
    .command('verify <volume>')
    .description('check every object of a volume on the store; exit 1 naming each problem')
    .option('--data', 'also fetch every chunk and check it against its hash (reads all the data)')
    .option('--json', 'machine-readable report')
    .addHelpText('after', '\nExamples:\n  cairn volume verify data\n  cairn volume verify data --data --json')
    .action(async (name: string, o: { data?: boolean; json?: boolean }) => {
      const r = await Volume.objects.verify(name, { store: g().store, data: !!o.data });
      const n = (k: number, what: string) => `${k} ${what}${k === 1 ? '' : 's'}`;
      if (o.json) printJson(r);
      else {
        const c = r.checked;
        const what = [n(c.records, 'record'), n(c.checkpoints, 'checkpoint'), n(c.packs, 'pack')];
        if (r.data) what.push(`${n(c.chunks, 'chunk')} (${formatBytes(c.chunkBytes)})`);
        const formats = Object.entries(r.formats).map(([v, k]) => `${k} in format ${v}`).join(', ');
        const took = `${(r.elapsedMs / 1000).toFixed(1)} s`;
        const head = `volume ${name} (${r.id || 'id unknown'}): ${what.join(', ')} in ${took}`;
        const out = [`${head}${formats ? ` [${formats}]` : ''}\n`];
        if (r.problems.length) {
          out.push(`\n${n(r.problems.length, 'problem')}:\n`);
          out.push(table(r.problems.map((p) => [p.kind, p.code, p.key, p.problem]), ['KIND', 'CODE', 'KEY', 'PROBLEM']));
        }
        if (r.orphans.length) {
          const why = 'not problems: packs of failed or running commits, unknown keys';
          out.push(`\n${n(r.orphans.length, 'orphan')} (${why}):\n`);
          out.push(table(r.orphans.map((x) => [x.kind, formatBytes(x.size), x.key]), ['KIND', 'SIZE', 'KEY']));
        }
        if (r.ok) out.push('ok\n');
        process.stdout.write(out.join(''));
      }
      if (!r.ok) {
        throw new CairnError('CORRUPT', `volume ${name} has ${n(r.problems.length, 'problem')} (listed above)`, {
          volume: name,
          hint: 'restore the objects named from a backup, or copy what reads well to a new volume',
        });
      }
    });

  volume
    .command('gc [volume]')
    .description('delete what no retained snapshot needs: pruned history, unreferenced packs (after a grace period)')
    .option('--keep-last <n>', "for this run: keep the newest N snapshots (not the volume's retention)")
    .option('--keep-days <d>', "for this run: keep the snapshots of the last D days (not the volume's retention)")
    .option('--dry-run', 'report what would go; change nothing')
    .option('--grace <seconds>', 'age (store clock) before an unreferenced pack goes; default 3600 (shorter: tests)')
    .option('--json', 'machine-readable report')
    .addHelpText(
      'after',
      '\nWithout VOLUME: every volume of the store, the data of deleted volumes and stale temporary files.\n'
        + 'Packs are condemned by one run and deleted by a run at least a grace period later.\n'
        + '\nExamples:\n  cairn volume gc data --dry-run\n  cairn volume gc data --keep-last 1\n'
        + '  cairn volume gc --json',
    )
    .action(async (name: string | undefined, o: GcFlags) => {
      const opts = {
        ...(o.keepLast !== undefined ? { keepLast: numberOption(o.keepLast, '--keep-last') } : {}),
        ...(o.keepDays !== undefined ? { keepDays: numberOption(o.keepDays, '--keep-days') } : {}),
        ...(o.grace !== undefined ? { graceMs: Math.round(numberOption(o.grace, '--grace') * 1000) } : {}),
        dryRun: !!o.dryRun,
        ...(o.json || !process.stderr.isTTY ? {} : { onProgress: (phase: string) => showPhase(phase) }),
      };
      const clear = () => { if (opts.onProgress) process.stderr.write('\r\x1b[K'); };
      if (name !== undefined) {
        const r = await withVolume(name, g, (v) => v.gc(opts));
        clear();
        return o.json ? printJson(r) : void process.stdout.write(gcSummary(r));
      }
      const r = await Volume.objects.gc({ store: g().store, ...opts });
      clear();
      if (o.json) return printJson(r);
      const out = r.volumes.map(gcSummary);
      const d = r.deletedVolumes;
      const verb = r.dryRun ? 'would delete' : 'deleted';
      out.push(`deleted volumes: ${verb} ${d.ids.length} (${d.objects} objects, ${formatBytes(d.bytes)})\n`);
      const tmp = r.temporary;
      if (tmp.count) out.push(`temporary files: ${verb} ${tmp.count} (${formatBytes(tmp.bytes)})\n`);
      process.stdout.write(out.join(''));
    });

  volume
    .command('du <volume>')
    .description('what a volume stores: live bytes, deduplicated, history, stored, reclaimable')
    .option('--json', 'machine-readable report')
    .addHelpText('after', '\nExamples:\n  cairn volume du data\n  cairn volume du data --json')
    .action(async (name: string, o: { json?: boolean }) => {
      const u = await withVolume(name, g, (v) => v.usage());
      if (o.json) return printJson(u);
      const rows = [
        ['live', formatBytes(u.liveBytes), `${u.files} files in the newest snapshot (seq ${u.head})`],
        ['shared', formatBytes(u.sharedBytes), 'saved by deduplication in the newest snapshot'],
        ['retained', formatBytes(u.retainedBytes), `chunks of the snapshots kept (seq ${u.retainedFrom}-${u.head})`],
        ['stored', formatBytes(u.storedBytes), `${u.objects} objects (${u.packs} packs, ${formatBytes(u.packBytes)})`],
        ['reclaimable', formatBytes(u.reclaimableBytes), 'packs no kept snapshot references (gc deletes them)'],
        ['dead in packs', formatBytes(u.deadInLivePacksBytes), 'unreferenced bytes inside referenced packs'],
      ];
      process.stdout.write(table(rows, ['', 'BYTES', '']));
    });

  volume
    .command('warmup <volume> [paths...]')
    .description('fetch files (directories: all files inside) into the host chunk cache ahead of readers')
    .option('--json', 'machine-readable report')
    .addHelpText('after', '\nExamples:\n  cairn volume warmup data /models\n  cairn volume warmup data /a.bin /b.bin --json')
    .action(async (name: string, paths: string[], o: { json?: boolean }) => {
      await withVolume(name, g, async (vol) => {
        const s = await vol.session({ readOnly: true });
        try {
          const refs: ChunkRef[] = [];
          let files = 0;
          for (const p of paths.length > 0 ? paths : ['/']) {
            const dir = (await s.stat(p)).type === 'directory';
            for (const e of dir ? s.journal.descendants(normalizePath(p)) : [s.journal.get(normalizePath(p))!]) {
              if (e.type === 'file' && e.chunks) {
                files++;
                refs.push(...e.chunks);
              }
            }
          }
          let bar: ReturnType<typeof progressBar> | undefined;
          const r = await s.chunks.warm(refs, { onProgress: (done, total) => (bar ??= progressBar('warmup', total)).update(done) });
          bar?.stop();
          if (o.json) printJson({ files, ...r });
          else notice(`warmed ${name}: ${counts(files, r.bytes)} in the host cache (${formatBytes(r.fetchedBytes)} fetched now)`);
        } finally {
          await s.close();
        }
      });
    });

  volume
    .command('retention <volume>')
    .description('show or set which snapshots of a volume stay readable (gc prunes the rest)')
    .option('--keep-last <n>', 'keep at least the newest N snapshots (N >= 1)')
    .option('--keep-days <d>', 'keep every snapshot of the last D days (0: none by age)')
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      '\nExamples:\n  cairn volume retention data\n  cairn volume retention data --keep-last 10 --keep-days 1',
    )
    .action(async (name: string, o: { keepLast?: string; keepDays?: string; json?: boolean }) => {
      const set = {
        ...(o.keepLast !== undefined ? { keepLast: numberOption(o.keepLast, '--keep-last') } : {}),
        ...(o.keepDays !== undefined ? { keepDays: numberOption(o.keepDays, '--keep-days') } : {}),
      };
      const p = await withVolume(name, g, (v) => (Object.keys(set).length ? v.setRetention(set) : v.retention()));
      if (o.json) return printJson(p);
      const what = `the newest ${p.keepLast} snapshots and those of the last ${p.keepDays} days`;
      process.stdout.write(`volume ${name} keeps ${what}\n`);
    });
}

/** gc's progress on a terminal: the phase it is in. */
function showPhase(phase: string): void {
  process.stderr.write(`\r${phase}…`);
}

interface GcFlags {
  keepLast?: string;
  keepDays?: string;
  dryRun?: boolean;
  grace?: string;
  json?: boolean;
}

/** A numeric option's value, or UsageError. */
function numberOption(v: string, flag: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`${flag} needs a number, not ${JSON.stringify(v)}`);
  return n;
}

/** One volume's gc report, for a terminal. */
function gcSummary(r: GcReport): string {
  const verb = r.dryRun ? 'would delete' : 'deleted';
  const p = r.packs;
  const kept = `seq ${r.retainedFrom}-${r.head} (newest ${r.policy.keepLast}, last ${r.policy.keepDays} days)`;
  const lines = [
    `volume ${r.volume}: keeps ${kept}`,
    `  history: ${verb} ${r.records.deleted} records, ${r.checkpoints.deleted} checkpoints`
      + ` (${formatBytes(r.records.deletedBytes + r.checkpoints.deletedBytes)})`,
    `  packs: ${p.live} live of ${p.total} (${formatBytes(p.liveBytes)} live);`
      + ` ${verb} ${p.deleted} (${formatBytes(p.deletedBytes)});`
      + ` ${r.dryRun ? 'would condemn' : 'condemned'} ${p.condemned} (${formatBytes(p.condemnedBytes)}, deleted by a gc`
      + ` ${Math.round(r.graceMs / 1000)} s or more from now); ${p.young} unreferenced but young`,
  ];
  return `${lines.join('\n')}\n`;
}
