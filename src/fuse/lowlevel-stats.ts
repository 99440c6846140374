/**
 * Per-request-type counts and times of a native mount, for profiling (`CAIRN_FUSE_OPSTATS=1`):
 * from the request reaching JavaScript to its answer. Written as one JSON line on stderr
 * (`{"fuseOpStats":{"LOOKUP":{"n":..,"totalMs":..,"avgUs":..}}}`) when the mount ends, with the
 * counts of READs and GETATTRs the addon answered itself (READ_NATIVE, GETATTR_NATIVE), of
 * workers woken with no request to read (IDLE_WAKEUPS) and of the event loop's spins (SPINS,
 * SPIN_HITS: ./spin.ts).
 */
import { OP, type DispatchStats, type Req } from './lowlevel-addon.js';

const NAMES = new Map<number, string>(Object.entries(OP).map(([k, v]) => [v, k]));

/**
 * Times requests by type.
 *
 * @example
 *   const s = OpStats.fromEnv(); s?.start(req, OP.LOOKUP); s?.end(req); console.log(s?.summary());
 */
export class OpStats {
  private readonly open = new WeakMap<Req, [number, number]>();
  private readonly byOp = new Map<number, { n: number; ms: number }>();

  /** An instance when `CAIRN_FUSE_OPSTATS=1`, else undefined. */
  static fromEnv(): OpStats | undefined {
    return process.env.CAIRN_FUSE_OPSTATS === '1' ? new OpStats() : undefined;
  }

  start(req: Req, op: number): void {
    this.open.set(req, [op, performance.now()]);
  }

  end(req: Req): void {
    const s = this.open.get(req);
    if (!s) return;
    this.open.delete(req);
    const e = this.byOp.get(s[0]) ?? { n: 0, ms: 0 };
    e.n++;
    e.ms += performance.now() - s[1];
    this.byOp.set(s[0], e);
  }

  /** Per type; with `native`, the READs answered by the addon without JavaScript as READ_NATIVE. */
  summary(
    native?: { served: number; servedNs: number; nativeOpens?: number; nativeReleases?: number },
    dispatch?: Pick<DispatchStats, 'attrHits' | 'lookupHits' | 'idleWakeups' | 'spins' | 'spinHits'>,
  ): Record<string, { n: number; totalMs?: number; avgUs?: number }> {
    const out: Record<string, { n: number; totalMs?: number; avgUs?: number }> = {};
    // GETATTRs and LOOKUPs the addon answered from what JavaScript left (native/nattr.h); worker wake-ups without a request.
    if (dispatch) {
      out.GETATTR_NATIVE = { n: dispatch.attrHits };
      if (dispatch.lookupHits) out.LOOKUP_NATIVE = { n: dispatch.lookupHits };
      out.IDLE_WAKEUPS = { n: dispatch.idleWakeups };
      if (dispatch.spins) out.SPINS = { n: dispatch.spins };
      if (dispatch.spinHits) out.SPIN_HITS = { n: dispatch.spinHits };
    }
    if (native && native.served > 0) {
      const ms = native.servedNs / 1e6;
      out.READ_NATIVE = { n: native.served, totalMs: Math.round(ms), avgUs: Math.round((ms / native.served) * 1000) };
    }
    // OPENs and RELEASEs the addon answered itself (native/nopen.c; not timed).
    if (native?.nativeOpens) out.OPEN_NATIVE = { n: native.nativeOpens };
    if (native?.nativeReleases) out.RELEASE_NATIVE = { n: native.nativeReleases };
    const sorted = [...this.byOp].sort((a, b) => b[1].ms - a[1].ms);
    for (const [op, e] of sorted) {
      out[NAMES.get(op) ?? String(op)] = { n: e.n, totalMs: Math.round(e.ms), avgUs: Math.round((e.ms / e.n) * 1000) };
    }
    return out;
  }
}
