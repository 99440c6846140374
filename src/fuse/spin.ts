/**
 * Keeps the event loop polling for a moment after a burst of FUSE requests answered in
 * JavaScript, so that the next request of a client that works one request at a time (cp, tar,
 * rsync, git: a LOOKUP, a CREATE, its WRITEs and SETATTRs, one after the other) is picked up
 * without waking a sleeping thread. A worker hands a request to JavaScript through a thread-safe
 * function (an eventfd write); when the event loop sleeps in epoll, that costs a wake-up of the
 * thread (on this VM an IPI to a halted vCPU) on every request. While a `setImmediate` is
 * pending, libuv polls without sleeping and sees the request at its next turn.
 *
 * Invariants: a spin starts only on a request that came within `BURST_WINDOWS` windows of the
 * previous one (a client in a burst) while JavaScript has no other request in hand (parallel
 * clients, or requests waiting for the store, wake the loop by themselves and need the CPU for
 * that work), and lasts until a window has passed since the last request or answer: at most one
 * idle window of CPU per burst, none for sparse requests; READs (answered in JavaScript only while
 * they wait for the store) neither start nor extend one. Off (window 0) with `CAIRN_FUSE_SPIN_US=0`
 * or on a single CPU, where polling would take the CPU from the client. The native binding only.
 */
import os from 'node:os';

/** The default window, µs: a `cp -r` or tar client's time between an answer and its next request is ~50–150 µs here. */
export const SPIN_US = 200;

/** A request this many windows after the previous one starts no spin (the client is not in a burst). */
const BURST_WINDOWS = 4;

/** The window from `$CAIRN_FUSE_SPIN_US` (µs, 0 = off), else SPIN_US; 0 on a single CPU. */
export function spinWindowUs(env: NodeJS.ProcessEnv = process.env): number {
  if (os.availableParallelism() < 2) return 0;
  const v = env.CAIRN_FUSE_SPIN_US;
  const n = v === undefined || v === '' ? SPIN_US : Number(v);
  return Number.isFinite(n) && n > 0 ? Math.min(n, 10_000) : 0;
}

/**
 * @example
 *   const spin = new RequestSpin(spinWindowUs());
 *   spin.arrived();   // each request JavaScript answers (not READs)
 *   spin.answered();  // each answer
 */
export class RequestSpin {
  /** Spins started, and requests that arrived during one (each a wake-up saved). */
  spins = 0;
  hits = 0;
  private readonly windowMs: number;
  private last = -Infinity;
  private spinning = false;

  constructor(windowUs: number) {
    this.windowMs = windowUs / 1000;
  }

  get active(): boolean {
    return this.spinning;
  }

  /** A request reached JavaScript; `othersWaiting`: others it answers later are still in hand (no ping-pong client). */
  arrived(othersWaiting = false): void {
    if (this.windowMs <= 0) return;
    const now = performance.now();
    const gap = now - this.last;
    this.last = now;
    if (this.spinning) {
      this.hits++;
      return;
    }
    if (othersWaiting || gap > this.windowMs * BURST_WINDOWS) return;
    this.spinning = true;
    this.spins++;
    setImmediate(this.turn);
  }

  /** An answer went out: the client's next request is due from now. */
  answered(): void {
    if (this.spinning) this.last = performance.now();
  }

  private readonly turn = (): void => {
    if (performance.now() - this.last < this.windowMs) setImmediate(this.turn);
    else this.spinning = false;
  };
}
