/**
 * What a Cairn mount daemon spent serving one benchmark group: its CPU seconds (process.cpuUsage
 * of the serving process, which in a benchmark container is the container itself) and, per FUSE
 * request type, how many were answered and the mean µs from the adapter's call to the answer (the
 * mount's metrics, src/util/metrics.ts), with `read_native` for the READs the native addon
 * answered from verified chunks without entering JavaScript (its own count and time). Imports
 * nothing else of the benchmark (bench/container.ts runs it).
 */

/** Requests of one type: how many, and mean µs each. */
export interface RequestCost {
  n: number;
  us: number;
}

export interface DaemonCosts {
  cpuSec: number;
  requests: Record<string, RequestCost>;
}

type Status = Record<string, unknown>;

/** Counts and total seconds per request type from a mount's status. */
function totals(st: Status): Map<string, { n: number; sec: number }> {
  const out = new Map<string, { n: number; sec: number }>();
  const m = (st.metrics ?? {}) as Record<string, number>;
  for (const [k, v] of Object.entries(m)) {
    const hit = /^cairn_fuse_op_seconds_(sum|count)\{op="([^"]+)"\}$/.exec(k);
    if (!hit) continue;
    const e = out.get(hit[2]!) ?? { n: 0, sec: 0 };
    if (hit[1] === 'sum') e.sec = v;
    else e.n = v;
    out.set(hit[2]!, e);
  }
  const nr = st.nativeReads as { served?: number; servedNs?: number } | null | undefined;
  if (nr && typeof nr.served === 'number') out.set('read_native', { n: nr.served, sec: (nr.servedNs ?? 0) / 1e9 });
  return out;
}

/**
 * Starts measuring: call the returned function when the group's work is done.
 *
 * @example const done = await measureCosts(() => handle.status()); ...; const costs = await done();
 */
export async function measureCosts(status: () => Promise<Status>): Promise<() => Promise<DaemonCosts>> {
  const before = totals(await status());
  const cpu0 = process.cpuUsage();
  return async () => {
    const cpu = process.cpuUsage(cpu0);
    const after = totals(await status());
    const requests: Record<string, RequestCost> = {};
    for (const [op, a] of after) {
      const b = before.get(op) ?? { n: 0, sec: 0 };
      const n = a.n - b.n;
      if (n > 0) requests[op] = { n, us: Math.round(((a.sec - b.sec) / n) * 1e6 * 10) / 10 };
    }
    return { cpuSec: (cpu.user + cpu.system) / 1e6, requests };
  };
}

/**
 * Several daemons' (or runs') request costs as one: counts added, means weighted by count.
 *
 * @example const all = mergeRequests([a.requests, b.requests]);
 */
export function mergeRequests(list: Record<string, RequestCost>[]): Record<string, RequestCost> {
  const acc = new Map<string, { n: number; total: number }>();
  for (const r of list) {
    for (const [op, c] of Object.entries(r)) {
      const e = acc.get(op) ?? { n: 0, total: 0 };
      e.n += c.n;
      e.total += c.n * c.us;
      acc.set(op, e);
    }
  }
  const out: Record<string, RequestCost> = {};
  for (const [op, e] of [...acc].sort((x, y) => y[1].total - x[1].total)) out[op] = { n: e.n, us: Math.round((e.total / e.n) * 10) / 10 };
  return out;
}
