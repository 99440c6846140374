/**
 * A mount's figures: MountMetrics counts and snapshots, the Prometheus endpoint serves them to a
 * real HTTP client, bad listen addresses are INVALID_ARGUMENT, and `cairn stats` rows are the
 * per-second differences of two snapshots.
 */
import '../helpers/env.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { MountMetrics, metricTotal, parseListen, serveMetrics } from '../../src/util/metrics.js';
import { formatStatsRow, statsHeader, statsRow } from '../../src/cli/stats.js';
import { isCairnError } from '../../src/errors.js';

describe('mount metrics', () => {
  it('counts operations, bytes, errors and syncs, and reads the chunk figures at each snapshot', async () => {
    const chunks = { storeGets: 3, cacheHits: 5, cacheMisses: 1 };
    const m = new MountMetrics({ volume: 'v', chunks: () => chunks });
    m.op('read', 0.002, false, { read: 4096 });
    m.op('read', 0.004, false, { read: 4096 });
    m.op('write', 0.001, true);
    m.sync('commit', 0.5, true);
    const s = await m.snapshot();
    assert.equal(s['cairn_fuse_ops_total{op="read"}'], 2);
    assert.equal(metricTotal(s, 'cairn_fuse_ops_total'), 3);
    assert.equal(s['cairn_fuse_errors_total{op="write"}'], 1);
    assert.equal(s['cairn_read_bytes_total'], 8192);
    assert.equal(s['cairn_store_gets_total'], 3);
    assert.equal(s['cairn_syncs_total{kind="commit",result="ok"}'], 1);
    assert.ok(Math.abs(metricTotal(s, 'cairn_fuse_op_seconds_sum') - 0.007) < 1e-9);
    chunks.storeGets = 10;
    assert.equal((await m.snapshot())['cairn_store_gets_total'], 10, 'read again at each snapshot');
  });

  it('serves Prometheus text on HOST:PORT and refuses bad addresses and busy ports', async () => {
    const m = new MountMetrics({ volume: 'data' });
    m.op('getattr', 0.0001, false);
    const srv = await serveMetrics(m, '127.0.0.1:0');
    try {
      const res = await fetch(srv.url);
      assert.equal(res.status, 200);
      const body = await res.text();
      assert.match(body, /^cairn_fuse_ops_total\{op="getattr",volume="data"\} 1$/m);
      assert.match(body, /# TYPE cairn_fuse_op_seconds histogram/);
      assert.equal((await fetch(srv.url.replace('/metrics', '/nope'))).status, 404);
      const port = Number(new URL(srv.url).port);
      await assert.rejects(
        serveMetrics(m, `127.0.0.1:${port}`),
        (e) => isCairnError(e, 'INVALID_ARGUMENT') && /EADDRINUSE/.test(e.message),
      );
    } finally {
      await srv.close();
    }
    for (const bad of ['9100', 'host:', 'a:b', '1.2.3.4:70000', '']) {
      assert.throws(
        () => parseListen(bad),
        (e) => isCairnError(e, 'INVALID_ARGUMENT'),
        bad,
      );
    }
    assert.deepEqual(parseListen(':9100'), { host: '0.0.0.0', port: 9100 });
    assert.deepEqual(parseListen('[::1]:9100'), { host: '::1', port: 9100 });
    assert.ok(net.isIP(parseListen('127.0.0.1:1').host));
  });

  it('stats rows are per-second differences of two snapshots', async () => {
    const chunks = { storeGets: 0, cacheHits: 0, cacheMisses: 0 };
    const m = new MountMetrics({ volume: 'v', chunks: () => chunks });
    const a = await m.snapshot();
    for (let i = 0; i < 10; i++) m.op('read', 0.001, false, { read: 1 << 20 });
    m.op('open', 0.001, true);
    m.sync('commit', 0.1, true);
    m.sync('reload', 0.1, false);
    chunks.cacheHits = 3;
    chunks.cacheMisses = 1;
    chunks.storeGets = 4;
    const r = statsRow(a, await m.snapshot(), 2);
    assert.equal(r.opsPerSec, 5.5);
    assert.equal(r.errorsPerSec, 0.5);
    assert.equal(r.readBytesPerSec, 5 << 20);
    assert.equal(r.cacheHitRate, 0.75);
    assert.equal(r.storeGetsPerSec, 2);
    assert.equal(r.commits, 1);
    assert.equal(r.reloads, 0, 'a failed reload is not counted as one');
    assert.ok(Math.abs(r.opMs! - 1) < 1e-9);
    const line = formatStatsRow(r, new Date());
    assert.equal(line.length, statsHeader().length);
    assert.match(line, /5\.0MiB/);
    assert.match(line, /75\.0%/);
  });
});
