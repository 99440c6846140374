/**
 * Signal handling of Cairn's long-lived processes: a mount daemon (SIGTERM/SIGINT shut it down),
 * and both halves of `cairn run` (its outer half in the caller's process, run/run.ts, and its
 * inner half in the container, run/inner.ts).
 *
 * A holder keeps a handler for its signals from its first moment to its last, so the process
 * never dies of one while it has work to finish (a final commit): a signal is recorded, forwarded
 * or ignored by the handler. A terminal's Ctrl-C and timeout(1) signal the whole process group,
 * so each half of `cairn run` may get the same signal twice (directly and forwarded).
 */
import { constants } from 'node:os';

/** Forwarded to the command while it runs. */
export const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

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

/** What a mount daemon shuts down on. */
export const SHUTDOWN_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];

/**
 * Holds a handler for `signals` (default: every forwarded one) until `release()` (idempotent);
 * `on` gets each one.
 * @example const hold = holdSignals((sig) => child?.kill(sig)); try { ... } finally { hold.release(); }
 */
export function holdSignals(
  on: (sig: NodeJS.Signals) => void,
  signals: readonly NodeJS.Signals[] = FORWARDED_SIGNALS,
): { release(): void } {
  for (const s of signals) process.on(s, on);
  let held = true;
  return {
    release: () => {
      if (!held) return;
      held = false;
      for (const s of signals) process.off(s, on);
    },
  };
}
