/**
 * Time travel and mounts from the CLI (issue 19), through the built binary on the embedded store of
 * a private CAIRN_HOME: `volume ls|get --seq`, `mount --seq` (read-only), `volume restore` (a new
 * commit; history stays), typed errors for seqs that do not exist, and `cairn mounts`.
 */
import '../helpers/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { cairn, unmountQuietly } from './harness.js';

async function ok(args: string[]): Promise<string> {
  const r = await cairn(args);
  assert.equal(r.code, 0, `cairn ${args.join(' ')}: ${r.err}`);
  return r.out;
}

describe('time travel from the CLI (issue 19)', () => {
  let local = '';
  before(async () => {
    local = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-tt-'));
    // seq 1: /a.txt v1; seq 2: /d/x; seq 3: /a.txt v2; seq 4: /new.txt; seq 5: /d removed
    await fs.writeFile(path.join(local, 'a.txt'), 'v1\n');
    await fs.mkdir(path.join(local, 'd'));
    await fs.writeFile(path.join(local, 'd', 'x'), 'x\n');
    await ok(['volume', 'create', 'tt']);
    await ok(['volume', 'put', 'tt', path.join(local, 'a.txt'), '/a.txt']);
    await ok(['volume', 'put', 'tt', path.join(local, 'd'), '/d']);
    await fs.writeFile(path.join(local, 'a.txt'), 'v2\n');
    await ok(['volume', 'put', 'tt', path.join(local, 'a.txt'), '/a.txt', '--force']);
    await ok(['volume', 'put', 'tt', path.join(local, 'a.txt'), '/new.txt']);
    await ok(['volume', 'rm', 'tt', '/d', '-r']);
    const seqs = JSON.parse(await ok(['volume', 'history', 'tt', '--json'])) as { seq: number }[];
    assert.deepEqual(
      seqs.map((h) => h.seq),
      [1, 2, 3, 4, 5],
    );
  });
  after(async () => {
    await fs.rm(local, { recursive: true, force: true });
  });

  it('volume ls and get read a past snapshot with --seq', async () => {
    assert.equal(await ok(['volume', 'ls', 'tt', '/', '--seq', '1']), 'a.txt\n');
    assert.equal(await ok(['volume', 'ls', 'tt', '/', '--seq', '2']), 'a.txt\nd\n');
    assert.equal(await ok(['volume', 'ls', 'tt', '/']), 'a.txt\nnew.txt\n');
    const json = JSON.parse(await ok(['volume', 'ls', 'tt', '/d', '--seq', '4', '--json'])) as { path: string }[];
    assert.deepEqual(
      json.map((e) => e.path),
      ['d/x'],
    );
    assert.equal(await ok(['volume', 'get', 'tt', '/a.txt', '-', '--seq', '1']), 'v1\n');
    assert.equal(await ok(['volume', 'get', 'tt', '/a.txt', '-']), 'v2\n');
    const dest = path.join(local, 'back');
    await ok(['volume', 'get', 'tt', '/d', dest, '--seq', '2']);
    assert.equal(await fs.readFile(path.join(dest, 'x'), 'utf8'), 'x\n');
  });

  it('a seq that does not exist is NOT_FOUND (exit 1), a bad one a usage error (exit 2); nothing changes', async () => {
    for (const args of [
      ['volume', 'ls', 'tt', '/', '--seq', '99'],
      ['volume', 'get', 'tt', '/a.txt', '-', '--seq', '99'],
      ['volume', 'restore', 'tt', '--seq', '99'],
    ]) {
      const r = await cairn(args);
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.err, /^cairn: NOT_FOUND: .*snapshot 99.*cairn volume history tt/, args.join(' '));
    }
    const mnt = path.join(local, 'mnt-bad');
    const m = await cairn(['mount', 'tt', mnt, '--seq', '99']);
    await unmountQuietly(mnt);
    assert.equal(m.code, 1, m.err);
    assert.match(m.err, /NOT_FOUND/);
    for (const bad of ['x', '-1', '1.5']) {
      assert.equal((await cairn(['volume', 'ls', 'tt', '--seq', bad])).code, 2, bad);
    }
    assert.equal((await cairn(['volume', 'restore', 'tt'])).code, 2, 'restore without --seq');
    const nowhere = await cairn(['volume', 'restore', 'tt', '/nowhere', '--seq', '1']);
    assert.equal(nowhere.code, 1);
    assert.match(nowhere.err, /^cairn: NOT_FOUND: \/nowhere exists neither/);
    const seqs = JSON.parse(await ok(['volume', 'history', 'tt', '--json'])) as { seq: number }[];
    assert.equal(seqs.length, 5, 'no commit was made');
  });

  it('mount --seq serves that snapshot read-only, and cairn mounts lists it', async () => {
    const mnt = path.join(local, 'mnt-1');
    const m = await cairn(['mount', 'tt', mnt, '--seq', '2']);
    assert.equal(m.code, 0, m.err);
    try {
      assert.match(m.err, /seq 2, read-only/);
      assert.deepEqual((await fs.readdir(mnt)).sort(), ['a.txt', 'd']);
      assert.equal(await fs.readFile(path.join(mnt, 'a.txt'), 'utf8'), 'v1\n');
      await assert.rejects(fs.writeFile(path.join(mnt, 'w.txt'), 'no'), { code: 'EROFS' });
      const status = JSON.parse(await ok(['status', mnt, '--json'])) as { seq: number; readOnly: boolean };
      assert.equal(status.seq, 2);
      assert.equal(status.readOnly, true);
      const all = JSON.parse(await ok(['mounts', '--json'])) as Record<string, unknown>[];
      const mine = all.find((r) => r.mountpoint === mnt);
      assert.ok(mine, JSON.stringify(all));
      assert.equal(mine.volume, 'tt');
      assert.equal(mine.seq, 2);
      assert.equal(mine.readOnly, true);
      assert.equal(mine.pending, 0);
      assert.equal(mine.openFiles, 0);
      assert.match(String(mine.binding), /^(native|fuse-native)$/);
      assert.ok((await ok(['mounts'])).split('\n').includes(mnt), 'piped: bare mount points');
      const reload = await cairn(['reload', mnt]);
      assert.equal(reload.code, 1);
      assert.match(reload.err, /^cairn: INVALID_ARGUMENT: .*pinned at snapshot 2 \(a mount with --seq stays at that/);
    } finally {
      await unmountQuietly(mnt);
    }
  });

  it('volume restore commits the old content as a new snapshot; history stays', async () => {
    const one = await cairn(['volume', 'restore', 'tt', '/a.txt', '--seq', '1']);
    assert.equal(one.code, 0, one.err);
    assert.match(one.out, /^restored tt to seq 1 as seq 6: 1 restored, 0 removed/);
    assert.equal(await ok(['volume', 'get', 'tt', '/a.txt', '-']), 'v1\n');
    assert.equal(await ok(['volume', 'ls', 'tt', '/']), 'a.txt\nnew.txt\n', 'only the named path');
    const all = JSON.parse(await ok(['volume', 'restore', 'tt', '--seq', '3', '--json'])) as Record<string, unknown>;
    assert.equal(all.committed, true);
    assert.equal(all.seq, 7);
    assert.deepEqual(all.removed, ['/new.txt']);
    assert.deepEqual((all.restored as string[]).sort(), ['/a.txt', '/d', '/d/x']);
    assert.equal(await ok(['volume', 'ls', 'tt', '/']), 'a.txt\nd\n');
    assert.equal(await ok(['volume', 'get', 'tt', '/a.txt', '-']), 'v2\n');
    assert.equal(await ok(['volume', 'get', 'tt', '/d/x', '-']), 'x\n');
    // the later snapshots are still there to read
    assert.equal(await ok(['volume', 'ls', 'tt', '/', '--seq', '5']), 'a.txt\nnew.txt\n');
    const again = await cairn(['volume', 'restore', 'tt', '--seq', '3']);
    assert.equal(again.code, 0, again.err);
    assert.match(again.err, /nothing to restore/);
    const seqs = JSON.parse(await ok(['volume', 'history', 'tt', '--json'])) as { seq: number }[];
    assert.equal(seqs.length, 7, 'a restore that changes nothing commits nothing');
    const v = await ok(['volume', 'verify', 'tt', '--data']);
    assert.ok(v.length > 0);
  });
});
