/**
 * The CLI as a shell user meets it (issue 19), through the built binary on the embedded store of
 * a private CAIRN_HOME: pipes that close early, Modal's `put --force` semantics, hints in the
 * CLI's words, name rules, honest messages and exit codes.
 */
import '../helpers/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { startS3, type S3Server } from '../helpers/s3server.js';
import { CLI, cairn, cairnIntoClosedPipe, unmountQuietly } from './harness.js';

/** Runs a bash pipeline with `set -o pipefail`; `$CAIRN` is the built binary. */
function sh(script: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', `set -o pipefail; ${script}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CAIRN: `${process.execPath} ${CLI}` },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

describe('cairn in a shell (issue 19)', () => {
  let local = '';
  before(async () => {
    local = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-ux-'));
  });
  after(async () => {
    await fs.rm(local, { recursive: true, force: true });
  });

  it('exits 0 without a word when the reader of stdout goes away (| head)', async () => {
    const small = path.join(local, 'small');
    await fs.mkdir(small);
    for (let i = 0; i < 1500; i++) await fs.writeFile(path.join(small, `f${String(i).padStart(5, '0')}.txt`), `${i}\n`);
    await fs.writeFile(path.join(local, 'blob.bin'), crypto.randomBytes(2 << 20));
    assert.equal((await cairn(['volume', 'create', 'big'])).code, 0);
    assert.equal((await cairn(['volume', 'put', 'big', small, '/small'])).code, 0);
    assert.equal((await cairn(['volume', 'put', 'big', path.join(local, 'blob.bin'), '/blob.bin'])).code, 0);
    for (const args of [
      ['volume', 'ls', 'big', '/small'],
      ['volume', 'ls', 'big', '/small', '--json'],
      ['volume', 'history', 'big', '--json'],
      ['volume', 'list', '--json'],
      ['volume', 'get', 'big', '/blob.bin', '-'],
    ]) {
      for (const keep of [0, 1]) {
        const r = await cairnIntoClosedPipe(args, keep);
        const got = { code: r.code, signal: r.signal, err: r.err };
        assert.deepEqual(got, { code: 0, signal: null, err: '' }, `${args.join(' ')} (keep ${keep})`);
      }
    }
    const head = await sh('$CAIRN volume ls big /small | head -1');
    assert.deepEqual(head, { code: 0, out: 'small/f00000.txt\n', err: '' });
    const json = await sh('$CAIRN volume ls big /small --json | head -2');
    assert.deepEqual(json, { code: 0, out: '[\n  {\n', err: '' });
    const bytes = await sh('$CAIRN volume get big /blob.bin - | head -c 10 | wc -c');
    assert.deepEqual(bytes, { code: 0, out: '10\n', err: '' });
  });
});

describe('cairn volume put, as modal volume put (issue 19)', () => {
  let local = '';
  before(async () => {
    local = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-put-'));
  });
  after(async () => {
    await fs.rm(local, { recursive: true, force: true });
  });

  it('put DIR /path --force again refreshes /path in place; a trailing / means "into"', async () => {
    const ds = path.join(local, 'dataset');
    await fs.mkdir(path.join(ds, 'sub'), { recursive: true });
    await fs.writeFile(path.join(ds, 'a.txt'), 'old\n');
    await fs.writeFile(path.join(ds, 'sub/s.txt'), 's\n');
    assert.equal((await cairn(['volume', 'create', 'pv'])).code, 0);
    assert.equal((await cairn(['volume', 'put', 'pv', ds, '/dataset'])).code, 0);
    await fs.writeFile(path.join(ds, 'a.txt'), 'new\n');
    await fs.writeFile(path.join(ds, 'b.txt'), 'b\n');
    const again = await cairn(['volume', 'put', 'pv', ds, '/dataset', '--force']);
    assert.equal(again.code, 0, again.err);
    assert.equal((await cairn(['volume', 'ls', 'pv', '/dataset'])).out, 'dataset/a.txt\ndataset/b.txt\ndataset/sub\n');
    assert.equal((await cairn(['volume', 'get', 'pv', '/dataset/a.txt', '-'])).out, 'new\n');
    const thrice = await cairn(['volume', 'put', 'pv', ds, '/dataset', '--force']);
    assert.equal(thrice.code, 0, thrice.err);
    assert.equal((await cairn(['volume', 'ls', 'pv', '/dataset'])).out, 'dataset/a.txt\ndataset/b.txt\ndataset/sub\n');
    // without --force a clash is refused and changes nothing
    await fs.writeFile(path.join(ds, 'a.txt'), 'newer\n');
    const clash = await cairn(['volume', 'put', 'pv', ds, '/dataset']);
    assert.equal(clash.code, 1);
    assert.match(clash.err, /ALREADY_EXISTS/);
    assert.equal((await cairn(['volume', 'get', 'pv', '/dataset/a.txt', '-'])).out, 'new\n');
    // a trailing slash: into that directory, created when missing, also idempotent
    for (let i = 0; i < 2; i++) {
      const into = await cairn(['volume', 'put', 'pv', ds, '/into/', '--force']);
      assert.equal(into.code, 0, into.err);
      assert.equal((await cairn(['volume', 'ls', 'pv', '/into'])).out, 'into/dataset\n');
    }
    // no REMOTE: into the root, so /dataset again
    assert.equal((await cairn(['volume', 'put', 'pv', ds, '--force'])).code, 0);
    assert.equal((await cairn(['volume', 'ls', 'pv', '/'])).out, 'dataset\ninto\n');
    assert.equal((await cairn(['volume', 'get', 'pv', '/dataset/a.txt', '-'])).out, 'newer\n');
    // a file onto an existing directory still goes into it
    assert.equal((await cairn(['volume', 'put', 'pv', path.join(ds, 'b.txt'), '/into'])).code, 0);
    assert.equal((await cairn(['volume', 'ls', 'pv', '/into'])).out, 'into/b.txt\ninto/dataset\n');
  });
});

describe('volume names (issue 19)', () => {
  it('one rule, enforced at the edge: INVALID_ARGUMENT for . .. -dash and the like', async () => {
    for (const bad of ['.', '..', '-dash', '.hidden', '_under', 'a/b', 'x'.repeat(64), 'sp ace', '']) {
      const r = await cairn(['volume', 'create', '--', bad]);
      assert.equal(r.code, 1, `${JSON.stringify(bad)}: ${r.err}`);
      assert.match(r.err, /^cairn: INVALID_ARGUMENT: invalid volume name /, JSON.stringify(bad));
      assert.match(r.err, /start with a letter or a digit/);
    }
    for (const good of ['a', '9lives', 'my-vol.v1_x', `a${'-'.repeat(62)}`]) {
      const r = await cairn(['volume', 'create', good]);
      assert.equal(r.code, 0, `${good}: ${r.err}`);
    }
    const names = (await cairn(['volume', 'list'])).out.split('\n');
    for (const bad of ['.', '..', '-dash']) assert.ok(!names.includes(bad), `${bad} was not created`);
  });
});

/** Runs the binary on a pseudo-terminal (util-linux `script`) with `input` typed in. */
function onTerminal(args: string[], input: string): Promise<{ code: number | null; out: string }> {
  const cmd = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env: process.env });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
    child.stdin.end(input);
  });
}

describe('messages and exit codes that do not mislead (issue 19)', () => {
  let local = '';
  before(async () => {
    local = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-msg-'));
  });
  after(async () => {
    await fs.rm(local, { recursive: true, force: true });
  });

  it('delete: --allow-missing of a missing volume says so; N at the prompt exits 1 and deletes nothing', async () => {
    const gone = await cairn(['volume', 'delete', 'never-was', '--yes', '--allow-missing']);
    assert.equal(gone.code, 0);
    assert.doesNotMatch(gone.err, /deleted volume/);
    assert.match(gone.err, /no volume never-was/);
    assert.equal((await cairn(['volume', 'create', 'keep'])).code, 0);
    const no = await onTerminal(['volume', 'delete', 'keep'], 'n\n');
    assert.equal(no.code, 1, no.out);
    assert.match(no.out, /not deleted/);
    assert.ok((await cairn(['volume', 'list'])).out.split('\n').includes('keep'), 'still there');
    const yes = await onTerminal(['volume', 'delete', 'keep'], 'y\n');
    assert.equal(yes.code, 0, yes.out);
    assert.match(yes.out, /deleted volume keep/);
    assert.ok(!(await cairn(['volume', 'list'])).out.split('\n').includes('keep'), 'gone');
  });

  it('run: a bad -v spec or --commit-interval is a usage error (2); a missing volume a failure (1)', async () => {
    const marker = path.join(local, 'started');
    const bad = [
      ['-v', 'v'],
      ['-v', 'v:data'],
      ['-v', 'bad name:/data'],
      ['-v', 'v:/data:rx'],
    ];
    bad.push(['-v', 'a:/x', '-v', 'b:/x']);
    for (const args of [...bad, ['--commit-interval', 'soon']]) {
      const r = await cairn(['run', ...args, '--', 'touch', marker]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
      assert.match(r.err, args[0] === '-v' ? /^cairn: INVALID_ARGUMENT: / : /^cairn: --commit-interval /);
      assert.equal(r.err.trim().split('\n').length, 1, 'one line');
    }
    const missing = await cairn(['run', '-v', 'missing-vol:/data', '--', 'touch', marker]);
    assert.equal(missing.code, 1);
    await assert.rejects(fs.access(marker), 'the command never started');
  });

  it('put and get report files and bytes, small (inlined) files included; commit says what it changed', async () => {
    const d = path.join(local, 'small');
    await fs.mkdir(d);
    for (const n of ['a', 'b', 'c']) await fs.writeFile(path.join(d, `${n}.txt`), 'four');
    assert.equal((await cairn(['volume', 'create', 'counts'])).code, 0);
    const put = await cairn(['volume', 'put', 'counts', d, '/small']);
    assert.equal(put.code, 0, put.err);
    assert.match(put.err, /\(3 files, 12 B\)/);
    const one = await cairn(['volume', 'put', 'counts', path.join(d, 'a.txt'), '/one.txt']);
    assert.match(one.err, /\(1 file, 4 B\)/);
    const get = await cairn(['volume', 'get', 'counts', '/small', path.join(local, 'back')]);
    assert.equal(get.code, 0, get.err);
    assert.match(get.err, /\(3 files, 12 B\)/);
    const mnt = path.join(local, 'mnt');
    await fs.mkdir(mnt);
    assert.equal((await cairn(['mount', 'counts', mnt, '--commit-interval', '0'])).code, 0);
    try {
      await fs.writeFile(path.join(mnt, 'tiny.txt'), 'hi\n');
      const c = await cairn(['commit', mnt]);
      assert.equal(c.code, 0, c.err);
      assert.doesNotMatch(c.out, /0 B uploaded/);
      assert.match(c.out, /^committed seq \d+: 1 path changed/);
    } finally {
      await unmountQuietly(mnt);
    }
  });
});

describe('cp into DIR/ (issue 19)', () => {
  it('a DST ending in / is a directory: created when missing (as put … /models/ does), never a file', async () => {
    const local = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-cp-'));
    try {
      await fs.writeFile(path.join(local, 'a.txt'), 'a\n');
      await fs.writeFile(path.join(local, 'b.txt'), 'b\n');
      assert.equal((await cairn(['volume', 'create', 'cpv'])).code, 0);
      assert.equal((await cairn(['volume', 'put', 'cpv', path.join(local, 'a.txt'), '/a.txt'])).code, 0);
      assert.equal((await cairn(['volume', 'put', 'cpv', path.join(local, 'b.txt'), '/b.txt'])).code, 0);
      const many = await cairn(['volume', 'cp', 'cpv', '/a.txt', '/b.txt', '/backup/']);
      assert.equal(many.code, 0, many.err);
      assert.equal((await cairn(['volume', 'ls', 'cpv', '/backup'])).out, 'backup/a.txt\nbackup/b.txt\n');
      const one = await cairn(['volume', 'cp', 'cpv', '/a.txt', '/deep/er/']);
      assert.equal(one.code, 0, one.err);
      assert.equal((await cairn(['volume', 'ls', 'cpv', '/deep/er'])).out, 'deep/er/a.txt\n');
      assert.equal((await cairn(['volume', 'get', 'cpv', '/deep/er/a.txt', '-'])).out, 'a\n');
      const onFile = await cairn(['volume', 'cp', 'cpv', '/a.txt', '/b.txt/']);
      assert.equal(onFile.code, 1);
      assert.match(onFile.err, /^cairn: NOT_A_DIRECTORY: /);
      // without the slash, several sources still need an existing directory (cp semantics)
      const plain = await cairn(['volume', 'cp', 'cpv', '/a.txt', '/b.txt', '/nodir']);
      assert.equal(plain.code, 1);
      assert.match(plain.err, /^cairn: NOT_FOUND: /);
    } finally {
      await fs.rm(local, { recursive: true, force: true });
    }
  });
});

describe('get of a tree, in parallel (issue 19)', () => {
  it('brings back every file of a tree exactly, with its mode, and refuses clashes before writing', async () => {
    const local = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-get-'));
    try {
      const src = path.join(local, 'src');
      const want = new Map<string, Buffer>();
      for (let i = 0; i < 400; i++) {
        const rel = path.join(`d${i % 7}`, `e${i % 3}`, `f${i}.bin`);
        const body = i % 97 === 0 ? crypto.randomBytes(1_500_000 + i) : crypto.randomBytes(i % 50);
        await fs.mkdir(path.dirname(path.join(src, rel)), { recursive: true });
        await fs.writeFile(path.join(src, rel), body, { mode: i % 2 ? 0o600 : 0o755 });
        want.set(rel, body);
      }
      assert.equal((await cairn(['volume', 'create', 'tree'])).code, 0);
      assert.equal((await cairn(['volume', 'put', 'tree', src, '/tree'])).code, 0);
      const back = path.join(local, 'tree'); // an existing DEST directory means "into it"
      const r = await cairn(['volume', 'get', 'tree', '/tree', local]);
      assert.equal(r.code, 0, r.err);
      assert.match(r.err, /\(400 files, /);
      for (const [rel, body] of want) {
        const got = path.join(back, rel);
        assert.ok((await fs.readFile(got)).equals(body), rel);
        assert.equal((await fs.stat(got)).mode & 0o777, (await fs.stat(path.join(src, rel))).mode & 0o777, rel);
      }
      const temporary = (await fs.readdir(back, { recursive: true })).filter((f) => f.includes('.cairn-'));
      assert.deepEqual(temporary, [], 'no temporary files left');
      await fs.rm(path.join(back, 'd3'), { recursive: true });
      await fs.writeFile(path.join(back, 'd0/e0/f0.bin'), 'mine');
      const clash = await cairn(['volume', 'get', 'tree', '/tree', local]);
      assert.equal(clash.code, 1);
      assert.match(clash.err, /^cairn: ALREADY_EXISTS: /);
      await assert.rejects(fs.access(path.join(back, 'd3')), 'nothing written before the check');
      assert.equal((await cairn(['volume', 'get', 'tree', '/tree', local, '--force'])).code, 0);
      assert.ok((await fs.readFile(path.join(back, 'd0/e0/f0.bin'))).equals(want.get('d0/e0/f0.bin')!));
    } finally {
      await fs.rm(local, { recursive: true, force: true });
    }
  });
});

describe('cairn volume info (issue 19)', () => {
  it('shows id, creation, current seq, files and bytes; --json for scripts', async () => {
    const local = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-info-'));
    try {
      await fs.mkdir(path.join(local, 'd/e'), { recursive: true });
      await fs.writeFile(path.join(local, 'd/a.txt'), 'abc');
      await fs.writeFile(path.join(local, 'd/e/b.bin'), Buffer.alloc(100_000, 1));
      assert.equal((await cairn(['volume', 'create', 'inf'])).code, 0);
      const empty = JSON.parse((await cairn(['volume', 'info', 'inf', '--json'])).out);
      assert.deepEqual({ seq: empty.seq, files: empty.files, bytes: empty.bytes }, { seq: 0, files: 0, bytes: 0 });
      assert.equal((await cairn(['volume', 'put', 'inf', path.join(local, 'd'), '/d'])).code, 0);
      const r = await cairn(['volume', 'info', 'inf', '--json']);
      assert.equal(r.code, 0, r.err);
      const info = JSON.parse(r.out);
      const { id, createdAt, createdBy, ...figures } = info;
      assert.deepEqual(figures, { name: 'inf', seq: 1, files: 2, directories: 2, bytes: 100_003 });
      assert.ok(!Number.isNaN(Date.parse(createdAt)) && typeof createdBy === 'string');
      const listed = JSON.parse((await cairn(['volume', 'list', '--json'])).out) as { name: string; id: string }[];
      assert.equal(id, listed.find((v) => v.name === 'inf')!.id);
      const text = await cairn(['volume', 'info', 'inf']);
      assert.match(text.out, /^name: +inf$/m);
      assert.match(text.out, /^seq: +1$/m);
      assert.match(text.out, /^files: +2 \(97\.7 KiB\)$/m);
      const missing = await cairn(['volume', 'info', 'nope']);
      assert.equal(missing.code, 1);
      assert.match(missing.err, /^cairn: NOT_FOUND: /);
    } finally {
      await fs.rm(local, { recursive: true, force: true });
    }
  });
});

describe('the S3 store on Node 20 (issue 19)', () => {
  let s3: S3Server;
  before(async () => {
    s3 = await startS3();
  });
  after(async () => {
    await s3.stop();
  });
  // the test helpers switch the SDK's notice off for the suite; a user's shell does not
  const userEnv = () => {
    const env = { ...process.env };
    delete env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
    return env;
  };

  it('prints no NodeVersionSupportWarning from the CLI', async () => {
    const store = s3.freshUrl();
    const r = await cairn(['--store', store, 'volume', 'create', 'quiet'], { env: userEnv() });
    assert.deepEqual({ code: r.code, err: r.err }, { code: 0, err: 'created volume quiet\n' });
    const l = await cairn(['--store', store, 'volume', 'ls', 'quiet'], { env: userEnv() });
    assert.deepEqual({ code: l.code, err: l.err }, { code: 0, err: '' });
  });

  it('prints none for a library user either, and other warnings still show', async () => {
    const open = pathToFileURL(path.resolve(path.dirname(CLI), '..', 'store', 'open.js')).href;
    const script = `const { openStore } = await import(${JSON.stringify(open)});
      const store = await openStore(${JSON.stringify(s3.freshUrl())});
      await store.put('k', Buffer.from('v'));
      process.emitWarning('SomethingElseWarning: still shown');
      await store.close();`;
    const out = await new Promise<{ code: number | null; err: string }>((resolve, reject) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: userEnv(),
      });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, err }));
    });
    assert.equal(out.code, 0, out.err);
    assert.doesNotMatch(out.err, /NodeVersionSupportWarning/);
    assert.match(out.err, /SomethingElseWarning: still shown/);
  });
});
