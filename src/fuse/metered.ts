/**
 * FUSE operations that count themselves: each answer is observed by the mount's metrics (its
 * latency from call to answer, whether it failed, the bytes a read or write moved). Wraps the
 * adapter's operations, so both bindings are counted the same way.
 */
import type { MountMetrics } from '../util/metrics.js';
import type { FuseOps } from './adapter.js';

/**
 * `ops` with every answer counted in `metrics`.
 * @example const ops = withMetrics(createOps(session, config), metrics);
 */
export function withMetrics(ops: FuseOps, metrics: MountMetrics): FuseOps {
  const out: FuseOps = {};
  for (const [name, fn] of Object.entries(ops)) {
    out[name] = (...args: unknown[]) => {
      // The answer callback is the last function argument (the native binding passes a pid after it).
      let at = args.length - 1;
      while (at >= 0 && typeof args[at] !== 'function') at--;
      if (at < 0) return fn(...args);
      const cb = args[at] as (code: number, ...rest: unknown[]) => void;
      const t0 = performance.now();
      args[at] = (code: number, ...rest: unknown[]) => {
        const n = typeof code === 'number' && code > 0 ? code : 0;
        const bytes = name === 'read' ? { read: n } : name === 'write' ? { written: n } : undefined;
        metrics.op(name, (performance.now() - t0) / 1000, typeof code === 'number' && code < 0, bytes);
        cb(code, ...rest);
      };
      return fn(...args);
    };
  }
  return out;
}
