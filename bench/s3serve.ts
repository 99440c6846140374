/**
 * The benchmark's object store, in a process of its own: s3rver behind the test harness's
 * conditional-write proxy (test/helpers/s3server.ts), so that serving S3 never competes with the
 * benchmark driver's event loop. Prints one JSON line `{"endpoint","bucket","url"}` when
 * listening; stops (and removes its data directory) when stdin closes or on SIGTERM.
 *
 * Usage: node dist/bench/s3serve.js
 */
import { startS3 } from '../test/helpers/s3server.js';

async function main(): Promise<void> {
  const s3 = await startS3({ bucket: 'cairn-bench' });
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void s3.stop().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('end', stop);
  process.stdin.on('close', stop);
  process.stdin.resume();
  process.stdout.write(`${JSON.stringify({ endpoint: s3.endpoint, bucket: s3.bucket, url: s3.url })}\n`);
}

main().catch((err) => {
  process.stderr.write(`s3serve: ${String(err?.stack ?? err)}\n`);
  process.exit(1);
});
