/**
 * `cairn volume verify | gc | du | warmup | retention`: the upkeep of a volume's storage —
 * integrity checks, history retention and garbage collection, usage, and filling the host cache.
 */
import { Command } from 'commander';
import { CairnError } from '../errors.js';
import { normalizePath } from '../format/paths.js';
import type { ChunkRef } from '../chunks/index.js';
import { Volume } from '../volume/index.js';
import type { GcReport } from '../volume/index.js';
import { UsageError, counts, formatBytes, notice, printJson, progressBar, table } from './output.js';
import { type Globals, withVolume } from './with-volume.js';
import { BACKGROUND_NICE } from '../util/priority.js';

/** Registers the upkeep subcommands under `cairn volume`. */
export function registerUpkeepCommands(volume: Command, g: Globals): void {
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
        const formats = Object.entries(r.formats)
          .map(([v, k]) => `${k} in format ${v}`)
          .join(', ');
        const took = `${(r.elapsedMs / 1000).toFixed(1)} s`;
        const head = `volume ${name} (${r.id || 'id unknown'}): ${what.join(', ')} in ${took}`;
        const out = [`${head}${formats ? ` [${formats}]` : ''}\n`];
        if (r.problems.length) {
          out.push(`\n${n(r.problems.length, 'problem')}:\n`);
          out.push(
            table(
              r.problems.map((p) => [p.kind, p.code, p.key, p.problem]),
              ['KIND', 'CODE', 'KEY', 'PROBLEM'],
            ),
          );
        }
        if (r.orphans.length) {
          const why = 'not problems: packs of failed or running commits, unknown keys';
          out.push(`\n${n(r.orphans.length, 'orphan')} (${why}):\n`);
          out.push(
            table(
              r.orphans.map((x) => [x.kind, formatBytes(x.size), x.key]),
              ['KIND', 'SIZE', 'KEY'],
            ),
          );
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
    .option('--compact-threshold <f>', 'rewrite a referenced pack once this share of its bytes is dead; default 0.5, 1 = never')
    .option('--nice <n>', `CPU priority of this gc process (nice 0-19; default ${BACKGROUND_NICE}: commits and reads go first)`)
    .option('--json', 'machine-readable report')
    .addHelpText(
      'after',
      '\nWithout VOLUME: every volume of the store, the data of deleted volumes and stale temporary files.\n' +
        'Packs are condemned by one run and deleted by a run at least a grace period later.\n' +
        'Compaction: the live chunks of a referenced pack at least half dead are copied to a new pack\n' +
        '(reads of the old one are forwarded there), and the old pack goes like an unreferenced one.\n' +
        '\nExamples:\n  cairn volume gc data --dry-run\n  cairn volume gc data --keep-last 1\n' +
        '  cairn volume gc --json',
    )
    .action(async (name: string | undefined, o: GcFlags) => {
      const opts = {
        ...(o.keepLast !== undefined ? { keepLast: numberOption(o.keepLast, '--keep-last') } : {}),
        ...(o.keepDays !== undefined ? { keepDays: numberOption(o.keepDays, '--keep-days') } : {}),
        ...(o.grace !== undefined ? { graceMs: Math.round(numberOption(o.grace, '--grace') * 1000) } : {}),
        ...(o.compactThreshold !== undefined ? { compactThreshold: numberOption(o.compactThreshold, '--compact-threshold') } : {}),
        nice: o.nice !== undefined ? numberOption(o.nice, '--nice') : BACKGROUND_NICE,
        dryRun: !!o.dryRun,
        ...(o.json || !process.stderr.isTTY ? {} : { onProgress: (phase: string) => showPhase(phase) }),
      };
      const clear = () => {
        if (opts.onProgress) process.stderr.write('\r\x1b[K');
      };
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
    .addHelpText('after', '\nExamples:\n  cairn volume retention data\n  cairn volume retention data --keep-last 10 --keep-days 1')
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
  nice?: string;
  compactThreshold?: string;
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
    `  history: ${verb} ${r.records.deleted} records, ${r.checkpoints.deleted} checkpoints` +
      ` (${formatBytes(r.records.deletedBytes + r.checkpoints.deletedBytes)})`,
    `  packs: ${p.live} live of ${p.total} (${formatBytes(p.liveBytes)} live);` +
      ` ${verb} ${p.deleted} (${formatBytes(p.deletedBytes)});` +
      ` ${r.dryRun ? 'would condemn' : 'condemned'} ${p.condemned} (${formatBytes(p.condemnedBytes)}, deleted by a gc` +
      ` ${Math.round(r.graceMs / 1000)} s or more from now); ${p.young} unreferenced but young`,
    `  compaction: ${r.dryRun ? 'would rewrite' : 'rewrote'} ${r.compaction.packs} pack(s) at least` +
      ` ${Math.round(r.compaction.threshold * 100)}% dead (${formatBytes(r.compaction.packBytes)}, ` +
      `${formatBytes(r.compaction.copiedBytes)} live copied); ${r.compaction.forwardsDeleted} forwarding object(s) ${verb}`,
  ];
  return `${lines.join('\n')}\n`;
}
