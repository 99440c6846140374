/** The child-process protocol (src/util/child.ts) with real child processes. */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CairnError } from '../../src/errors.js';
import { exited, spawnNode, waitReport } from '../../src/util/child.js';

const CHILD_JS = new URL('../../src/util/child.js', import.meta.url).href;
const ERRORS_JS = new URL('../../src/errors.js', import.meta.url).href;
const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'cairn-child-'));
after(() => fsp.rm(dir, { recursive: true, force: true }));

/** A child script: `body` runs with childInput/reportReady/reportError/CairnError in scope. */
async function script(name: string, body: string): Promise<string> {
  const file = path.join(dir, `${name}.mjs`);
  await fsp.writeFile(
    file,
    `import { childInput, reportReady, reportError } from ${JSON.stringify(CHILD_JS)};\n` +
      `import { CairnError } from ${JSON.stringify(ERRORS_JS)};\n${body}\n`,
  );
  return file;
}

const opts = { name: 'the test child', code: 'UNAVAILABLE' as const, context: { where: 'here' }, hint: 'see the log' };

describe('child-process protocol', () => {
  it('passes the input as JSON and returns the ready line', async () => {
    const js = await script(
      'ready',
      `const i = childInput(); process.stderr.write('log line\\n'); reportReady({ got: i, pid: process.pid });`,
    );
    const child = spawnNode(js, { a: [1, 'two'] }, { stdio: ['ignore', 'pipe', 'pipe'] });
    const ready = await waitReport(child, opts);
    assert.deepEqual(ready.got, { a: [1, 'two'] });
    assert.equal(ready.pid, child.pid);
    assert.equal((await exited(child)).code, 0);
  });

  it("rebuilds the child's own CairnError: code, message, hint and context, plus childContext", async () => {
    const js = await script(
      'error',
      `reportError(new CairnError('NOT_FOUND', 'snapshot 9 does not exist', { volume: 'v', hint: 'see vol.history()' })); process.exit(1);`,
    );
    const child = spawnNode(js, {}, { stdio: ['ignore', 'pipe', 'pipe'] });
    const err = (await waitReport(child, { ...opts, childContext: { logFile: '/l', volume: 'not-this' } }).catch(
      (e: unknown) => e,
    )) as CairnError;
    assert.ok(err instanceof CairnError);
    assert.equal(err.code, 'NOT_FOUND');
    assert.equal(err.message, 'snapshot 9 does not exist');
    assert.equal(err.hint, 'see vol.history()');
    assert.deepEqual(err.context, { volume: 'v', hint: 'see vol.history()', logFile: '/l' });
    assert.equal(String(err), 'NOT_FOUND: snapshot 9 does not exist (see vol.history())');
  });

  it('says when the child exits without a report, with its last words', async () => {
    const js = await script('dies', `process.stderr.write('it went wrong\\n'); process.exit(3);`);
    const child = spawnNode(js, {}, { stdio: ['ignore', 'pipe', 'pipe'] });
    let words = '';
    child.stderr!.on('data', (b: Buffer) => (words += b.toString()));
    const err = (await waitReport(child, { ...opts, tail: () => words }).catch((e: unknown) => e)) as CairnError;
    assert.equal(err.code, 'UNAVAILABLE');
    assert.match(err.message, /the test child exited \(exit 3\) before it reported: it went wrong/);
    assert.equal(err.hint, 'see the log');
    assert.equal(err.context.where, 'here');
  });

  it('gives up after the timeout, and refuses garbage', async () => {
    const slow = await script('slow', `setTimeout(() => undefined, 60_000);`);
    const a = spawnNode(slow, {}, { stdio: ['ignore', 'pipe', 'pipe'] });
    await assert.rejects(
      waitReport(a, { ...opts, timeoutMs: 200 }),
      (e: CairnError) => e.code === 'UNAVAILABLE' && /did not report within 200 ms/.test(e.message),
    );
    assert.equal((await exited(a)).signal, 'SIGTERM');
    const junk = await script('junk', `process.stdout.write('hello\\n');`);
    const b = spawnNode(junk, {}, { stdio: ['ignore', 'pipe', 'pipe'] });
    await assert.rejects(waitReport(b, opts), (e: CairnError) => e.code === 'IO' && /reported garbage: hello/.test(e.message));
  });

  it('refuses input that is not JSON', async () => {
    const js = await script('input', `try { childInput(); reportReady(); } catch (e) { reportError(e); }`);
    await waitReport(spawnNode(js, {}, { stdio: ['ignore', 'pipe', 'pipe'] }), opts);
    const { spawn } = await import('node:child_process');
    const bare = spawn(process.execPath, [js, '{not json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    await assert.rejects(waitReport(bare, opts), (e: CairnError) => e.code === 'INVALID_ARGUMENT');
  });
});
