/**
 * The mount log's two layouts: JSON lines for files and pipes, a line a person reads on a
 * terminal (`cairn mount --foreground`), and CAIRN_LOG_FORMAT forcing either.
 */
import '../helpers/env.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { humanLine, humanStderr, jsonLine } from '../../src/fuse/log.js';

describe('mount log layouts', () => {
  const at = new Date('2026-11-30T12:01:02Z');
  it('JSON lines carry every figure; human lines read as a sentence with key=value figures', () => {
    const extra = { device: '0:52', binding: 'native', readOnly: false, note: 'two words' };
    assert.deepEqual(JSON.parse(jsonLine('info', 'mounted v at /mnt', extra, at)), {
      time: '2026-11-30T12:01:02.000Z',
      level: 'info',
      msg: 'mounted v at /mnt',
      ...extra,
    });
    const h = humanLine('warn', 'mounted v at /mnt', extra, at);
    assert.match(h, /^\d\d:\d\d:\d\d WARN {2}mounted v at \/mnt {2}device=0:52 binding=native readOnly=false note="two words"\n$/);
    const withStack = humanLine('error', 'read /a failed', { error: 'Error: boom\n    at x (y.js:1:1)' }, at);
    assert.match(withStack, /ERROR read \/a failed\nError: boom\n {4}at x/);
    assert.equal(humanLine('info', 'plain', {}, at).endsWith('INFO  plain\n'), true);
  });

  it('chooses human on a terminal, JSON otherwise, and obeys CAIRN_LOG_FORMAT', () => {
    assert.equal(humanStderr({}, true), true);
    assert.equal(humanStderr({}, false), false);
    assert.equal(humanStderr({ CAIRN_LOG_FORMAT: 'json' }, true), false);
    assert.equal(humanStderr({ CAIRN_LOG_FORMAT: 'human' }, false), true);
  });
});
