/** Unit tests of the control protocol: a server on an abstract socket, no mount needed. */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { CairnError, decodeError, encodeError, type ErrorCode } from '../../src/errors.js';
import { requestSocket, startControlServer, type ControlServer } from '../../src/fuse/control.js';

const servers: ControlServer[] = [];
after(async () => {
  for (const s of servers) await s.close();
});

function rawRequest(socket: string, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.createConnection(socket);
    let buf = '';
    c.setEncoding('utf8');
    c.on('connect', () => c.write(line));
    c.on('data', (d: string) => (buf += d));
    c.on('end', () => resolve(buf));
    c.on('error', reject);
  });
}

describe('control protocol', () => {
  it('round-trips results and CairnErrors with code, message, context and hint', async () => {
    const socket = `\0cairn-test-${process.pid}-1`;
    const srv = await startControlServer(socket, async (req) => {
      if (req.op === 'status') return { ok: 1, args: req.args ?? null };
      if (req.op === 'reload') {
        throw new CairnError('VOLUME_BUSY', 'cannot reload v: 1 file(s) open: /a', {
          volume: 'v',
          openFiles: [{ path: '/a', pid: 7 }],
          hint: 'close these files, then reload',
        });
      }
      throw new Error('plain failure');
    });
    servers.push(srv);
    assert.deepEqual(await requestSocket(socket, { op: 'status', args: { x: 1 } }, 5000), { ok: 1, args: { x: 1 } });
    const err = (await requestSocket(socket, { op: 'reload' }, 5000).catch((e: unknown) => e)) as CairnError;
    assert.ok(err instanceof CairnError);
    assert.equal(err.code, 'VOLUME_BUSY');
    assert.equal(err.message, 'cannot reload v: 1 file(s) open: /a');
    assert.equal(err.hint, 'close these files, then reload');
    assert.deepEqual(err.context.openFiles, [{ path: '/a', pid: 7 }]);
    const io = (await requestSocket(socket, { op: 'commit' }, 5000).catch((e: unknown) => e)) as CairnError;
    assert.equal(io.code, 'IO');
    assert.match(io.message, /plain failure/);
  });

  it('answers malformed requests with INVALID_ARGUMENT', async () => {
    const socket = `\0cairn-test-${process.pid}-2`;
    servers.push(await startControlServer(socket, async () => 'never'));
    const a = JSON.parse(await rawRequest(socket, 'not json\n'));
    assert.equal(a.ok, false);
    assert.equal(a.error.code, 'INVALID_ARGUMENT');
    const b = JSON.parse(await rawRequest(socket, '{"op":"format-disk"}\n'));
    assert.equal(b.error.code, 'INVALID_ARGUMENT');
  });

  it('reports UNAVAILABLE when nobody listens, and on timeout', async () => {
    await assert.rejects(
      requestSocket(`\0cairn-test-nobody-${process.pid}`, { op: 'status' }, 2000),
      (e: CairnError) => e.code === 'UNAVAILABLE',
    );
    const socket = `\0cairn-test-${process.pid}-3`;
    servers.push(await startControlServer(socket, () => new Promise(() => undefined)));
    await assert.rejects(
      requestSocket(socket, { op: 'commit' }, 200),
      (e: CairnError) => e.code === 'UNAVAILABLE' && /did not answer/.test(e.message),
    );
  });

  it('wire form keeps every error code', () => {
    const codes: ErrorCode[] = ['NOT_FOUND', 'READ_ONLY', 'VOLUME_BUSY', 'CONFLICT', 'CORRUPT'];
    for (const code of codes) {
      const e = decodeError(encodeError(new CairnError(code, 'm', { path: '/p' })));
      assert.equal(e.code, code);
      assert.equal(e.message, 'm');
      assert.equal(e.context.path, '/p');
    }
  });

  it('wire form is lossless: message without the hint, hint and context apart, cause message kept', () => {
    const cause = new Error('disk on fire');
    const orig = new CairnError('NOT_FOUND', 'snapshot 9 does not exist', { volume: 'v', hint: 'see vol.history()', n: 3 }, { cause });
    assert.equal(orig.message, 'snapshot 9 does not exist');
    const back = decodeError(JSON.parse(JSON.stringify(encodeError(orig))));
    assert.equal(back.code, 'NOT_FOUND');
    assert.equal(back.message, 'snapshot 9 does not exist');
    assert.deepEqual(back.context, { volume: 'v', hint: 'see vol.history()', n: 3 });
    assert.equal((back.cause as Error).message, 'disk on fire');
    // Twice across a boundary (a child's error relayed by a daemon): still one hint.
    const twice = decodeError(encodeError(back));
    assert.equal(String(twice), 'NOT_FOUND: snapshot 9 does not exist (see vol.history())');
    // A context entry JSON cannot carry is dropped alone.
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const partial = decodeError(encodeError(new CairnError('IO', 'x', { path: '/p', hint: 'h', bad: cyclic })));
    assert.deepEqual(partial.context, { path: '/p', hint: 'h' });
    // A plain error becomes IO with the fallback before its message.
    const plain = decodeError(encodeError(new Error('boom'), 'the daemon failed'));
    assert.equal(plain.code, 'IO');
    assert.equal(plain.message, 'the daemon failed: boom');
  });
});
