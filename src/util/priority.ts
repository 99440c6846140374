/**
 * CPU priority of background work: a process that exists to do work nobody waits for (a gc run
 * from cron or the CLI) lowers its own priority, so that commits and reads on the same host go
 * first when the CPUs are busy.
 *
 * Invariants: only ever lowers (a nice value is never decreased: that needs privileges, and the
 * caller asked for background work); failures are ignored (priority is an optimisation).
 */
import fs from 'node:fs/promises';
import os from 'node:os';

/** The nice value background work runs at by default (0 = normal, 19 = lowest). */
export const BACKGROUND_NICE = 10;

/**
 * Lowers this process's CPU priority to nice `nice` (0–19). On Linux a nice value is per thread:
 * every thread of the process (libuv's pool, V8's helpers) is reniced, and threads started later
 * inherit it from the one starting them. Elsewhere the process's priority is set.
 *
 * @example await lowerPriority(BACKGROUND_NICE);
 */
export async function lowerPriority(nice: number): Promise<void> {
  const n = Math.max(0, Math.min(19, Math.round(nice)));
  let tids: number[];
  try {
    tids = (await fs.readdir('/proc/self/task')).map(Number).filter((t) => Number.isSafeInteger(t) && t > 0);
  } catch {
    tids = [0];
  }
  for (const t of tids) {
    try {
      if (os.getPriority(t) < n) os.setPriority(t, n);
    } catch {
      // a thread that ended meanwhile, or no permission: leave it
    }
  }
}
