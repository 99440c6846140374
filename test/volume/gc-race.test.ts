/**
 * GC safety under concurrency, in separate processes, on every backend: a writer commits in a
 * loop (reusing old contents, so dedup hits packs GC condemns), a reader reads the newest snapshot
 * in a loop, two GC processes run `gc --keep-last 3` in a loop with a short grace and are SIGKILLed
 * at random points and restarted. Afterwards: the reader never read a retained snapshot wrong,
 * every retained snapshot reads back byte-exact against what the writer committed (so nothing a
 * commit reported as done is missing), `vol.verify({ data: true })` is clean, and GC did delete
 * packs (the test exercised deletion).
 */
import '../helpers/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Volume } from '../../src/index.js';
import { openStore } from '../../src/store/open.js';
import type { ObjectStore } from '../../src/store/types.js';
import { readFloor } from '../../src/format/retention.js';
import { storeNow } from '../../src/volume/gc.js';
import { content, opOf } from '../fixtures/gc-actor.js';
import { forEachBackend } from '../helpers/backends.js';

const ACTOR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'gc-actor.js');
const GRACE = 2_000;
const WRITE_SECONDS = 12;

interface Actor {
  child: ChildProcess;
  out: string[];
  exited: Promise<number | null>;
}

function actor(args: string[]): Actor {
  const child = spawn(process.execPath, [ACTOR, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: string[] = [];
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    const lines = buf.split('\n');
    buf = lines.pop()!;
    out.push(...lines);
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      if (code) out.push(JSON.stringify({ stderr: err }));
      resolve(code);
    }),
  );
  return { child, out, exited };
}

async function stop(a: Actor): Promise<void> {
  if (a.child.exitCode === null && a.child.signalCode === null) a.child.kill('SIGKILL');
  await a.exited;
}

forEachBackend((b) =>
  describe(`gc race (${b.name})`, () => {
    let store: ObjectStore;
    let dir: string;
    before(async () => {
      await b.start();
      dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-gc-race-'));
    });
    after(async () => {
      await store?.close();
      await fs.rm(dir, { recursive: true, force: true });
      await b.stop();
    });

    it('writer, reader and SIGKILLed gcs in separate processes: retained snapshots exact, verify clean', async () => {
      const url = b.url();
      store = await openStore(url);
      const vol = await Volume.fromName('race', { store, createIfMissing: true });
      const log = path.join(dir, 'writer.log');
      const actors: Actor[] = [];
      let deleted = 0;
      try {
        const writer = actor(['writer', url, 'race', String(WRITE_SECONDS), log]);
        const reader = actor(['reader', url, 'race']);
        const gcs = [actor(['gc', url, 'race', String(GRACE)]), actor(['gc', url, 'race', String(GRACE)])];
        actors.push(writer, reader, ...gcs);
        let kills = 0;
        let writing = true;
        void writer.exited.then(() => (writing = false));
        while (writing) {
          // A random point in some gc's run: kill it, count what it reported, start another.
          await new Promise((r) => setTimeout(r, 200 + Math.random() * 1300));
          const n = Math.floor(Math.random() * gcs.length);
          await stop(gcs[n]!);
          kills++;
          gcs[n] = actor(['gc', url, 'race', String(GRACE)]);
          actors.push(gcs[n]!);
        }
        assert.equal(await writer.exited, 0, writer.out.join('\n'));
        for (const a of actors) await stop(a);
        for (const a of actors.filter((x) => x !== writer)) {
          for (const line of a.out) {
            const r = JSON.parse(line) as { bad?: string; stderr?: string; deleted?: number };
            assert.equal(r.bad, undefined, `the reader read a retained snapshot wrong: ${line}`);
            assert.equal(r.stderr, undefined, `an actor failed: ${line}`);
            deleted += r.deleted ?? 0;
          }
        }
        assert.ok(kills >= 3);

        // Two more runs a grace apart: everything dead so far is deleted.
        for (let i = 0; i < 2; i++) {
          const t = await storeNow(store);
          while ((await storeNow(store)) < t + GRACE + 1_000) await new Promise((r) => setTimeout(r, 200));
          deleted += (await vol.gc({ keepLast: 3, keepDays: 0, graceMs: GRACE })).packs.deleted;
        }
        assert.ok(deleted > 0, 'gc deleted packs');

        // Every retained snapshot against what the writer committed.
        const lines = (await fs.readFile(log, 'utf8')).trim().split('\n');
        const commits = lines.map((l) => JSON.parse(l) as { seq: number; i: number });
        const floor = await readFloor(store, vol.id);
        const head = commits[commits.length - 1]!.seq;
        assert.ok(floor > 1 && floor <= head - 2, `floor ${floor}, head ${head}`);
        const state = new Map<string, number>();
        let c = 0;
        for (let seq = 1; seq <= head; seq++) {
          for (; c < commits.length && commits[c]!.seq <= seq; c++) {
            const op = opOf(commits[c]!.i);
            if (op.k === undefined) state.delete(op.path);
            else state.set(op.path, op.k);
          }
          if (seq < floor) continue;
          const s = await vol.session({ seq, readOnly: true });
          try {
            const names = (await s.readdir('')).map((e) => e.path).sort();
            assert.deepEqual(names, [...state.keys()].sort(), `files at seq ${seq}`);
            for (const [p, k] of state) {
              const st = await s.stat(p);
              assert.ok((await s.read(p, 0, st.size)).equals(content(k)), `${p} at seq ${seq}`);
            }
          } finally {
            await s.close();
          }
        }
        const v = await vol.verify({ data: true });
        assert.deepEqual(v.problems, []);
      } finally {
        for (const a of actors) await stop(a);
        await vol.close();
      }
    });
  }),
);
