/**
 * Signals of `cairn run`, shared by its outer half (run.ts) and its inner half (inner.ts).
 *
 * Both halves hold a handler for every signal below from their first moment to their last, so
 * neither dies of one: a signal is recorded (before the command starts) or forwarded (while it
 * runs) or ignored (during the final commit). A terminal's Ctrl-C and timeout(1) signal the
 * whole process group, so each half may get the same signal twice (directly and forwarded).
 */
import { constants } from 'node:os';

/** Forwarded to the command while it runs. */
export const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = [
  'SIGTERM',
  'SIGINT',
  'SIGHUP',
  'SIGQUIT',
  'SIGUSR1',
  'SIGUSR2',
];

/** Before the command starts, these stop the run (the others are dropped). */
export const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT'];

const osSignals = constants.signals as Record<string, number>;

/**
 * The shell's exit status of a process: its code, or 128 + the signal that ended it.
 * @example exitStatus(null, 'SIGINT') // 130
 */
export function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  return code ?? 128 + (signal ? (osSignals[signal] ?? 1) : 1);
}

/**
 * Holds a handler for every forwarded signal until `release()`; `on` gets each one.
 * @example const hold = holdSignals((sig) => child?.kill(sig)); try { ... } finally { hold.release(); }
 */
export function holdSignals(on: (sig: NodeJS.Signals) => void): { release(): void } {
  for (const s of FORWARDED_SIGNALS) process.on(s, on);
  return {
    release: () => {
      for (const s of FORWARDED_SIGNALS) process.off(s, on);
    },
  };
}
