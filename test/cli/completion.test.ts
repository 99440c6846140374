/**
 * `cairn completion bash|zsh` (issue 19): the bash script, sourced in a real bash with COMP_WORDS
 * and COMP_CWORD set, completes commands, subcommands and flags; it lists every subcommand that
 * `--help` lists (it is generated from the same program); the zsh script is well-formed.
 */
import '../helpers/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { cairn } from './harness.js';

describe('cairn completion (issue 19)', () => {
  let dir = '';
  let script = '';
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-completion-'));
    const r = await cairn(['completion', 'bash']);
    assert.equal(r.code, 0, r.err);
    script = path.join(dir, 'cairn.bash');
    await fs.writeFile(script, r.out);
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  /** What bash's completion of `words` (the last one being completed) offers. */
  function complete(...words: string[]): Promise<string[]> {
    const body = `source ${JSON.stringify(script)}
COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}
_cairn; printf '%s\\n' "\${COMPREPLY[@]}"`;
    return new Promise((resolve, reject) => {
      execFile('bash', ['--norc', '--noprofile', '-c', body], (err, stdout, stderr) => {
        if (err) return reject(new Error(`${err.message}\n${stderr}`));
        assert.equal(stderr, '');
        resolve(stdout.split('\n').filter((l) => l !== ''));
      });
    });
  }

  it('completes commands, subcommands and flags in bash', async () => {
    assert.deepEqual(await complete('cairn', 'vol'), ['volume']);
    assert.deepEqual(await complete('cairn', 'volume', 'res'), ['restore']);
    assert.deepEqual((await complete('cairn', 'volume', 'l')).sort(), ['list', 'ls']);
    assert.deepEqual((await complete('cairn', 'volume', 'ls', 'data', '/', '--s')).sort(), ['--seq', '--store']);
    assert.deepEqual(await complete('cairn', 'mount', 'data', '/mnt/d', '--read'), ['--read-only']);
    assert.deepEqual(await complete('cairn', '--store', 'file:///tmp/s', 'mou'), ['mount', 'mounts']);
    assert.deepEqual(await complete('cairn', 'umount', '--f'), ['--force']);
    assert.deepEqual(await complete('cairn', 'completion', ''), [], 'an argument: left to file completion');
    assert.deepEqual(await complete('cairn', 'volume', 'ls', '--seq', ''), [], 'a flag value is not a command');
    assert.ok((await complete('cairn', '')).includes('completion'));
    assert.ok(!(await complete('cairn', 'volume', '--')).includes('--version'), "--version is the program's alone");
  });

  it('offers every subcommand --help lists', async () => {
    const help = await cairn(['volume', '--help']);
    const listed = [...help.out.split('Commands:')[1]!.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1]!);
    assert.ok(listed.includes('restore') && listed.length > 8, help.out);
    const offered = await complete('cairn', 'volume', '');
    for (const c of listed.filter((c) => c !== 'help')) assert.ok(offered.includes(c), `${c} in ${offered.join(' ')}`);
  });

  it('bash and zsh scripts are well-formed; another shell is a usage error', async () => {
    assert.equal(spawnSync('bash', ['-n', script]).status, 0);
    const zsh = await cairn(['completion', 'zsh']);
    assert.equal(zsh.code, 0, zsh.err);
    assert.match(zsh.out, /^#compdef cairn\n/);
    assert.match(zsh.out, /\nrestore:commit the content of PATHS/);
    assert.match(zsh.out, /\ncompdef _cairn cairn\n$/);
    const hasZsh = spawnSync('zsh', ['--version']).status === 0;
    if (hasZsh) {
      await fs.writeFile(path.join(dir, '_cairn'), zsh.out);
      assert.equal(spawnSync('zsh', ['-n', path.join(dir, '_cairn')]).status, 0);
    }
    const fish = await cairn(['completion', 'fish']);
    assert.equal(fish.code, 2);
    assert.match(fish.err, /bash and zsh/);
  });
});
