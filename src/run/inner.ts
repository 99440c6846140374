/**
 * The inside of a `cairn run` container (already in its private mount namespace): mounts every
 * volume in this process, runs the command with stdio passed through, forwards signals to it,
 * then makes the final commit of every writable volume and unmounts.
 *
 * Invariants: the command starts only when every mount is up; every mount is closed (final
 * commit, unmount) whatever way the command ends; a failed final commit is reported loudly on
 * stderr and its changes stay in the session directory, which the next run of the same volume
 * and path picks up (recovered and committed at mount); the exit code is the command's
 * (128 + signal when killed), or 1 when it succeeded but a final commit failed; no signal
 * kills this process (util/signals.ts); this process, which serves the mounts, never spawns a child
 * that touches one before exec (`startCommand`) nor blocks its event loop.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { CairnError, describeError, isCairnError } from '../errors.js';
import { sessionsDir } from '../config.js';
import { openSession, type MountSession } from '../volume/open.js';
import type { MountConfig } from '../fuse/config.js';
import type { MountHandle } from '../fuse/daemon.js';
import { startMount } from '../fuse/start.js';
import type { InnerConfig } from './run.js';
import { childInput } from '../util/child.js';
import { exitStatus, holdSignals, STOP_SIGNALS } from '../util/signals.js';
import type { VolumeSpec } from './spec.js';

const say = (msg: string) => process.stderr.write(`cairn run: ${msg}\n`);

/** Opens the session of a run mount: the first free run directory of this volume and path. */
async function openRunSession(spec: VolumeSpec, store?: string): Promise<MountSession> {
  const key = crypto.createHash('sha256').update(spec.path).digest('hex').slice(0, 12);
  for (let n = 0; ; n++) {
    const sessionDir = path.join(sessionsDir(), 'run', `${spec.volume}-${key}-${n}`);
    try {
      return await openSession({ volume: spec.volume, store, readOnly: spec.readOnly, mountpoint: spec.path, sessionDir });
    } catch (err) {
      if (n < 64 && (isCairnError(err, 'VOLUME_BUSY') || isCairnError(err, 'CONFLICT'))) continue;
      throw err;
    }
  }
}

/**
 * Starts the command so that this process never waits on its own mounts. spawn() blocks this
 * process, whose event loop serves every FUSE mount of the run, until the child has called
 * exec; a child that changed into a directory on a mount (`--workdir`), or exec'd a program on
 * one (by path or found through PATH), before its exec would wait for an answer this process
 * cannot give, forever (and stay in D state even after SIGKILL). So the child execs /bin/sh,
 * which is on no mount; the shell changes directory and execs the command once spawn() has
 * returned and the mounts are served again. The shell's own errors keep its exit codes: 126
 * when the command cannot be executed, 127 when it is not found.
 */
function startCommand(cfg: InnerConfig, env: NodeJS.ProcessEnv): ChildProcess {
  const script = cfg.workdir ? 'cd -- "$1" || exit 1; shift; exec "$@"' : 'exec "$@"';
  const args = cfg.workdir ? [cfg.workdir, ...cfg.command] : cfg.command;
  return spawn('/bin/sh', ['-c', script, 'cairn-run', ...args], { stdio: 'inherit', env });
}

/** Checks the workdir (asynchronously: it may be on a mount this process serves). */
async function checkWorkdir(dir: string): Promise<void> {
  const st = await fs.stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) {
    throw new CairnError('NOT_FOUND', `the workdir ${dir} is not a directory in the container`, {
      path: dir,
      hint: 'give --workdir an existing directory (on a volume, create it in an earlier run)',
    });
  }
}

async function main(): Promise<number> {
  const cfg = childInput<InnerConfig>();
  // A terminal that went away (SIGHUP) must not crash this process through a failed write.
  process.stderr.on('error', () => undefined);
  // Signals: held from here to exit, so this process never dies of one before its final commit.
  // Before the command starts a stop signal cancels the run; while it runs every signal goes to it;
  // after it has ended they are ignored (a Ctrl-C reaches this process twice: from the terminal
  // and forwarded by the outer half).
  // eslint-disable-next-line prefer-const -- set when the command starts; the signal handler reads it before
  let child: ChildProcess | undefined;
  let stopped: NodeJS.Signals | undefined;
  let endedAt = 0;
  let told = false;
  holdSignals((sig) => {
    if (!child) {
      if (STOP_SIGNALS.includes(sig)) stopped ??= sig;
    } else if (!endedAt) {
      child.kill(sig);
    } else if (!told && Date.now() - endedAt > 1000) {
      told = true;
      say(`${sig}: still making the final commit (kill -9 ${process.pid} abandons it; the changes stay for the next run)`);
    }
  });

  const mounts: MountHandle[] = [];
  const closeAll = async (): Promise<boolean> => {
    let ok = true;
    for (const m of mounts.reverse()) {
      const r = await m
        .close('exit', { force: true })
        .catch((err) => ({ reason: 'exit', error: { code: err.code ?? 'IO', message: describeError(err) } }));
      if (r.error) {
        ok = false;
        say(`FINAL COMMIT OF ${m.volumeName} AT ${m.mountpoint} FAILED: ${r.error.code}: ${r.error.message}`);
        say('its changes are kept and will be committed by the next run or mount of this volume at this path');
      }
    }
    return ok;
  };
  try {
    for (const spec of cfg.mounts) {
      if (stopped) break;
      await fs.mkdir(spec.path, { recursive: true });
      const config: MountConfig = {
        volume: spec.volume,
        mountpoint: spec.path,
        ...(cfg.store ? { store: cfg.store } : {}),
        readOnly: spec.readOnly,
        commitIntervalSec: spec.readOnly ? 0 : cfg.commitIntervalSec,
      };
      mounts.push(
        await startMount(config, {
          open: () => openRunSession(spec, cfg.store),
          handleSignals: false,
          onLog: (level, msg) => {
            if (level === 'error' || level === 'warn') say(msg);
          },
        }),
      );
    }
    if (cfg.workdir && !stopped) await checkWorkdir(cfg.workdir);
  } catch (err) {
    say(`${isCairnError(err) ? `${err.code}: ` : ''}${describeError(err)}`);
    await closeAll();
    return 1;
  }
  if (stopped) {
    await closeAll();
    return exitStatus(null, stopped);
  }

  const env = { ...process.env, CAIRN_MOUNTS: JSON.stringify(cfg.mounts) };
  const started = startCommand(cfg, env);
  child = started;
  const code = await new Promise<number>((resolve) => {
    started.once('error', (err) => {
      say(`cannot start ${cfg.command[0]}: ${err.message}`);
      resolve(127);
    });
    started.once('exit', (c, sig) => resolve(exitStatus(c, sig)));
  });
  endedAt = Date.now();
  const committed = await closeAll();
  return code === 0 && !committed ? 1 : code;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    say(`internal error: ${err?.stack ?? err}`);
    process.exit(1);
  },
);
