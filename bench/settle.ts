/**
 * Waiting for a quiet host before a measurement: the bench shares 2 cores with Ceph RGW, the
 * mounts of the previous group (unmounting, flushing) and the kernel's writeback, and a group
 * started while they still run measures them (a warm read started right after 16 cold readers
 * once ran at a load average of 58). `settle` samples /proc/stat until one window is mostly
 * idle, bounded in time, and says how idle the host was, so a figure taken on a busy host shows.
 *
 * Invariants: never waits longer than `maxMs` (plus one window); on a host without /proc/stat it
 * returns at once with `idle: null`.
 */
import { promises as fsp } from 'node:fs';

/** Idle and total jiffies over all CPUs (the first line of /proc/stat). */
async function cpuTimes(): Promise<{ idle: number; total: number } | null> {
  const line = (await fsp.readFile('/proc/stat', 'utf8').catch(() => '')).split('\n')[0] ?? '';
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  if (f.length < 5 || f.some((x) => !Number.isFinite(x))) return null;
  // user nice system idle iowait irq softirq steal ...: idle and iowait count as idle.
  return { idle: f[3]! + f[4]!, total: f.reduce((a, b) => a + b, 0) };
}

export interface Settled {
  /** Idle fraction of all CPUs over the last window (0..1), null when unknown. */
  idle: number | null;
  waitedMs: number;
}

/**
 * Waits until the host's CPUs were at least `idle` idle over one `windowMs` window, or `maxMs`.
 * @example const { idle } = await settle(); // then start the group
 */
export async function settle(o: { idle?: number; windowMs?: number; maxMs?: number } = {}): Promise<Settled> {
  const want = o.idle ?? 0.8;
  const windowMs = o.windowMs ?? 250;
  const maxMs = o.maxMs ?? 20_000;
  const start = Date.now();
  for (;;) {
    const a = await cpuTimes();
    if (!a) return { idle: null, waitedMs: Date.now() - start };
    await new Promise((r) => setTimeout(r, windowMs));
    const b = (await cpuTimes())!;
    const idle = b.total > a.total ? (b.idle - a.idle) / (b.total - a.total) : 1;
    if (idle >= want || Date.now() - start >= maxMs) return { idle: Math.round(idle * 100) / 100, waitedMs: Date.now() - start };
  }
}
