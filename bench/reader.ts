/**
 * One benchmark reader process: reads a list of files (plain file I/O, from a mount or a local
 * directory) or a list of objects (raw AWS SDK GetObject), and reports when it started, when the
 * first byte arrived and when it finished.
 *
 * Protocol (so that N readers start together): the reader prints `{"event":"ready"}` once it is
 * set up, waits for one line on stdin (`go`), reads, prints one JSON result line and exits:
 *
 *   {"event":"result","startMs":..,"firstByteMs":..,"endMs":..,"bytes":..,"files":..}
 *
 * Times are epoch milliseconds with sub-millisecond precision (performance.timeOrigin + now()),
 * comparable across processes. Every byte is read into a reused buffer and counted; nothing is
 * written. Files are read `concurrency` at a time, each from start to end with `bufSize` reads.
 *
 * Each file's bytes are checked against `checks` (bench/verify.ts: its size always, the content
 * of sampled ranges): a short, long or wrong file ends the reader with an `error` event instead
 * of a result, so the group records a failure rather than a figure.
 *
 * Usage: node dist/bench/reader.js '<json ReaderSpec>'
 */
import { promises as fsp } from 'node:fs';
import readline from 'node:readline';
import { readSpecArg } from './specarg.js';
import { StreamCheck, type FileCheck } from './verify.js';

export interface ReaderSpec {
  /** Absolute paths to read (file mode). */
  files?: string[];
  /** Objects to GET (S3 mode). */
  s3?: { endpoint: string; bucket: string; keys: string[] };
  /** Files (or objects) in flight at once (default 1). */
  concurrency?: number;
  /** Read size in bytes (default 1 MiB). */
  bufSize?: number;
  /** What each file (or object) must hold, in the order of `files` (or `s3.keys`). */
  checks: FileCheck[];
}

export interface ReaderResult {
  startMs: number;
  firstByteMs: number;
  endMs: number;
  bytes: number;
  files: number;
}

const now = (): number => performance.timeOrigin + performance.now();

/** The check of the i-th of `names` (a spec without one for every name is refused). */
function checkFor(spec: ReaderSpec, names: string[], i: number): StreamCheck {
  const check = spec.checks?.[i];
  if (!check || spec.checks.length !== names.length) {
    throw new Error(`reader spec: ${spec.checks?.length ?? 0} checks for ${names.length} files`);
  }
  return new StreamCheck(names[i]!, check);
}

async function readFiles(spec: ReaderSpec, onFirst: () => void): Promise<{ bytes: number; files: number }> {
  const files = spec.files ?? [];
  const bufSize = spec.bufSize ?? 1024 * 1024;
  let next = 0;
  let bytes = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    const buf = Buffer.allocUnsafe(bufSize);
    while (next < files.length) {
      const i = next++;
      const check = checkFor(spec, files, i);
      const fh = await fsp.open(files[i]!, 'r');
      try {
        for (;;) {
          const { bytesRead } = await fh.read(buf, 0, bufSize, null);
          if (bytesRead === 0) break;
          if (bytes === 0) onFirst();
          bytes += bytesRead;
          check.update(buf.subarray(0, bytesRead));
        }
      } finally {
        await fh.close();
      }
      check.end();
      done++;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, spec.concurrency ?? 1) }, worker));
  return { bytes, files: done };
}

async function getObjects(spec: ReaderSpec, onFirst: () => void): Promise<{ bytes: number; files: number }> {
  const { S3Client, GetObjectCommand } = await import('@aws-sdk/client-s3');
  const { NodeHttpHandler } = await import('@smithy/node-http-handler');
  const http = await import('node:http');
  const s3 = spec.s3!;
  const client = new S3Client({
    endpoint: s3.endpoint,
    forcePathStyle: true,
    region: process.env.AWS_REGION ?? 'us-east-1',
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestHandler: new NodeHttpHandler({ httpAgent: new http.Agent({ keepAlive: true, maxSockets: 64 }) }),
  });
  let next = 0;
  let bytes = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < s3.keys.length) {
      const i = next++;
      const check = checkFor(spec, s3.keys, i);
      const out = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: s3.keys[i] }));
      for await (const chunk of out.Body as AsyncIterable<Uint8Array>) {
        if (bytes === 0) onFirst();
        bytes += chunk.length;
        check.update(chunk);
      }
      check.end();
      done++;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, spec.concurrency ?? 1) }, worker));
  client.destroy();
  return { bytes, files: done };
}

async function main(): Promise<void> {
  const spec = readSpecArg<ReaderSpec>(process.argv[2]);
  if (spec.s3) await import('@aws-sdk/client-s3'); // load the SDK before the clock starts
  process.stdout.write(`${JSON.stringify({ event: 'ready' })}\n`);
  const rl = readline.createInterface({ input: process.stdin });
  await new Promise<void>((resolve) => rl.once('line', () => resolve()));
  rl.close();
  const startMs = now();
  let firstByteMs = 0;
  const onFirst = (): void => {
    if (!firstByteMs) firstByteMs = now();
  };
  const r = spec.s3 ? await getObjects(spec, onFirst) : await readFiles(spec, onFirst);
  const result: ReaderResult = { startMs, firstByteMs: firstByteMs || now(), endMs: now(), ...r };
  process.stdout.write(`${JSON.stringify({ event: 'result', ...result })}\n`);
}

main().catch((err) => {
  process.stdout.write(`${JSON.stringify({ event: 'error', message: String(err?.stack ?? err) })}\n`);
  process.exitCode = 1;
});
