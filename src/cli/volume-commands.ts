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
import { Volume } from '../volume/index.js';
import type { FileEntry } from '../volume/index.js';
import { UsageError, counts, formatBytes, formatTime, notice, printJson, progressBar, table } from './output.js';
import { download } from './download.js';
import { listAt, registerRestoreCommand, seqOption, sessionAt } from './time-travel.js';
import { type Globals, withVolume } from './with-volume.js';

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

/** Registers `cairn volume …` (files and names); returns the `volume` command for more subcommands. */
export function registerVolumeCommands(program: Command, g: Globals): Command {
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
        return printJson(
          vols.map((v) => ({
            name: v.name,
            id: v.id,
            createdAt: v.createdAt.toISOString(),
            createdBy: v.createdBy,
            ...(o.sizes ? { storedBytes: v.storedBytes } : {}),
          })),
        );
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
    .addHelpText(
      'after',
      '\nExamples:\n  cairn volume ls data\n  cairn volume ls data /models --json\n  cairn volume ls data /models --seq 12',
    )
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
          entries.map((e) => [
            e.type,
            e.type === 'directory' ? '-' : formatBytes(e.size),
            formatTime(e.mtime * 1000),
            e.type === 'directory' ? `${e.path}/` : e.path,
          ]),
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
        const skipped = put.skipped ? `; ${put.skipped} skipped: symlinks to directories, dangling symlinks, fifos, sockets, devices` : '';
        notice(`uploaded ${local} to ${name}:${target} (${counts(put.files, put.bytes)}${skipped})`);
      });
    });

  seqOption(
    volume
      .command('get <volume> <remote> [dest]')
      .description('download a file or a directory (recursively); "-" writes a file to stdout')
      .option('-f, --force', 'overwrite existing local files'),
  )
    .addHelpText(
      'after',
      '\nExamples:\n  cairn volume get data /models/model.bin .\n  cairn volume get data /config.json - | jq .\n  cairn volume get data /dataset ./restore --force\n  cairn volume get data /config.json old.json --seq 12',
    )
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
    .description("a volume's id, creation, current seq, and its files and bytes")
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
      process.stdout.write(
        table(
          h.map((x) => [String(x.seq), formatTime(x.time), x.author, shown(x.paths)]),
          ['SEQ', 'TIME', 'AUTHOR', 'PATHS'],
        ),
      );
    });

  registerRestoreCommand(volume, g, withVolume);

  return volume;
}
