/**
 * The main job (the README's first command runs it) must pass on every CI run: every step of
 * the demonstration checks itself and exits non-zero when it misbehaves.
 */
import '../helpers/env.js';
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const DEMO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'demo', 'main.js');

it('runs the demonstration end to end on the embedded default store', async () => {
  const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile(process.execPath, [DEMO], { env: { ...process.env, CAIRN_DEMO_MB: '16' }, timeout: 300_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    ),
  );
  assert.equal(code, 0, `${stdout}\n${stderr}`);
  assert.match(stdout, /Demonstration complete: every check passed/);
  assert.match(stdout, /reload refused with VOLUME_BUSY naming \/hello\.txt/);
  const result = JSON.parse(/RESULT (.*)/.exec(stdout)![1]!);
  assert.equal(result.readers, 2);
  assert.ok(result.aggregateMiBps > 0);
});
