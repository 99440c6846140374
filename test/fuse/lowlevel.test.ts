/**
 * The native binding's own parts: the inode table (unit), and through a native mount (real
 * session, file store) what only the low-level API can do right — UTIME_NOW/UTIME_OMIT for atime
 * and mtime separately, RENAME_NOREPLACE, a file replaced by rename while open keeps its bytes
 * for its reader, the binding named by status, and the round trips a close costs (no FLUSH
 * without fsyncOnClose: the kernel stops sending it). Skipped when the addon is not built.
 */
import '../helpers/env.js';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { controlRequest } from '../../src/fuse/control.js';
import { InodeTable, loadNative } from '../../src/fuse/lowlevel.js';
import { cleanupAll, q, sh, shOk, startFileDaemon, tmpDir } from '../helpers/mount.js';
import type { MetricsSnapshot } from '../../src/util/metrics.js';

describe('InodeTable', () => {
  it('keeps numbers per path, moves subtrees on rename, frees at lookup count 0', () => {
    const t = new InodeTable();
    const a = t.ensure('/a');
    const ab = t.ensure('/a/b');
    t.ref(a);
    t.ref(ab, 2);
    assert.equal(t.ensure('/a'), a);
    t.rename('/a', '/z');
    assert.equal(t.path(a), '/z');
    assert.equal(t.path(ab), '/z/b');
    assert.equal(t.peek('/a/b'), undefined);
    // Rename over an existing name detaches what was there.
    const y = t.ensure('/y');
    t.ref(y);
    t.rename('/z/b', '/y');
    assert.equal(t.path(y), null);
    assert.equal(t.peek('/y'), ab);
    t.forget(ab, 1);
    assert.equal(t.path(ab), '/y');
    t.forget(ab, 1);
    assert.equal(t.path(ab), null);
    assert.equal(t.peek('/y'), undefined);
    // The root is never forgotten; numbers are never reused.
    t.forget(1, 10);
    assert.equal(t.path(1), '/');
    assert.ok(t.ensure('/new') > y);
  });
});

describe('native binding through a mount', { skip: loadNative() ? false : 'native addon not built' }, () => {
  after(() => cleanupAll());

  it('honours UTIME_OMIT and UTIME_NOW for mtime, RENAME_NOREPLACE, and open files replaced by rename', async () => {
    const base = await tmpDir();
    const mnt = path.join(base, 'mnt');
    const env = { CAIRN_FUSE_BINDING: 'native' };
    const d = await startFileDaemon(() => ({}), env)({ mountpoint: mnt, volume: 'llvol' });
    let reader: ReturnType<typeof spawn> | undefined;
    try {
      const st = (await controlRequest(mnt, 'status')) as { binding?: string };
      assert.equal(st.binding, 'native');

      // touch -a with a time leaves mtime alone (UTIME_OMIT); touch -m sets it; touch sets now.
      await shOk(`cd ${q(mnt)} && printf x > t && touch -m -d @1600000000 t && touch -a -d @1700000000 t`);
      assert.equal((await shOk(`stat -c %Y ${q(`${mnt}/t`)}`)).trim(), '1600000000');
      await shOk(`touch ${q(`${mnt}/t`)}`);
      assert.ok(Math.abs(Number((await shOk(`stat -c %Y ${q(`${mnt}/t`)}`)).trim()) - Date.now() / 1000) < 120);

      // mv --no-clobber (renameat2 RENAME_NOREPLACE where coreutils uses it) never replaces.
      await shOk(`cd ${q(mnt)} && printf A > a && printf B > b`);
      await sh(`cd ${q(mnt)} && mv -n a b`);
      assert.equal(await shOk(`cd ${q(mnt)} && cat b`), 'B');

      // A reader of b keeps b's bytes after a rename replaces b.
      const script = `exec 3<${q(`${mnt}/b`)}; echo open; read _; cat <&3`;
      reader = spawn('bash', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
      let out = '';
      reader.stdout!.setEncoding('utf8');
      await new Promise<void>((resolve) => reader!.stdout!.once('data', (c: string) => ((out += c), resolve())));
      reader.stdout!.on('data', (c: string) => (out += c));
      await shOk(`cd ${q(mnt)} && printf C > c && mv c b && cat b`);
      const done = new Promise((resolve) => reader!.on('exit', resolve));
      reader.stdin!.end('go\n');
      await done;
      assert.equal(out, 'open\nB');
      assert.equal(await shOk(`cat ${q(`${mnt}/b`)}`), 'C');
      // The hidden copy goes at the last close.
      for (let i = 0; i < 50 && (await shOk(`ls -A ${q(mnt)}`)).includes('.fuse_hidden'); i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal((await shOk(`ls -A ${q(mnt)}`)).includes('.fuse_hidden'), false);
    } finally {
      reader?.kill('SIGKILL');
      await d.stop();
    }
  });

  it('removes a directory whose file was unlinked while open, as a local disk does', async () => {
    const base = await tmpDir();
    const mnt = path.join(base, 'mnt');
    const d = await startFileDaemon(() => ({}), { CAIRN_FUSE_BINDING: 'native' })({ mountpoint: mnt, volume: 'llrmdir' });
    let reader: ReturnType<typeof spawn> | undefined;
    try {
      // (stress-ng --readahead and --copy-file hit it without an open file: the kernel sends
      // RELEASE in the background, so `rm d/f; rmdir d` can reach the daemon before it)
      const script = `printf kept > ${q(`${mnt}/d/f`)}; exec 3<${q(`${mnt}/d/f`)}; echo open; read _; cat <&3`;
      await shOk(`mkdir ${q(`${mnt}/d`)}`);
      reader = spawn('bash', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
      let out = '';
      reader.stdout!.setEncoding('utf8');
      await new Promise<void>((resolve) => reader!.stdout!.once('data', (c: string) => ((out += c), resolve())));
      reader.stdout!.on('data', (c: string) => (out += c));
      const r = await sh(`rm ${q(`${mnt}/d/f`)} && rmdir ${q(`${mnt}/d`)}`);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await shOk(`ls -A ${q(mnt)} | grep -v '^\\.fuse_hidden' || true`), '');
      const done = new Promise((resolve) => reader!.on('exit', resolve));
      reader.stdin!.end('go\n');
      await done;
      assert.equal(out, 'open\nkept', 'the open file keeps its bytes');
      for (let i = 0; i < 50 && (await shOk(`ls -A ${q(mnt)}`)).includes('.fuse_hidden'); i++) {
        await new Promise((res) => setTimeout(res, 50));
      }
      assert.equal(await shOk(`ls -A ${q(mnt)}`), '', 'the hidden copy goes at the last close');
      // and the race itself, many times over
      const loop = await sh(
        `cd ${q(mnt)} && for i in $(seq 200); do mkdir d && printf x > d/f && cat d/f >/dev/null && rm d/f && rmdir d || exit 1; done`,
      );
      assert.equal(loop.code, 0, loop.stderr);
    } finally {
      reader?.kill('SIGKILL');
      await d.stop();
    }
  });

  it('sends no FLUSH per close(2) unless fsyncOnClose asks for one', async () => {
    const base = await tmpDir();
    const flushes = async (mnt: string): Promise<number> => {
      const st = (await controlRequest(mnt, 'status')) as { metrics: MetricsSnapshot };
      return st.metrics['cairn_fuse_ops_total{op="flush"}'] ?? 0;
    };
    const writeFiles = `for i in $(seq 1 30); do printf x > f$i; cat f$i > /dev/null; done`;
    for (const fsyncOnClose of [false, true]) {
      const mnt = path.join(base, `mnt-${fsyncOnClose}`);
      const d = await startFileDaemon(() => ({ fsyncOnClose }), { CAIRN_FUSE_BINDING: 'native' })({
        mountpoint: mnt,
        volume: `fl${fsyncOnClose}`,
      });
      try {
        await shOk(`cd ${q(mnt)} && ${writeFiles}`);
        const n = await flushes(mnt);
        // Without fsyncOnClose a FLUSH answers nothing: the first is answered ENOSYS and the kernel sends no more.
        if (!fsyncOnClose) assert.ok(n <= 1, `${n} FLUSH requests for 30 closes of written files`);
        else assert.ok(n >= 30, `${n} FLUSH requests: fsyncOnClose needs each close of a written file`);
        assert.equal(await shOk(`cd ${q(mnt)} && cat f1 f30`), 'xx');
      } finally {
        await d.stop();
      }
    }
  });

  it('counts a LOOKUP as `lookup` in the metrics, not as a getattr', async () => {
    const base = await tmpDir();
    const mnt = path.join(base, 'mnt');
    const d = await startFileDaemon(() => ({}), { CAIRN_FUSE_BINDING: 'native' })({ mountpoint: mnt, volume: 'lk' });
    const ops = async (): Promise<{ lookup: number; getattr: number }> => {
      const m = ((await controlRequest(mnt, 'status')) as { metrics: MetricsSnapshot }).metrics;
      return { lookup: m['cairn_fuse_ops_total{op="lookup"}'] ?? 0, getattr: m['cairn_fuse_ops_total{op="getattr"}'] ?? 0 };
    };
    try {
      await shOk(`cd ${q(mnt)} && stat . >/dev/null`); // the root's attributes, once
      const before = await ops();
      // 20 absent names, each looked up once (the kernel then keeps the negative entry).
      await shOk(`cd ${q(mnt)} && for i in $(seq 1 20); do stat m$i >/dev/null 2>&1 || true; done`);
      const after = await ops();
      assert.ok(after.lookup - before.lookup >= 20, `LOOKUPs of 20 absent names: ${JSON.stringify({ before, after })}`);
      assert.equal(after.getattr, before.getattr, 'no getattr counted for them');
    } finally {
      await d.stop();
    }
  });
});
