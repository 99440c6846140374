/**
 * The inside of a `cairn run` container (already in its private mount namespace): mounts every
 * volume in this process, runs the command with stdio passed through, forwards signals to it,
 * then makes the final commit of every writable volume and unmounts.
 *
 * Invariants: the command starts only when every mount is up; every mount is closed (final
 * commit, unmount) whatever way the command ends; a failed final commit is reported loudly on
 * stderr and its changes stay in the session directory, which the next run of the same volume
 * and path picks up (recovered and committed at mount); the exit code is the command's
 * (128 + signal when killed), or 1 when it succeeded but a final commit failed.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import { constants } from 'node:os';
import path from 'node:path';
import { isCairnError } from '../errors.js';
import { sessionsDir } from '../config.js';
import { openSession, type MountSession } from '../volume/open.js';
import { runDaemon, type MountHandle } from '../fuse/daemon.js';
import type { InnerConfig } from './run.js';
import type { VolumeSpec } from './spec.js';

const osSignals = constants.signals as Record<string, number>;
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

async function main(): Promise<number> {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as InnerConfig;
  const mounts: MountHandle[] = [];
  const closeAll = async (): Promise<boolean> => {
    let ok = true;
    for (const m of mounts.reverse()) {
      const r = await m.close('exit', { force: true }).catch((err) => ({ reason: 'exit', error: { code: err.code ?? 'IO', message: String(err.message ?? err) } }));
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
      await fs.mkdir(spec.path, { recursive: true });
      const session = await openRunSession(spec, cfg.store);
      try {
        mounts.push(
          await runDaemon({
            session,
            mountpoint: spec.path,
            volumeName: spec.volume,
            readOnly: spec.readOnly,
            commitIntervalSec: spec.readOnly ? 0 : cfg.commitIntervalSec,
            status: () => session.status(),
            handleSignals: false,
            onLog: (level, msg) => {
              if (level === 'error' || level === 'warn') say(msg);
            },
          }),
        );
      } catch (err) {
        await session.close();
        throw err;
      }
    }
  } catch (err) {
    say(`${isCairnError(err) ? `${err.code}: ` : ''}${(err as Error).message}`);
    await closeAll();
    return 1;
  }

  const env = { ...process.env, CAIRN_MOUNTS: JSON.stringify(cfg.mounts) };
  const child = spawn(cfg.command[0]!, cfg.command.slice(1), { stdio: 'inherit', env, cwd: cfg.workdir });
  const forward = (sig: NodeJS.Signals) => child.kill(sig);
  const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];
  for (const s of signals) process.on(s, forward);
  const code = await new Promise<number>((resolve) => {
    child.once('error', (err) => {
      say(`cannot start ${cfg.command[0]}: ${err.message}`);
      resolve(127);
    });
    child.once('exit', (c, sig) => resolve(c ?? 128 + (sig ? (osSignals[sig] ?? 1) : 1)));
  });
  for (const s of signals) process.off(s, forward);
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
