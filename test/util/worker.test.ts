/**
 * workerExecArgv (src/util/worker.ts): what of the process's flags a worker thread is given, and
 * that a worker really starts with the result.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { workerExecArgv } from '../../src/util/worker.js';

test("a worker gets the process's Node flags, not V8's or the process-wide ones, nor -e and its script", async () => {
  const argv = [
    '--enable-source-maps',
    '--import',
    'data:text/javascript,',
    '--initial-heap-size=64',
    '--max-old-space-size=512',
    '--max_semi_space_size=16',
    '--stack-size=900',
    '--expose-gc',
    '--title',
    'cairn',
    '--cpu-prof',
    '--cpu-prof-dir=/tmp/p',
    '--input-type=module',
    '-e',
    'console.log(1)',
    '--no-warnings',
  ];
  const kept = workerExecArgv(argv);
  assert.deepEqual(kept, ['--enable-source-maps', '--import', 'data:text/javascript,', '--no-warnings']);
  // And a worker accepts what is kept (one that is refused throws ERR_WORKER_INVALID_EXEC_ARGV here).
  const w = new Worker('require("node:worker_threads").parentPort.postMessage("up")', { eval: true, execArgv: kept });
  assert.equal(await new Promise((resolve, reject) => w.once('message', resolve).once('error', reject)), 'up');
  await w.terminate();
});
