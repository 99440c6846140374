/**
 * The control file (`.cairn-control`): the transcript protocol on its own, then a real mount
 * (real session, file store) controlled from another network namespace (`unshare --net`, where
 * the abstract socket is out of reach): the raw shell protocol, `cairn commit|reload|status`,
 * `vol.commit()`, reload refused while a file is open (the control handle itself not counted),
 * concurrent users, and that the name is hidden and cannot be removed or replaced.
 */
import '../helpers/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { promises as fsp } from 'node:fs';
import { Volume } from '../../src/volume/index.js';
import { ControlFile } from '../../src/fuse/control-file.js';
import { CairnError } from '../../src/errors.js';
import { CLI } from '../cli/harness.js';
import { assertBusyWith, controlReplies } from '../helpers/control.js';
import { DIST, cleanupAll, q, sh, startMainDaemon, tmpDir, type RunningDaemon } from '../helpers/mount.js';

const INDEX_JS = path.join(DIST, 'src', 'index.js');

describe('ControlFile transcript', () => {
  it('answers each command line after it, in order, and per handle', async () => {
    const seen: string[] = [];
    const cf = new ControlFile(async (op) => {
      seen.push(op);
      if (op === 'reload') {
        throw new CairnError('VOLUME_BUSY', 'cannot reload while files are open: /a', { openFiles: [{ path: '/a' }] });
      }
      return { seq: 3, op };
    });
    const a = cf.open();
    const b = cf.open();
    assert.equal(await cf.write(a, 0, Buffer.from('comm')), 4);
    assert.equal(cf.size(a), 4); // no newline yet: nothing ran
    assert.deepEqual(seen, []);
    await cf.write(a, 4, Buffer.from('it\n'));
    const r1 = JSON.parse(cf.read(a, 7, 1 << 16).toString());
    assert.deepEqual(r1, { ok: true, op: 'commit', seq: 3, result: { seq: 3, op: 'commit' } });
    await cf.write(b, 0, Buffer.from('reload\nstatus\nformat\n'));
    const lines = cf
      .read(b, 21, 1 << 16)
      .toString()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      lines.map((l) => [l.op, l.ok, l.error?.code]),
      [
        ['reload', false, 'VOLUME_BUSY'],
        ['status', true, undefined],
        ['format', false, 'INVALID_ARGUMENT'],
      ],
    );
    // (the native binding also names the opener's pid)
    assert.deepEqual(
      lines[0].error.context.openFiles.map((o: { path: string }) => o.path),
      ['/a'],
    );
    assert.equal(cf.read(a, cf.size(a), 10).length, 0, 'EOF after the reply');
    assert.equal(cf.read(a, 0, 7).toString(), 'commit\n', 'the transcript starts with what was written');
    cf.release(a);
    assert.equal(cf.openCount, 1);
    assert.throws(
      () => cf.read(a, 0, 1),
      (e: CairnError) => e.code === 'CLOSED',
    );
  });
});

describe('control file on a real mount, from another network namespace', () => {
  let base = '';
  let mnt = '';
  let store = '';
  let d: RunningDaemon;
  const env = (): NodeJS.ProcessEnv => ({ CAIRN_STORE: store });
  /** A bash command in a new network namespace (no route to the daemon's socket). */
  const netns = (cmd: string) => sh(`unshare --net bash -c ${q(cmd)}`, { env: env() });
  const cairn = (args: string) => netns(`${q(process.execPath)} ${q(CLI)} ${args}`);

  before(async () => {
    base = await tmpDir();
    mnt = path.join(base, 'mnt');
    store = `file://${path.join(base, 'store')}`;
    await Volume.objects.create('ctl', { store });
    await fsp.mkdir(mnt);
    d = await startMainDaemon(() => ({ store }))({ mountpoint: mnt, volume: 'ctl', commitIntervalSec: 0 });
  });
  after(async () => {
    await cleanupAll();
    await fsp.rm(base, { recursive: true, force: true });
  });

  it('serves the raw protocol to a shell: write a command, read one JSON reply on the same descriptor', async () => {
    const ctl = `${q(mnt)}/.cairn-control`;
    const r = await netns(`echo hello > ${q(mnt)}/a.txt && exec 3<>${ctl} && echo commit >&3 && cat <&3`);
    assert.equal(r.code, 0, r.stderr);
    const reply = JSON.parse(r.stdout.trim());
    assert.equal(reply.ok, true);
    assert.equal(reply.op, 'commit');
    assert.equal(reply.seq, 1);
    assert.deepEqual(reply.result.paths, ['a.txt']);
    const v = await Volume.fromName('ctl', { store });
    const chunks: Buffer[] = [];
    for await (const b of v.readFile('/a.txt')) chunks.push(b);
    assert.equal(Buffer.concat(chunks).toString(), 'hello\n');
  });

  it('cairn commit, status and reload work where the socket is unreachable', async () => {
    await fsp.writeFile(path.join(mnt, 'b.txt'), 'bee');
    const c = await cairn(`commit ${q(mnt)} --json`);
    assert.equal(c.code, 0, c.stderr);
    assert.equal(JSON.parse(c.stdout).seq, 2);
    const s = await cairn(`status ${q(mnt)} --json`);
    assert.equal(s.code, 0, s.stderr);
    const st = JSON.parse(s.stdout);
    assert.equal(st.seq, 2);
    assert.deepEqual(st.openFiles, []);
    // Another writer commits; the mount sees it after a reload made from the other namespace.
    const v = await Volume.fromName('ctl', { store });
    await v.batchUpload({}, (b) => b.putFile(Buffer.from('sea'), '/c.txt'));
    const r = await cairn(`reload ${q(mnt)} --json`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).seq, 3);
    assert.equal(await fsp.readFile(path.join(mnt, 'c.txt'), 'utf8'), 'sea');
  });

  it('vol.commit() of the library reaches the mount through the control file', async () => {
    await fsp.writeFile(path.join(mnt, 'lib.txt'), 'lib');
    const code = `const { Volume } = await import(${JSON.stringify(INDEX_JS)});
      const v = await Volume.fromName('ctl'); await v.commit();
      for await (const b of v.readFile('/lib.txt')) process.stdout.write(b);`;
    const r = await netns(`${q(process.execPath)} --input-type=module -e ${q(code)}`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'lib');
  });

  it('refuses reload while a file is open, naming it and not the control file', async () => {
    await fsp.writeFile(path.join(mnt, 'held.txt'), 'x');
    const ctl = `${q(mnt)}/.cairn-control`;
    const r = await netns(`exec 4<${q(mnt)}/held.txt; exec 3<>${ctl}; echo reload >&3; cat <&3; exec 4<&-; exec 3<&-;
      exec 3<>${ctl}; echo reload >&3; cat <&3`);
    assert.equal(r.code, 0, r.stderr);
    const [busy, ok] = controlReplies(r.stdout);
    assertBusyWith(busy, ['/held.txt']);
    const procs = (busy.error as { context: { processes: unknown } }).context.processes as { path: string }[];
    assert.ok(
      procs.every((p) => !p.path.includes('.cairn-control')),
      JSON.stringify(busy),
    );
    assert.equal(ok.ok, true, JSON.stringify(ok));
    assert.equal(ok.op, 'reload');
  });

  it('gives concurrent users their own replies', async () => {
    const n = 8;
    const cmds = Array.from(
      { length: n },
      (_, i) => `(exec 3<>${q(mnt)}/.cairn-control; echo ${i % 2 ? 'status' : 'commit'} >&3; cat <&3 > ${q(base)}/out.${i}) &`,
    );
    const r = await netns(`${cmds.join('\n')}\nwait`);
    assert.equal(r.code, 0, r.stderr);
    for (let i = 0; i < n; i++) {
      const reply = JSON.parse(await fsp.readFile(path.join(base, `out.${i}`), 'utf8'));
      assert.equal(reply.ok, true);
      assert.equal(reply.op, i % 2 ? 'status' : 'commit');
    }
  });

  it('reloads a read-only mount from another network namespace (writes still get EROFS)', async () => {
    const ro = path.join(base, 'ro');
    await fsp.mkdir(ro);
    await startMainDaemon(() => ({ store }))({ mountpoint: ro, volume: 'ctl', readOnly: true, commitIntervalSec: 0 });
    const v = await Volume.fromName('ctl', { store });
    await v.batchUpload({}, (b) => b.putFile(Buffer.from('new'), '/ro-new.txt'));
    const r = await cairn(`reload ${q(ro)} --json`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await fsp.readFile(path.join(ro, 'ro-new.txt'), 'utf8'), 'new');
    const c = await cairn(`commit ${q(ro)}`);
    assert.equal(c.code, 1);
    assert.match(c.stderr, /READ_ONLY/);
    await assert.rejects(fsp.writeFile(path.join(ro, 'w.txt'), 'x'), { code: 'EROFS' });
    const st = await cairn(`status --json`);
    const mine = JSON.parse(st.stdout).find((m: { mountpoint: string }) => m.mountpoint === ro);
    assert.equal(mine?.readOnly, true, st.stdout);
  });

  it('is not listed, and cannot be removed, replaced or renamed', async () => {
    const names = await fsp.readdir(mnt);
    assert.ok(!names.some((n) => n.startsWith('.cairn-control')), names.join(','));
    const ctl = path.join(mnt, '.cairn-control');
    await assert.rejects(fsp.unlink(ctl), { code: 'EPERM' });
    await assert.rejects(fsp.rename(path.join(mnt, 'a.txt'), ctl), { code: 'EPERM' });
    await assert.rejects(fsp.rename(ctl, path.join(mnt, 'z')), { code: 'EPERM' });
    await assert.rejects(fsp.mkdir(ctl), { code: 'EEXIST' });
    assert.equal(await fsp.readFile(path.join(mnt, 'a.txt'), 'utf8'), 'hello\n');
    assert.equal(d.child.exitCode, null, d.logs());
  });
});
