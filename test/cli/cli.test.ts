/**
 * Every `cairn volume` command end to end through the built binary (a child process), on the
 * file and S3 stores: outputs, --json shapes, exit codes, refusals, stdout streaming, bad input.
 */
import '../helpers/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { forEachBackend } from '../helpers/backends.js';
import { cairn } from './harness.js';

describe('cairn (no store needed)', () => {
  it('prints --version and --help with examples, exits 2 on usage errors', async () => {
    const v = await cairn(['--version']);
    assert.equal(v.code, 0);
    assert.match(v.out.trim(), /^\d+\.\d+\.\d+$/);
    for (const args of [['--help'], ['volume', 'put', '--help'], ['mount', '--help'], ['run', '--help']]) {
      const h = await cairn(args);
      assert.equal(h.code, 0, args.join(' '));
      assert.match(h.out, /Example/);
    }
    for (const args of [
      ['bogus'],
      ['volume', 'ls'],
      ['volume', 'create', 'x', '--nope'],
      ['mount', 'v'],
      ['mount', 'v', '/tmp/x', '--commit-interval', 'soon'],
    ]) {
      const r = await cairn(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    }
  });

  it('gives a typed one-line error for a directory that is not a mount', async () => {
    const r = await cairn(['commit', os.tmpdir()]);
    assert.equal(r.code, 1);
    assert.match(r.err, /^cairn: NOT_FOUND: .*not a cairn mount/);
    assert.equal(r.err.trim().split('\n').length, 1, 'one line, no stack trace');
  });
});

forEachBackend((b) =>
  describe(`cairn volume (${b.name})`, () => {
    let store = '';
    let local = '';
    const big = crypto.randomBytes(3 * 1024 * 1024 + 5);
    const c = (...args: string[]) => cairn(['--store', store, ...args]);
    before(async () => {
      await b.start();
      store = b.url();
      local = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-cli-'));
      await fs.mkdir(path.join(local, 'src/sub'), { recursive: true });
      await fs.writeFile(path.join(local, 'src/a.txt'), 'alpha\n');
      await fs.writeFile(path.join(local, 'src/sub/big.bin'), big);
      await fs.writeFile(path.join(local, 'one.txt'), 'one\n');
    });
    after(async () => {
      await b.stop();
      await fs.rm(local, { recursive: true, force: true });
    });

    it('create, list (--json), rename, delete with --yes', async () => {
      assert.equal((await c('volume', 'create', 'alpha')).code, 0);
      assert.equal((await c('volume', 'create', 'beta')).code, 0);
      const dup = await c('volume', 'create', 'alpha');
      assert.equal(dup.code, 1);
      assert.match(dup.err, /ALREADY_EXISTS/);
      const list = JSON.parse((await c('volume', 'list', '--json')).out);
      assert.deepEqual(
        list.map((v: { name: string }) => v.name),
        ['beta', 'alpha'],
      );
      assert.deepEqual(Object.keys(list[0]).sort(), ['createdAt', 'createdBy', 'id', 'name']);
      const piped = await c('volume', 'list');
      assert.equal(piped.out, 'beta\nalpha\n', 'bare names when piped');
      assert.doesNotMatch(piped.err, /Warning/, "no warning of the AWS SDK's (or Node's) before the output");
      assert.equal((await c('volume', 'rename', 'beta', 'gamma')).code, 0);
      const refused = await c('volume', 'delete', 'gamma');
      assert.equal(refused.code, 2);
      assert.match(refused.err, /--yes/);
      assert.match((await c('volume', 'list')).out, /gamma/, 'nothing deleted without --yes');
      assert.equal((await c('volume', 'delete', 'gamma', '--yes')).code, 0);
      assert.equal((await c('volume', 'delete', 'gamma', '--yes')).code, 1);
      assert.equal((await c('volume', 'delete', 'gamma', '--yes', '--allow-missing')).code, 0);
      const bad = await c('volume', 'create', 'bad name!');
      assert.equal(bad.code, 1);
      assert.match(bad.err, /INVALID_ARGUMENT/);
      assert.equal((await c('volume', 'list')).out, 'alpha\n');
    });

    it('put and get files and directories, with --force rules, and get - to stdout', async () => {
      assert.equal((await c('volume', 'put', 'alpha', path.join(local, 'src'), '/data')).code, 0);
      assert.equal((await c('volume', 'put', 'alpha', path.join(local, 'one.txt'), '/data/')).code, 0);
      assert.equal((await c('volume', 'ls', 'alpha', '/data')).out, 'data/a.txt\ndata/one.txt\ndata/sub\n');
      const ls = JSON.parse((await c('volume', 'ls', 'alpha', '/data/sub', '--json')).out);
      const { mtime, atime, ctime, uid, gid } = ls[0];
      assert.deepEqual(ls, [
        { path: 'data/sub/big.bin', type: 'file', mtime, size: big.length, mode: 0o644, uid, gid, nlink: 1, atime, ctime },
      ]);
      assert.deepEqual([uid, gid], [process.getuid!(), process.getgid!()], 'no stored owner: the user running cairn');
      const again = await c('volume', 'put', 'alpha', path.join(local, 'one.txt'), '/data/one.txt');
      assert.equal(again.code, 1);
      assert.match(again.err, /ALREADY_EXISTS.*--force/);
      assert.equal((await c('volume', 'put', 'alpha', path.join(local, 'one.txt'), '/data/one.txt', '--force')).code, 0);
      const streamed = await c('volume', 'get', 'alpha', '/data/sub/big.bin', '-');
      assert.equal(streamed.code, 0);
      assert.ok(streamed.stdout.equals(big), 'get - streams the exact bytes');
      const dest = path.join(local, 'restore');
      assert.equal((await c('volume', 'get', 'alpha', '/data', dest)).code, 0);
      assert.ok((await fs.readFile(path.join(dest, 'sub/big.bin'))).equals(big));
      assert.equal(await fs.readFile(path.join(dest, 'a.txt'), 'utf8'), 'alpha\n');
      const clash = await c('volume', 'get', 'alpha', '/data/a.txt', path.join(dest, 'a.txt'));
      assert.equal(clash.code, 1);
      assert.match(clash.err, /ALREADY_EXISTS/);
      await fs.writeFile(path.join(dest, 'a.txt'), 'local change');
      assert.equal((await c('volume', 'get', 'alpha', '/data/a.txt', path.join(dest, 'a.txt'))).code, 1);
      assert.equal(await fs.readFile(path.join(dest, 'a.txt'), 'utf8'), 'local change', 'unchanged without --force');
      assert.equal((await c('volume', 'get', 'alpha', '/data/a.txt', path.join(dest, 'a.txt'), '--force')).code, 0);
      assert.equal(await fs.readFile(path.join(dest, 'a.txt'), 'utf8'), 'alpha\n');
      const missing = await c('volume', 'get', 'alpha', '/nope', '-');
      assert.equal(missing.code, 1);
      assert.match(missing.err, /NOT_FOUND/);
    });

    it('cp, rm, history, and bad paths change nothing', async () => {
      assert.equal((await c('volume', 'cp', 'alpha', '/data/a.txt', '/copy.txt')).code, 0);
      const dirNoR = await c('volume', 'cp', 'alpha', '/data', '/data2');
      assert.equal(dirNoR.code, 1);
      assert.equal((await c('volume', 'cp', 'alpha', '/data', '/data2', '-r')).code, 0);
      assert.equal((await c('volume', 'get', 'alpha', '/copy.txt', '-')).out, 'alpha\n');
      const rmDir = await c('volume', 'rm', 'alpha', '/data2');
      assert.equal(rmDir.code, 1);
      assert.match(rmDir.err, /IS_A_DIRECTORY/);
      assert.equal((await c('volume', 'rm', 'alpha', '/data2', '-r')).code, 0);
      assert.equal((await c('volume', 'rm', 'alpha', '/copy.txt')).code, 0);
      const before = JSON.parse((await c('volume', 'history', 'alpha', '--json')).out);
      assert.ok(before.length >= 5);
      assert.deepEqual(Object.keys(before[0]).sort(), ['author', 'paths', 'seq', 'time']);
      for (const args of [
        ['volume', 'ls', 'alpha', '/data/*.txt'],
        ['volume', 'rm', 'alpha', '/../etc'],
        ['volume', 'put', 'alpha', path.join(local, 'one.txt'), '/x/../y'],
        ['volume', 'ls', 'no-such-volume'],
        ['volume', 'ls', 'bad/name'],
      ]) {
        const r = await c(...args);
        assert.equal(r.code, 1, `${args.join(' ')} -> ${r.code} ${r.err}`);
        assert.match(r.err, /^cairn: (INVALID_ARGUMENT|NOT_FOUND): /);
      }
      const after = JSON.parse((await c('volume', 'history', 'alpha', '--json')).out);
      assert.equal(after.length, before.length, 'bad input committed nothing');
      assert.equal((await c('volume', 'ls', 'alpha')).out, 'data\n');
    });
  }),
);
