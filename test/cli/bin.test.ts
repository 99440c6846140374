/**
 * `cairn` as an installed command (issue 19): the build leaves dist/src/cli/main.js executable (its
 * shebang runs it), and scripts/link-bin.sh, which the set-up runs, puts a `cairn` on PATH that
 * keeps working across rebuilds.
 */
import '../helpers/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CLI } from './harness.js';

const run = promisify(execFile);
const repo = path.resolve(path.dirname(CLI), '..', '..', '..');
type Pkg = { version: string; bin: { cairn: string } };
const pkg = JSON.parse(await fs.readFile(path.join(repo, 'package.json'), 'utf8')) as Pkg;

describe('cairn on PATH (issue 19)', () => {
  let bindir = '';
  before(async () => {
    bindir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-bin-'));
  });
  after(async () => {
    await fs.rm(bindir, { recursive: true, force: true });
  });

  it('npm run build leaves the package bin executable', async () => {
    // the build's own last step (postbuild), run on the current output
    await run('npm', ['run', '--silent', 'postbuild'], { cwd: repo });
    const bin = path.join(repo, pkg.bin.cairn);
    assert.equal(bin, CLI);
    assert.ok(((await fs.stat(bin)).mode & 0o111) === 0o111, 'executable by all');
    const { stdout } = await run(bin, ['--version']);
    assert.equal(stdout.trim(), pkg.version);
  });

  it('link-bin.sh puts a cairn on PATH that survives a rebuild (and is idempotent)', async () => {
    for (let i = 0; i < 2; i++) await run('bash', [path.join(repo, 'scripts/link-bin.sh'), bindir]);
    const cairn = path.join(bindir, 'cairn');
    const env = { ...process.env, PATH: `${bindir}:${process.env.PATH}` };
    assert.equal((await run('cairn', ['--version'], { env })).stdout.trim(), pkg.version);
    // a rebuild rewrites dist/ and may drop the mode; the wrapper does not depend on it
    const mode = (await fs.stat(CLI)).mode & 0o7777;
    await fs.chmod(CLI, 0o644);
    try {
      assert.equal((await run(cairn, ['--version'])).stdout.trim(), pkg.version);
    } finally {
      await fs.chmod(CLI, mode);
    }
    // someone else's cairn there is left alone
    await fs.writeFile(cairn, '#!/bin/sh\necho other\n', { mode: 0o755 });
    const r = await run('bash', [path.join(repo, 'scripts/link-bin.sh'), bindir]);
    assert.match(r.stderr, /not written by/);
    assert.equal((await run(cairn, [])).stdout, 'other\n');
  });

  it('the cairn that scripts/setup.sh put on PATH runs (npm test always runs the set-up)', async () => {
    const found = await run('sh', ['-c', 'command -v cairn']).then(
      (r) => r.stdout.trim(),
      () => '',
    );
    assert.ok(found, 'no cairn on PATH: run scripts/setup.sh (npm test does)');
    assert.equal((await run(found, ['--version'])).stdout.trim(), pkg.version);
  });
});
