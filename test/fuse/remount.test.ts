/**
 * `cairn mount` of a volume again at the same path, through the built CLI on the embedded file
 * store: the new mount starts at the newest committed snapshot (also after a crash, whose pending
 * changes it commits first), and a commit to a volume deleted under the mount fails with a typed
 * error that keeps the changes.
 */
import '../helpers/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { forceUnmount, q, shOk, tmpDir } from '../helpers/mount.js';
import { cliWithStore } from '../cli/harness.js';

let store = '';

const { run: cairn, ok } = cliWithStore(() => store);

type Status = { seq: number; pending: number; pid: number };
const status = async (dir: string) => JSON.parse(await ok('status', dir, '--json')) as Status;
const head = async (vol: string) => (JSON.parse(await ok('volume', 'history', vol, '--json')) as { seq: number }[]).at(-1)!.seq;

async function waitDead(pid: number): Promise<void> {
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  for (let i = 0; i < 200 && alive(); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(!alive(), `process ${pid} is still alive after SIGKILL`);
}

describe('cairn mount again at the same path', () => {
  let base = '';
  const mounted: string[] = [];
  before(async () => {
    base = await tmpDir('cairn-remount-');
    store = `file://${path.join(base, 'store')}`;
  });
  after(async () => {
    for (const m of mounted) {
      await cairn('unmount', m, '--force');
      await forceUnmount(m);
    }
    await fs.rm(base, { recursive: true, force: true });
  });

  /** Puts a local file with `text` at `remote` of `vol` (one commit). */
  async function put(vol: string, remote: string, text: string): Promise<void> {
    const local = path.join(base, `put-${Date.now()}-${Math.random().toString(36).slice(2)}`);
    await fs.writeFile(local, text);
    await ok('volume', 'put', vol, local, remote);
  }

  it('starts at the newest commit, not where the last mount of that path stopped', async () => {
    await ok('volume', 'create', 'rv');
    const mnt = path.join(base, 'mnt');
    mounted.push(mnt);
    await ok('mount', 'rv', mnt, '--commit-interval', '0');
    await shOk(`printf first > ${q(`${mnt}/first`)}`);
    await ok('unmount', mnt);
    for (let i = 0; i < 3; i++) await put('rv', `/put${i}.txt`, `put ${i}`);
    const newest = await head('rv');
    assert.equal(newest, 4);
    await ok('mount', 'rv', mnt, '--commit-interval', '0');
    assert.equal((await status(mnt)).seq, newest);
    assert.equal(await shOk(`cat ${q(`${mnt}/first`)} ${q(`${mnt}/put2.txt`)}`), 'firstput 2');
    await ok('unmount', mnt);
  });

  it('after a crash, commits the recovered changes on top of the newest commit', async () => {
    await ok('volume', 'create', 'crashv');
    await put('crashv', '/shared', 'old');
    const mnt = path.join(base, 'mnt-crash');
    mounted.push(mnt);
    await ok('mount', 'crashv', mnt, '--commit-interval', '0');
    await shOk(`printf mine > ${q(`${mnt}/shared`)}; printf kept > ${q(`${mnt}/kept`)}`);
    const { pid, pending } = await status(mnt);
    assert.equal(pending, 2);
    process.kill(pid, 'SIGKILL');
    await waitDead(pid);
    await forceUnmount(mnt);
    await put('crashv', '/later', 'put while the mount was dead');
    const before = await head('crashv');
    await ok('mount', 'crashv', mnt, '--commit-interval', '0');
    const st = await status(mnt);
    assert.equal(st.pending, 0);
    assert.equal(st.seq, before + 1, 'the recovered changes were committed at once, on top of the newest commit');
    assert.equal(await head('crashv'), before + 1);
    const all = await shOk(`cat ${q(`${mnt}/shared`)} ${q(`${mnt}/kept`)} ${q(`${mnt}/later`)}`);
    assert.equal(all, 'minekeptput while the mount was dead');
    await ok('unmount', mnt);
    assert.equal(await ok('volume', 'get', 'crashv', '/shared', '-'), 'mine');
  });

  it('a commit to a volume deleted under the mount fails with NOT_FOUND and keeps the changes', async () => {
    await ok('volume', 'create', 'delv');
    const mnt = path.join(base, 'mnt-del');
    mounted.push(mnt);
    await ok('mount', 'delv', mnt, '--commit-interval', '0');
    await shOk(`printf precious > ${q(`${mnt}/work`)}`);
    await ok('volume', 'delete', 'delv', '--yes');
    const r = await cairn('commit', mnt);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /^cairn: NOT_FOUND: volume delv .*no longer exists/m);
    assert.doesNotMatch(r.stdout + r.stderr, /committed seq/);
    assert.equal((await status(mnt)).pending, 1);
    assert.equal(await shOk(`cat ${q(`${mnt}/work`)}`), 'precious');
    // the way out the message gives: copy the files, put them in a new volume
    const save = path.join(base, 'save');
    await shOk(`mkdir ${q(save)} && cp -a ${q(mnt)}/. ${q(save)}/`);
    await ok('volume', 'create', 'rescued');
    await ok('volume', 'put', 'rescued', save, '/');
    assert.equal(await ok('volume', 'get', 'rescued', '/save/work', '-'), 'precious');
    // unmounting cannot commit either: it says so (non-zero), the mount is gone all the same
    const u = await cairn('unmount', mnt);
    assert.notEqual(u.code, 0);
    assert.match(u.stderr, /NOT_FOUND: the final commit failed/);
  });
});
