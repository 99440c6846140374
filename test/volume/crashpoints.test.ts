/**
 * The SIGKILL matrix: a library writer and a mount daemon killed at each step of a commit (after
 * the packs are uploaded, before the record, after the record but before the journal notes it,
 * before and after a checkpoint) at deterministic points: test/fixtures/store-faults.ts, loaded
 * with `--import`, kills the process right before/after the Nth store put whose key matches. After
 * a restart of the same session directory, nothing flushed is lost and nothing is published twice:
 * every commitId is in the log at most once, every written path is in exactly one record, and a
 * fresh reader sees every byte. Real session, embedded file store, real FUSE mounts.
 */
import '../helpers/env.js';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Volume } from '../../src/volume/index.js';
import { VolumeLog } from '../../src/format/log.js';
import type { CommitRecord } from '../../src/format/index.js';
import { controlRequest } from '../../src/fuse/control.js';
import { contentOf } from '../fixtures/crash-writer.js';
import { cleanupAll, DIST, forceUnmount, q, shOk, startMainDaemon, tmpDir, type DaemonSpec } from '../helpers/mount.js';

const FAULTS = pathToFileURL(path.join(DIST, 'test', 'fixtures', 'store-faults.js')).href;
const WRITER = path.join(DIST, 'test', 'fixtures', 'crash-writer.js');

/** Inline, one-chunk and multi-chunk files: every kind of entry a commit publishes. */
const FILES: [string, number][] = [
  ['small-0.txt', 100],
  ['small-1.txt', 4000],
  ['mid.bin', 300 * 1024],
  ['big.bin', 5 * 1024 * 1024 + 7],
];

interface Case {
  name: string;
  /** CAIRN_FAULT (see store-faults.ts). */
  fault: string;
  /** Whether the commit record is in the log when the process dies. */
  landed: boolean;
  /** Prefill 99 commits so that the commit under test (seq 100) writes a checkpoint. */
  checkpoint?: boolean;
}

const CASES: Case[] = [
  { name: 'after the packs are uploaded', fault: 'after:1:/packs/', landed: false },
  { name: 'right before the record is written', fault: 'before:1:/log/', landed: false },
  { name: 'after the record landed, before the journal notes it', fault: 'after:1:/log/', landed: true },
  { name: 'during the checkpoint (before its put)', fault: 'before:1:/checkpoint/', landed: true, checkpoint: true },
  { name: 'right after the checkpoint put', fault: 'after:1:/checkpoint/', landed: true, checkpoint: true },
];

async function setup(name: string) {
  const base = await tmpDir('cairn-crashpt-');
  const store = `file://${path.join(base, 'store')}`;
  await Volume.objects.create(name, { store });
  return { base, store, faultLog: path.join(base, 'fault.log') };
}

/** 99 one-file commits, so that the next commit is seq 100 and writes a checkpoint. */
async function prefill(store: string, name: string): Promise<void> {
  const vol = await Volume.fromName(name, { store });
  const s = await vol.session();
  await s.mkdir('/pre');
  for (let i = 0; i < 99; i++) {
    await s.create(`/pre/${i}`);
    await s.write(`/pre/${i}`, 0, Buffer.from(`pre ${i}`));
    await s.commit();
  }
  assert.equal(s.seq, 99);
  await s.close();
  await vol.close();
}

async function records(store: string, name: string): Promise<CommitRecord[]> {
  const vol = await Volume.fromName(name, { store });
  try {
    return await new VolumeLog(vol.store, vol.id).recordsAfter(0);
  } finally {
    await vol.close();
  }
}

/** The fault fired where the case says (the fixture's log line), so the test tested something. */
async function assertFired(faultLog: string, c: Case): Promise<void> {
  const [when, , pattern] = c.fault.split(':');
  const lines = (await fs.readFile(faultLog, 'utf8').catch(() => '')).trim().split('\n').filter(Boolean);
  assert.equal(lines.length, 1, `the fault fired once: ${lines.join(' | ')}`);
  assert.match(lines[0]!, new RegExp(`^\\d+ ${when} .*${pattern}`));
}

/** The record had landed or not when the process died, as the case says. */
async function assertLanded(store: string, name: string, prefilled: number, c: Case): Promise<void> {
  assert.equal((await records(store, name)).length, prefilled + (c.landed ? 1 : 0), `record landed: ${c.landed}`);
}

/** Nothing lost, nothing twice: the checks every case ends with (after recovery). */
async function assertExactlyOnce(store: string, name: string, files: [string, number][], prefilled: number) {
  const log = await records(store, name);
  const ids = log.map((r) => r.commitId);
  assert.equal(new Set(ids).size, ids.length, `every commitId at most once: ${ids.join(', ')}`);
  const shown = log.map((r) => r.ops.map((o) => o.path).join('+')).join(' | ');
  assert.equal(log.length, prefilled + 1, `one record for the crashed commit (log: ${shown})`);
  for (const [p] of files) {
    const holders = log.filter((r) => r.ops.some((o) => o.op === 'put' && o.path === p));
    assert.equal(holders.length, 1, `${p} published exactly once (seqs ${holders.map((r) => r.seq).join(', ')})`);
  }
  const vol = await Volume.fromName(name, { store });
  try {
    for (const [p, size] of files) {
      const parts: Buffer[] = [];
      for await (const b of vol.readFile(`/${p}`)) parts.push(b);
      assert.ok(Buffer.concat(parts).equals(contentOf(`/${p}`, size)), `${p}: every flushed byte is there`);
    }
    if (prefilled) assert.equal((await vol.listdir('/pre')).length, prefilled);
  } finally {
    await vol.close();
  }
}

type Exit = { code: number | null; signal: string | null; stdout: string; stderr: string };

function runWriter(cfg: object, env: NodeJS.ProcessEnv): Promise<Exit> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', FAULTS, WRITER, JSON.stringify(cfg)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

describe('SIGKILL at each step of a commit: a library writer', () => {
  for (const c of CASES) {
    it(`killed ${c.name}: reopening loses nothing and publishes nothing twice`, async () => {
      const name = 'writer';
      const { base, store, faultLog } = await setup(name);
      if (c.checkpoint) await prefill(store, name);
      const prefilled = c.checkpoint ? 99 : 0;
      const dir = path.join(base, 'session');
      const files = FILES.map(([p, n]): [string, number] => [`/${p}`, n]);
      const env = { CAIRN_FAULT: c.fault, CAIRN_FAULT_LOG: faultLog };
      const r = await runWriter({ store, volume: name, dir, files }, env);
      assert.equal(r.signal, 'SIGKILL', `the writer was killed (code ${r.code}): ${r.stderr}`);
      assert.equal(r.stdout, 'flushed\n', 'killed during the commit, after every write was flushed');
      await assertFired(faultLog, c);
      await assertLanded(store, name, prefilled, c);

      const vol = await Volume.fromName(name, { store });
      const s = await vol.session({ dir });
      // A landed commit is recognised at reopen; one that did not land is still pending.
      assert.equal(s.pendingCount() === 0, c.landed, `pending after reopen: ${s.pendingCount()}`);
      if (!c.landed) assert.equal((await s.commit()).committed, true);
      assert.equal((await s.commit()).committed, false, 'nothing left to publish');
      await s.close();
      await vol.close();
      await assertExactlyOnce(store, name, FILES, prefilled);
      await fs.rm(base, { recursive: true, force: true });
    });
  }
  it('killed again after the recovering commit landed: still published once', async () => {
    const name = 'twice';
    const { base, store, faultLog } = await setup(name);
    const dir = path.join(base, 'session');
    const files = FILES.map(([p, n]): [string, number] => [`/${p}`, n]);
    const first = await runWriter({ store, volume: name, dir, files }, { CAIRN_FAULT: 'before:1:/log/' });
    assert.equal(first.signal, 'SIGKILL', first.stderr);
    // The next writer of the directory recovers (commits the pending changes) and dies too.
    const env = { CAIRN_FAULT: 'after:1:/log/', CAIRN_FAULT_LOG: faultLog };
    const second = await runWriter({ store, volume: name, dir, files: [] }, env);
    assert.equal(second.signal, 'SIGKILL', second.stderr);
    assert.equal((await records(store, name)).length, 1, 'the recovering commit landed');
    const vol = await Volume.fromName(name, { store });
    const s = await vol.session({ dir });
    assert.equal(s.pendingCount(), 0, 'the landed recovery commit is recognised');
    assert.equal((await s.commit()).committed, false);
    await s.close();
    await vol.close();
    await assertExactlyOnce(store, name, FILES, 0);
    await fs.rm(base, { recursive: true, force: true });
  });
});

describe('SIGKILL at each step of a commit: a mount daemon', () => {
  after(() => cleanupAll());

  for (const c of CASES) {
    // The daemon writes checkpoints in a child process: "tree" kills the daemon with it.
    const fault = c.checkpoint ? `${c.fault}:tree` : c.fault;
    it(`killed ${c.name}: the next mount loses nothing and publishes nothing twice`, async () => {
      const name = 'daemon';
      const { base, store, faultLog } = await setup(name);
      if (c.checkpoint) await prefill(store, name);
      const prefilled = c.checkpoint ? 99 : 0;
      const spec: DaemonSpec = { mountpoint: path.join(base, 'mnt'), volume: name, storeDir: path.join(base, 'store') };
      await fs.mkdir(spec.mountpoint);
      const src = path.join(base, 'src');
      await fs.mkdir(src);
      for (const [p, n] of FILES) await fs.writeFile(path.join(src, p), contentOf(`/${p}`, n));
      const faulty = startMainDaemon(() => ({ store }), {
        NODE_OPTIONS: `--import=${FAULTS}`,
        CAIRN_FAULT: fault,
        CAIRN_FAULT_LOG: faultLog,
      });
      const d = await faulty(spec);
      try {
        const dd = (p: string) => `dd if=${q(path.join(src, p))} of=${q(path.join(spec.mountpoint, p))} conv=fsync`;
        const copy = FILES.map(([p]) => dd(p));
        await shOk(copy.map((c) => `${c} status=none`).join(' && '));
        const commit = await controlRequest(spec.mountpoint, 'commit').then(
          () => 'ok',
          (e: { code?: string }) => e.code ?? 'error',
        );
        // Before the record the reply never comes; a checkpoint runs after the commit replied.
        if (!c.landed) assert.notEqual(commit, 'ok');
        await d.exited;
        assert.equal(d.child.signalCode, 'SIGKILL', `the daemon was killed: ${d.logs()}`);
      } finally {
        await forceUnmount(spec.mountpoint);
        await d.stop();
      }
      await assertFired(faultLog, c);
      await assertLanded(store, name, prefilled, c);
      const again = await startMainDaemon(() => ({ store }))(spec); // recovery at mount
      const status = await controlRequest(spec.mountpoint, 'status');
      assert.equal((status as { pending?: number }).pending, 0, 'nothing pending after the recovering mount');
      assert.equal(await again.stop(), 0);
      await assertExactlyOnce(store, name, FILES, prefilled);
      await fs.rm(base, { recursive: true, force: true });
    });
  }
});
