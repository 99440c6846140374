/**
 * `vol.verify()` on a big volume: builds one on a temporary file store, then times verify with
 * and without `data`, and what decoding the checkpoint costs (checksum vs whole decode).
 *
 * The volume: `--files` small inline files (default 100,000; 64 bytes each) committed `--per`
 * files per commit (default 1,000: 100 records, and the checkpoint a session writes every 100
 * seqs), plus `--chunked` files of 64 KiB of random bytes (default 1,000: 64 MiB in packs) in one
 * batch upload, so that `data` has chunks to fetch. Prints one JSON object.
 *
 * Usage: node dist/bench/verify-volume.js [--files N] [--per N] [--chunked N] [--keep]
 *   --keep: leave the temporary store (its URL is in the output, as `store`) to time the CLI on it:
 *           CAIRN_HOME=… node dist/src/cli/main.js --store URL volume verify bench [--data]
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { pathToFileURL } from 'node:url';
import type { EntryData } from '../src/format/records.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

const files = arg('files', 100_000);
const per = arg('per', 1000);
const chunked = arg('chunked', 1000);
const keep = process.argv.includes('--keep');

const root = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-bench-verify-'));
process.env.CAIRN_HOME = path.join(root, 'home');
// Imported after CAIRN_HOME is set: the chunk cache and session directories live there.
const { Volume } = await import('../src/volume/index.js');
const { openStore } = await import('../src/store/open.js');
const { keys, decodeCheckpoint } = await import('../src/format/index.js');
const { hashChunk } = await import('../src/chunks/hash.js');

const ms = (t: number) => Math.round(performance.now() - t);
try {
  const storeUrl = pathToFileURL(path.join(root, 'store')).href;
  const store = await openStore(storeUrl);
  const vol = await Volume.fromName('bench', { store, createIfMissing: true });
  let t = performance.now();
  const s = await vol.session();
  const body = Buffer.alloc(64, 'x');
  for (let done = 0; done < files; done += per) {
    const n = Math.min(per, files - done);
    const entries = Array.from({ length: n }, (_, k): [string, EntryData] => {
      const i = done + k;
      const entry: EntryData = { type: 'file', mode: 0o644, mtimeMs: Date.now(), size: body.length, inline: body };
      return [`d${Math.floor(i / 1000)}/f${i}`, entry];
    });
    s.putEntries([], entries);
    await s.commit();
  }
  await s.close();
  if (chunked > 0) {
    await vol.batchUpload({}, (b) => {
      for (let i = 0; i < chunked; i++) b.putFile(crypto.randomBytes(64 * 1024), `/chunked/c${i}`);
    });
  }
  const buildMs = ms(t);

  const cps = await store.list(keys.checkpointPrefix(vol.id));
  const records = await store.list(keys.logPrefix(vol.id));
  const cp = cps[cps.length - 1];
  let checkpoint: Record<string, number> | undefined;
  if (cp) {
    const gz = await store.get(cp.key);
    const text = gunzipSync(gz);
    t = performance.now();
    hashChunk(text);
    const hashMs = performance.now() - t;
    t = performance.now();
    const decoded = await decodeCheckpoint(gz, cp.key, vol.id);
    const decodeMs = ms(t);
    const checksumMs = Math.round(hashMs * 10) / 10;
    const sizes = { gzipBytes: gz.length, textBytes: text.length };
    checkpoint = { entries: decoded.entries.length, ...sizes, checksumMs, decodeMs };
  }

  t = performance.now();
  const meta = await vol.verify();
  const metaMs = ms(t);
  t = performance.now();
  const data = await vol.verify({ data: true });
  const dataMs = ms(t);
  if (!meta.ok || !data.ok) {
    throw new Error(`verify found problems: ${JSON.stringify([...meta.problems, ...data.problems].slice(0, 5))}`);
  }
  await vol.close();
  await store.close();
  console.log(
    JSON.stringify(
      {
        files: files + chunked,
        inlineFiles: files,
        chunkedFiles: chunked,
        records: records.length,
        recordBytes: records.reduce((a, o) => a + o.size, 0),
        checkpoint,
        buildMs,
        verify: { ms: metaMs, checked: meta.checked },
        verifyData: {
          ms: dataMs,
          checked: data.checked,
          MiBps: Math.round(data.checked.chunkBytes / 2 ** 20 / (dataMs / 1000)),
        },
        cpus: os.cpus().length,
        loadavg: os.loadavg().map((x) => Math.round(x * 10) / 10),
        ...(keep ? { store: storeUrl, home: process.env.CAIRN_HOME } : {}),
      },
      null,
      2,
    ),
  );
} finally {
  if (!keep) await fs.rm(root, { recursive: true, force: true });
}
