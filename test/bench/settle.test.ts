import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { settle } from '../../bench/settle.js';

describe('bench/settle', () => {
  it('measures the idle fraction of one window when it may not wait', async () => {
    const r = await settle({ maxMs: 0, windowMs: 100 });
    assert.ok(r.idle !== null && r.idle >= 0 && r.idle <= 1, `idle ${r.idle}`);
  });

  it('waits up to its bound for a quiet host that never comes, then says how idle it was', async () => {
    const r = await settle({ idle: 1.01, maxMs: 300, windowMs: 100 });
    assert.ok(r.waitedMs >= 300, `waited ${r.waitedMs} ms`);
    assert.ok(r.idle !== null && r.idle <= 1);
  });
});
