/**
 * Model-based test of the mount: random sequences of file-system operations (create, write at
 * random offsets, truncate, rename, unlink, mkdir, rmdir, symlink, read, fsync, commit, reload,
 * unmount + remount, SIGKILL + remount) applied to a real FUSE mount of a volume (real session,
 * embedded file store, daemon in a child process) and to a local reference directory. After every
 * step both trees must be equal (type, size, content, listing, symlink target), every operation
 * must succeed on both or fail on both with the same errno, and after a commit a fresh reader of
 * the volume must see exactly the reference tree.
 *
 * Bounded by default (fixed seed, CI-sized). Longer runs:
 *   CAIRN_MODEL_RUNS=200 CAIRN_MODEL_OPS=150 [CAIRN_MODEL_SEED=n] \
 *     node --test --test-timeout=0 dist/test/fuse/model.test.js
 * On failure fast-check prints the seed and the shrunk counterexample (a list of operations), and
 * the step that diverged; `CAIRN_MODEL_REPLAY='<the counterexample's JSON array>'` runs just it.
 */
import '../helpers/env.js';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import { controlRequest } from '../../src/fuse/control.js';
import { Volume } from '../../src/volume/index.js';
import { cleanupAll, forceUnmount, startFileDaemon, tmpDir } from '../helpers/mount.js';
import type { DaemonSpec, RunningDaemon } from '../helpers/mount.js';
import { waitFor } from '../helpers/wait.js';

const RUNS = Number(process.env.CAIRN_MODEL_RUNS ?? 60);
const OPS = Number(process.env.CAIRN_MODEL_OPS ?? 120);
const SEED = Number(process.env.CAIRN_MODEL_SEED ?? 20261130);

/** A small name space, so that operations collide: 3 top-level names, their children, 2 deeper. */
const NAMES = ['a', 'b', 'c'];
const DEEP = [...NAMES.flatMap((x) => NAMES.map((y) => `${x}/${y}`)), 'a/b/c', 'b/a/a'];
/** What every run starts from (so that most operations find something to work on). */
const PRELUDE: Op[] = [
  { op: 'mkdir', path: 'a' },
  { op: 'mkdir', path: 'b' },
  { op: 'mkdir', path: 'a/b' },
  { op: 'write', path: 'a/a', offset: 0, length: 5000, seed: 1 },
  { op: 'write', path: 'b/c', offset: 0, length: 300_000, seed: 2 },
  { op: 'write', path: 'c', offset: 0, length: 10, seed: 3 },
];
/** Symlink targets: relative, never leaving the tree (no `..`), some dangling. */
const TARGETS = ['a', 'b/c', 'a/b', 'nowhere', 'c'];

type Op =
  | { op: 'create'; path: string; excl: boolean }
  | { op: 'write'; path: string; offset: number; length: number; seed: number }
  | { op: 'truncate'; path: string; size: number }
  | { op: 'rename'; from: string; to: string }
  | { op: 'unlink'; path: string }
  | { op: 'mkdir'; path: string }
  | { op: 'rmdir'; path: string }
  | { op: 'symlink'; target: string; path: string }
  | { op: 'read'; path: string; offset: number; length: number }
  | { op: 'fsync'; path: string }
  | { op: 'chmod'; path: string; mode: number }
  | { op: 'hold'; path: string; write: boolean }
  | { op: 'writeHeld'; which: number; offset: number; length: number; seed: number }
  | { op: 'closeHeld' }
  | { op: 'commit' }
  | { op: 'commitDuring'; during: Op }
  | { op: 'reload' }
  | { op: 'remount' }
  | { op: 'external'; name: string; length: number; seed: number; sameMtime: boolean; remove: boolean }
  | { op: 'kill9' };

/** `weight` parts a, 1 part b. */
const mostly = <T>(weight: number, a: fc.Arbitrary<T>, b: fc.Arbitrary<T>) =>
  fc.oneof({ weight, arbitrary: a }, { weight: 1, arbitrary: b });
const p = mostly(2, fc.constantFrom(...DEEP), fc.constantFrom(...NAMES));
/** Mostly small offsets and sizes; sometimes past a chunk boundary (about 1 MiB). */
const offset = mostly(4, fc.integer({ min: 0, max: 70_000 }), fc.integer({ min: 0, max: 1_400_000 }));
const length = mostly(4, fc.integer({ min: 0, max: 9000 }), fc.integer({ min: 0, max: 700_000 }));
const seed = fc.integer({ min: 1, max: 1 << 30 });

const writeArb = fc.record({ op: fc.constant('write' as const), path: p, offset, length, seed });
const changeArb: fc.Arbitrary<Op> = fc.oneof(
  writeArb,
  fc.record({ op: fc.constant('truncate' as const), path: p, size: offset }),
  fc.record({ op: fc.constant('rename' as const), from: p, to: p }),
  fc.record({ op: fc.constant('unlink' as const), path: p }),
  fc.record({ op: fc.constant('mkdir' as const), path: p }),
);

const symlinkArb = fc.record({ op: fc.constant('symlink' as const), target: fc.constantFrom(...TARGETS), path: p });
const modes = fc.constantFrom(0o600, 0o644, 0o755, 0o700, 0o4755);
const chmodArb = fc.record({ op: fc.constant('chmod' as const), path: p, mode: modes });
const writeHeldArb = fc.record({ op: fc.constant('writeHeld' as const), which: fc.nat(3), offset, length, seed });

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ op: fc.constant('create' as const), path: p, excl: fc.boolean() }) },
  { weight: 20, arbitrary: writeArb },
  { weight: 6, arbitrary: fc.record({ op: fc.constant('truncate' as const), path: p, size: offset }) },
  { weight: 10, arbitrary: fc.record({ op: fc.constant('rename' as const), from: p, to: p }) },
  { weight: 6, arbitrary: fc.record({ op: fc.constant('unlink' as const), path: p }) },
  { weight: 9, arbitrary: fc.record({ op: fc.constant('mkdir' as const), path: p }) },
  { weight: 5, arbitrary: fc.record({ op: fc.constant('rmdir' as const), path: p }) },
  { weight: 4, arbitrary: symlinkArb },
  { weight: 8, arbitrary: fc.record({ op: fc.constant('read' as const), path: p, offset, length }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('fsync' as const), path: p }) },
  { weight: 2, arbitrary: chmodArb },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('hold' as const), path: p, write: fc.boolean() }) },
  { weight: 4, arbitrary: writeHeldArb },
  { weight: 3, arbitrary: fc.constant({ op: 'closeHeld' as const }) },
  { weight: 5, arbitrary: fc.constant({ op: 'commit' as const }) },
  // a commit with a change made while it runs (that change belongs to the next commit or to this one)
  { weight: 3, arbitrary: fc.record({ op: fc.constant('commitDuring' as const), during: changeArb }) },
  { weight: 5, arbitrary: fc.constant({ op: 'reload' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'remount' as const }) },
  // another writer (the library) changes x/, which the mount sees at reload or at its next mount
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('external' as const),
      name: fc.constantFrom('f0', 'f1'),
      length: fc.constantFrom(5000, 300_000),
      seed,
      // new bytes with the same size and mtime: only a reload that invalidates the page cache shows them
      sameMtime: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
      remove: fc.oneof({ weight: 1, arbitrary: fc.constant(true) }, { weight: 4, arbitrary: fc.constant(false) }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ op: 'kill9' as const }) },
);

/** Deterministic bytes for a write (cheap to shrink: only the seed is random). */
function bytes(seed: number, n: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

type Outcome = { ok: true; value?: string } | { ok: false; code: string };

async function outcome(fn: () => Promise<string | void>): Promise<Outcome> {
  try {
    const v = await fn();
    return v === undefined ? { ok: true } : { ok: true, value: v };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code !== 'string' || !code.startsWith('E')) throw err;
    return { ok: false, code };
  }
}

const digest = (b: Buffer) => `${b.length}:${crypto.createHash('sha1').update(b).digest('hex').slice(0, 12)}`;

/** One file-system operation on a tree rooted at `root` (the mount or the reference). */
async function fsOp(root: string, op: Op): Promise<Outcome> {
  const at = (q: string) => path.join(root, q);
  switch (op.op) {
    case 'create':
      return outcome(async () => (await fs.open(at(op.path), op.excl ? 'wx' : 'w')).close());
    case 'write':
      return outcome(async () => {
        const fh = await fs.open(at(op.path), fs.constants.O_RDWR | fs.constants.O_CREAT); // no O_TRUNC
        try {
          await fh.write(bytes(op.seed, op.length), 0, op.length, op.offset);
        } finally {
          await fh.close();
        }
      });
    case 'truncate':
      return outcome(() => fs.truncate(at(op.path), op.size));
    case 'rename':
      return outcome(() => fs.rename(at(op.from), at(op.to)));
    case 'unlink':
      return outcome(() => fs.unlink(at(op.path)));
    case 'mkdir':
      return outcome(() => fs.mkdir(at(op.path)));
    case 'rmdir':
      return outcome(() => fs.rmdir(at(op.path)));
    case 'symlink':
      return outcome(() => fs.symlink(op.target, at(op.path)));
    case 'read':
      return outcome(async () => {
        const fh = await fs.open(at(op.path), 'r');
        try {
          const buf = Buffer.alloc(op.length);
          const { bytesRead } = await fh.read(buf, 0, op.length, op.offset);
          return digest(buf.subarray(0, bytesRead));
        } finally {
          await fh.close();
        }
      });
    case 'chmod':
      return outcome(() => fs.chmod(at(op.path), op.mode));
    case 'fsync':
      return outcome(async () => {
        const fh = await fs.open(at(op.path), 'r+');
        try {
          await fh.sync();
        } finally {
          await fh.close();
        }
      });
    default:
      throw new Error(`not a file-system op: ${op.op}`);
  }
}

/** A tree as comparable text: one line per entry (type, size, content digest or target). */
async function describeTree(root: string): Promise<string[]> {
  const walk = async (rel: string): Promise<string[]> => {
    // libfuse keeps unlinked-but-open files as .fuse_hidden* until their last close (SEMANTICS.md)
    const listed = await fs.readdir(path.join(root, rel));
    const names = listed.filter((n) => n !== '.cairn-control' && !n.startsWith('.fuse_hidden')).sort();
    const parts = await Promise.all(
      names.map(async (n): Promise<string[]> => {
        const r = rel ? `${rel}/${n}` : n;
        const abs = path.join(root, r);
        const st = await fs.lstat(abs);
        if (st.isSymbolicLink()) return [`${r} -> ${await fs.readlink(abs)}`];
        const mode = (st.mode & 0o7777).toString(8);
        if (st.isDirectory()) return [`${r}/ ${mode}`, ...(await walk(r))];
        return [`${r} file ${mode} ${st.size} ${digest(await fs.readFile(abs))}`];
      }),
    );
    return parts.flat();
  };
  return walk('');
}

/** Fails, saying what differs, unless two tree descriptions are equal. */
function sameTree(got: string[], want: string[], what: string): void {
  const only = (a: string[], b: string[]) => a.filter((l) => !b.includes(l));
  if (got.join('\n') !== want.join('\n')) {
    const [mine, theirs] = [JSON.stringify(only(got, want)), JSON.stringify(only(want, got))];
    throw new Error(`${what}: only in it ${mine}, only in the reference ${theirs}`);
  }
}

/** Fails unless the mount and the reference had the same outcome (value or errno). */
function sameOutcome(got: Outcome, want: Outcome, what: string): void {
  const [a, b] = [JSON.stringify(got), JSON.stringify(want)];
  if (a !== b) throw new Error(`${what}: the mount ${a}, the reference ${b}`);
}

/** Without x/ (the other writer's, whose newest state the view shows only after a reload). */
const mine = (lines: string[]) => lines.filter((l) => !/^x[/ ]/.test(l));

/** The committed tree as a fresh reader of the volume sees it (no mount involved). */
async function describeCommitted(store: string, volume: string): Promise<string[]> {
  const vol = await Volume.fromName(volume, { store });
  const s = await vol.session({ readOnly: true });
  const lines: string[] = [];
  try {
    const walk = async (rel: string): Promise<void> => {
      const kids = (await s.readdir(`/${rel}`)).sort((x, y) => (x.path < y.path ? -1 : 1));
      for (const k of kids) {
        const r = k.path.replace(/^\//, '');
        const mode = (k.mode & 0o7777).toString(8);
        if (k.type === 'symlink') lines.push(`${r} -> ${await s.readlink(`/${r}`)}`);
        else if (k.type === 'directory') {
          lines.push(`${r}/ ${mode}`);
          await walk(r);
        } else lines.push(`${r} file ${mode} ${k.size} ${digest(await s.read(`/${r}`, 0, k.size + 1))}`);
      }
    };
    await walk('');
  } finally {
    await s.close();
    await vol.close();
  }
  return lines;
}

/** One run: a fresh volume, mount and reference directory. */
/** A file held open across steps, on both sides. */
interface Held {
  mnt: fs.FileHandle;
  ref: fs.FileHandle;
}

class Run {
  d!: RunningDaemon;
  held: Held[] = [];
  /** The other writer's changes the view does not show yet, as changes to the reference. */
  external: (() => Promise<void>)[] = [];
  vol!: Volume;
  private constructor(
    readonly spec: DaemonSpec,
    readonly ref: string,
    readonly store: string,
    readonly base: string,
  ) {}

  static n = 0;
  /** How often each operation succeeded or failed with each errno (the coverage of a run). */
  static readonly outcomes = new Map<string, number>();
  static readonly start = startFileDaemon();

  static async open(): Promise<Run> {
    const base = await tmpDir('cairn-model-');
    const volume = `model${++Run.n}`;
    const spec: DaemonSpec = { mountpoint: path.join(base, 'mnt'), volume, storeDir: path.join(base, 'store') };
    await fs.mkdir(spec.mountpoint);
    const ref = path.join(base, 'ref');
    await fs.mkdir(ref);
    const run = new Run(spec, ref, `file://${spec.storeDir}`, base);
    run.d = await Run.start(spec);
    run.vol = await Volume.fromName(spec.volume!, { store: run.store });
    return run;
  }

  /** The newest committed tree, as a fresh reader sees it. */
  private committed(): Promise<string[]> {
    return describeCommitted(this.store, this.spec.volume!);
  }

  /** The view now shows the other writer's changes: so does the reference. */
  private async seeExternal(): Promise<void> {
    for (const f of this.external.splice(0)) await f();
  }

  async step(op: Op): Promise<void> {
    switch (op.op) {
      case 'commit':
        await controlRequest(this.spec.mountpoint, 'commit');
        sameTree(mine(await this.committed()), mine(await describeTree(this.ref)), 'the committed snapshot');
        return;
      case 'commitDuring': {
        const mnt = this.spec.mountpoint;
        const [, got] = await Promise.all([controlRequest(mnt, 'commit'), fsOp(mnt, op.during)]);
        const want = await fsOp(this.ref, op.during);
        sameOutcome(got, want, 'the change made during the commit');
        this.count(op.during, want);
        return;
      }
      case 'reload': {
        const busy = () =>
          controlRequest(this.spec.mountpoint, 'reload').then(
            () => false,
            (e: { code?: string }) => {
              if (e.code !== 'VOLUME_BUSY') throw e;
              return true;
            },
          );
        if (this.held.length > 0) assert.equal(await busy(), true, 'reload is refused while files are open');
        else {
          // The kernel releases closed files asynchronously: reload is refused until it has.
          await waitFor(async () => !(await busy()), { what: 'reload (files still open)' });
          await this.seeExternal();
        }
        return;
      }
      case 'remount': {
        await this.closeHeld();
        assert.equal(await this.d.stop(), 0, `clean unmount: ${this.d.logs()}`);
        this.d = await Run.start(this.spec);
        const status = (await controlRequest(this.spec.mountpoint, 'status')) as { pending: number };
        assert.equal(status.pending, 0, 'the unmount committed everything');
        await this.seeExternal(); // a new mount starts at the newest snapshot
        sameTree(await this.committed(), await describeTree(this.ref), 'the committed snapshot after remount');
        return;
      }
      case 'kill9':
        // Every write has returned: the staging files hold it, nothing may be lost.
        this.d.child.kill('SIGKILL');
        await this.d.exited;
        await this.closeHeld();
        await forceUnmount(this.spec.mountpoint);
        await this.d.stop();
        this.d = await Run.start(this.spec);
        await this.seeExternal();
        return;
      case 'external': {
        const remote = `/x/${op.name}`;
        if (op.remove) {
          const there = await this.vol.listdir(remote).then(
            () => true,
            () => false,
          );
          if (there) await this.vol.removeFile(remote);
          this.external.push(() => fs.rm(path.join(this.ref, 'x', op.name), { force: true }));
          return;
        }
        const data = bytes(op.seed, op.length);
        const local = path.join(this.base, 'external');
        await fs.writeFile(local, data);
        await fs.chmod(local, 0o644);
        if (op.sameMtime) await fs.utimes(local, new Date(1_600_000_000_000), new Date(1_600_000_000_000));
        await this.vol.batchUpload({ force: true }, (b) => b.putFile(local, remote));
        this.external.push(async () => {
          await fs.mkdir(path.join(this.ref, 'x'), { recursive: true });
          await fs.writeFile(path.join(this.ref, 'x', op.name), data, { mode: 0o644 });
        });
        return;
      }
      case 'closeHeld':
        await this.closeHeld();
        return;
      case 'hold': {
        if (this.held.length >= 3) await this.closeHeld(this.held.shift());
        const flags = op.write ? 'r+' : 'r';
        const open = (root: string) => outcome(async () => (await fs.open(path.join(root, op.path), flags)).close());
        // Open both for real, comparing the outcome; directories are not held (reload is about files).
        const [got, want] = [await open(this.spec.mountpoint), await open(this.ref)];
        sameOutcome(got, want, 'the outcome');
        this.count(op, want);
        if (!want.ok || (await fs.stat(path.join(this.ref, op.path))).isDirectory()) return;
        const mnt = await fs.open(path.join(this.spec.mountpoint, op.path), flags);
        this.held.push({ mnt, ref: await fs.open(path.join(this.ref, op.path), flags) });
        return;
      }
      case 'writeHeld': {
        const h = this.held[op.which % Math.max(1, this.held.length)];
        if (!h) return;
        const data = bytes(op.seed, op.length);
        const write = (fh: fs.FileHandle) => outcome(async () => void (await fh.write(data, 0, op.length, op.offset)));
        const [got, want] = [await write(h.mnt), await write(h.ref)];
        sameOutcome(got, want, 'the outcome');
        this.count(op, want);
        return;
      }
      default: {
        const [got, want] = [await fsOp(this.spec.mountpoint, op), await fsOp(this.ref, op)];
        if (!got.ok && got.code === 'ENOTEMPTY' && want.ok && (await this.onlyHidden(op))) return;
        sameOutcome(got, want, 'the outcome');
        this.count(op, want);
      }
    }
  }

  private count(op: Op, o: Outcome): void {
    const k = `${op.op} ${o.ok ? 'ok' : o.code}`;
    Run.outcomes.set(k, (Run.outcomes.get(k) ?? 0) + 1);
  }

  /**
   * The documented exception (SEMANTICS.md): a directory that holds only `.fuse_hidden*` files
   * (unlinked while open) is not empty for rmdir or rename. Puts the reference back as the mount
   * is, and says whether that was the case.
   */
  private async onlyHidden(op: Op): Promise<boolean> {
    const dir = op.op === 'rmdir' ? op.path : op.op === 'rename' ? op.to : undefined;
    if (!dir) return false;
    const names = await fs.readdir(path.join(this.spec.mountpoint, dir)).catch(() => ['?']);
    if (names.length === 0 || !names.every((n) => n.startsWith('.fuse_hidden'))) return false;
    const mode = (await fs.stat(path.join(this.spec.mountpoint, dir))).mode & 0o7777;
    if (op.op === 'rename') await fs.rename(path.join(this.ref, op.to), path.join(this.ref, op.from));
    await fs.mkdir(path.join(this.ref, dir));
    await fs.chmod(path.join(this.ref, dir), mode);
    return true;
  }

  /** Closes one held file (or all of them), on both sides; the mount's may be dead (kill9). */
  private async closeHeld(one?: Held): Promise<void> {
    const all = one ? [one] : this.held.splice(0);
    for (const h of all) {
      await h.mnt.close().catch(() => undefined);
      await h.ref.close();
    }
  }

  async close(): Promise<void> {
    await this.closeHeld();
    await this.vol.close();
    await this.d.stop();
    await fs.rm(this.base, { recursive: true, force: true });
  }
}

describe('model-based test of a mount (real session)', () => {
  after(() => cleanupAll());

  it(`${RUNS} runs of up to ${OPS} operations agree with a local directory (seed ${SEED})`, async (t) => {
    t.diagnostic(`seed ${SEED}, ${RUNS} runs, up to ${OPS} ops each (CAIRN_MODEL_SEED / _RUNS / _OPS)`);
    let ops = 0;
    let runs = 0;
    const started = Date.now();
    const given = process.env.CAIRN_MODEL_REPLAY;
    const replay = given ? [[JSON.parse(given) as Op[]] as [Op[]]] : undefined;
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: OPS, size: 'max' }), async (seq) => {
        runs++;
        const run = await Run.open();
        try {
          for (const [i, op] of [...PRELUDE, ...seq].entries()) {
            ops++;
            try {
              await run.step(op);
              const [got, want] = await Promise.all([describeTree(run.spec.mountpoint), describeTree(run.ref)]);
              sameTree(got, want, 'the mount');
            } catch (err) {
              throw new Error(`step ${i} ${JSON.stringify(op)}: ${(err as Error).message}`, { cause: err });
            }
          }
        } finally {
          await run.close();
        }
      }),
      {
        seed: SEED,
        numRuns: replay ? 1 : RUNS,
        ...(replay ? { examples: replay } : {}),
        includeErrorInReport: true,
        endOnFailure: process.env.CAIRN_MODEL_NO_SHRINK === '1',
      },
    );
    t.diagnostic(`${ops} operations in ${runs} runs, ${((Date.now() - started) / 1000).toFixed(1)} s`);
    t.diagnostic(
      [...Run.outcomes]
        .sort()
        .map(([k, n]) => `${k}: ${n}`)
        .join(', '),
    );
  });
});
