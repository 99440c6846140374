/**
 * S3Store specifics, against s3rver behind the conditional-write proxy: the conditional-write
 * probe (and that it leaves nothing behind), deletes racing with writes, the key prefix, a missing bucket, an unreachable
 * endpoint (fails fast), bad credentials, the default region, reads around the SDK client and
 * through it (over http and https), and URL parsing.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promises as fsp } from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startS3, startTlsFront, type S3Server, type TlsFront } from '../helpers/s3server.js';
import { openStore } from '../../src/store/open.js';
import { parseS3Url, readBody } from '../../src/store/s3.js';
import { isCairnError, type ErrorCode } from '../../src/errors.js';

const execFileP = promisify(execFile);

async function rejectsWith(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isCairnError(err), `expected a CairnError, got ${String(err)}`);
    assert.equal(err.code, code, String(err));
    assert.ok(err.context.hint, 'carries a hint');
    return true;
  });
}

async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

describe('S3Store', () => {
  let s3: S3Server;
  let plain: S3Server;
  before(async () => {
    [s3, plain] = await Promise.all([startS3(), startS3({ conditional: false, bucket: 'no-cond' })]);
  });
  after(async () => {
    await Promise.all([s3?.stop(), plain?.stop()]);
  });

  it('probes conditional writes: honoured -> true, and leaves no probe object', async () => {
    const url = s3.freshUrl();
    const store = await openStore(url);
    assert.equal(store.conditionalWrites, true);
    assert.deepEqual(await store.list(''), []);
    await store.close();
  });

  it('probes conditional writes: ignored by the server -> false (never pretends)', async () => {
    const store = await openStore(plain.freshUrl());
    assert.equal(store.conditionalWrites, false);
    assert.deepEqual(await store.list(''), []);
    await store.close();
  });

  it("survives deletes racing with writes in one directory (as concurrent opens' probes do)", async () => {
    // s3rver prunes a directory its delete empties; a write into it at that moment used to kill
    // s3rver (ENOENT on open). The harness's proxy keeps deletes apart from writes.
    const store = await openStore(s3.freshUrl());
    await store.put('d/k0', Buffer.from('0'));
    for (let i = 1; i <= 150; i++) await Promise.all([store.put(`d/k${i}`, Buffer.from(String(i))), store.delete(`d/k${i - 1}`)]);
    assert.deepEqual(
      (await store.list('d/')).map((o) => o.key),
      ['d/k150'],
    );
    const stores = await Promise.all(Array.from({ length: 12 }, () => openStore(s3.freshUrl())));
    await Promise.all([store, ...stores].map((st) => st.close()));
  });

  it('stores keys under the URL prefix', async () => {
    const prefixed = await openStore(`s3://${s3.bucket}/pre/fix?endpoint=${s3.endpoint}&path_style=true`);
    await prefixed.put('a/b', Buffer.from('1'));
    const root = await openStore(`s3://${s3.bucket}?endpoint=${s3.endpoint}&path_style=true`);
    assert.deepEqual(
      (await root.list('pre/')).map((o) => o.key),
      ['pre/fix/a/b'],
    );
    assert.equal((await root.get('pre/fix/a/b')).toString(), '1');
    assert.deepEqual(
      (await prefixed.list('')).map((o) => o.key),
      ['a/b'],
    );
    await prefixed.delete('a/b');
    await Promise.all([prefixed.close(), root.close()]);
  });

  it('missing bucket -> NOT_FOUND with a hint', async () => {
    await rejectsWith(openStore(`s3://no-such-bucket/p?endpoint=${s3.endpoint}&path_style=true`), 'NOT_FOUND');
  });

  it('unreachable endpoint -> UNAVAILABLE, fast', { timeout: 20_000 }, async () => {
    const port = await closedPort();
    const t0 = Date.now();
    await rejectsWith(openStore(`s3://cairn-test/p?endpoint=http://127.0.0.1:${port}&path_style=true`), 'UNAVAILABLE');
    assert.ok(Date.now() - t0 < 5_000, `took ${Date.now() - t0} ms`);
  });

  it('unknown credentials -> PERMISSION_DENIED', async () => {
    const saved = process.env.AWS_ACCESS_KEY_ID;
    process.env.AWS_ACCESS_KEY_ID = 'NOT-A-KEY';
    try {
      await rejectsWith(openStore(s3.freshUrl()), 'PERMISSION_DENIED');
    } finally {
      process.env.AWS_ACCESS_KEY_ID = saved;
    }
  });

  it('defaults the region to us-east-1 when the environment names none', async () => {
    const saved = { r: process.env.AWS_REGION, d: process.env.AWS_DEFAULT_REGION, c: process.env.AWS_CONFIG_FILE };
    delete process.env.AWS_REGION;
    delete process.env.AWS_DEFAULT_REGION;
    process.env.AWS_CONFIG_FILE = '/nonexistent/cairn-test-config';
    try {
      const store = await openStore(s3.freshUrl());
      await store.put('k', Buffer.from('v'));
      await store.close();
    } finally {
      for (const [k, v] of [
        ['AWS_REGION', saved.r],
        ['AWS_DEFAULT_REGION', saved.d],
        ['AWS_CONFIG_FILE', saved.c],
      ] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it('reads response bodies into one buffer, capped, and refuses cut or overlong ones', async () => {
    async function* pieces(...xs: string[]): AsyncIterable<Uint8Array> {
      for (const x of xs) yield Buffer.from(x);
    }
    assert.equal((await readBody(pieces('ab', 'cde'), 5)).toString(), 'abcde');
    assert.equal((await readBody(pieces('ab', 'cde'), 5, 3)).toString(), 'abc');
    assert.equal((await readBody(pieces('ab', 'cde'), undefined)).toString(), 'abcde');
    assert.equal((await readBody(pieces('ab', 'cde'), undefined, 1)).toString(), 'a');
    await rejectsWith(readBody(pieces('ab'), 5), 'UNAVAILABLE');
    await rejectsWith(readBody(pieces('ab', 'cdef'), 5), 'UNAVAILABLE');
  });

  it('reads (GET, ranges, HEAD) around the SDK client by default, through it with CAIRN_S3_LEAN=0: the same answers', async () => {
    const url = s3.freshUrl();
    const key = "d/a b+(1)!*'~\u00fc%.bin";
    const big = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
    const saved = process.env.CAIRN_S3_LEAN;
    const answers: unknown[] = [];
    try {
      for (const lean of [undefined, '0']) {
        if (lean === undefined) delete process.env.CAIRN_S3_LEAN;
        else process.env.CAIRN_S3_LEAN = lean;
        const store = (await openStore(url)) as Awaited<ReturnType<typeof openStore>> & { readPath: string };
        try {
          assert.equal(store.readPath, lean === '0' ? 'sdk' : 'lean');
          await store.put(key, Buffer.from('hello, world'));
          await store.put('d/big', big);
          assert.ok((await store.get('d/big')).equals(big));
          await assert.rejects(store.get('d/none'), (err: unknown) => isCairnError(err, 'NOT_FOUND'));
          answers.push([
            (await store.get(key)).toString(),
            (await store.get(key, { offset: 7, length: 5 })).toString(),
            (await store.get(key, { offset: 7, length: 100 })).toString(), // past the end: what there is
            (await store.get(key, { offset: 100, length: 5 })).length, // beyond the end: nothing
            (await store.get('d/big', { offset: 3 * 1024 * 1024, length: 1 << 20 })).length,
            (await store.head(key))?.size,
            typeof (await store.head(key))?.lastModified,
            await store.head('d/none'),
          ]);
        } finally {
          await store.close();
        }
      }
    } finally {
      if (saved === undefined) delete process.env.CAIRN_S3_LEAN;
      else process.env.CAIRN_S3_LEAN = saved;
    }
    assert.deepEqual(answers[0], ['hello, world', 'world', 'world', 0, 17, 12, 'number', undefined]);
    assert.deepEqual(answers[1], answers[0]);
  });

  it('reads around the SDK client over https too (a TLS endpoint in front of the server)', { timeout: 60_000 }, async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'cairn-tls-'));
    const saved = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    let server: TlsFront | undefined;
    try {
      await execFileP('openssl', [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        path.join(dir, 'k.pem'),
        '-out',
        path.join(dir, 'c.pem'),
      ]);
      server = await startTlsFront(s3.endpoint, await fsp.readFile(path.join(dir, 'k.pem')), await fsp.readFile(path.join(dir, 'c.pem')));
      const endpoint = server.endpoint;
      process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'; // the test's own self-signed certificate
      const store = (await openStore(s3.freshUrl().replace(s3.endpoint, endpoint))) as Awaited<ReturnType<typeof openStore>> & {
        readPath: string;
      };
      try {
        assert.equal(store.readPath, 'lean');
        await store.put('tls/a', Buffer.from('over tls'));
        assert.equal((await store.get('tls/a')).toString(), 'over tls');
        assert.equal((await store.get('tls/a', { offset: 5, length: 3 })).toString(), 'tls');
        assert.equal((await store.head('tls/a'))?.size, 8);
        assert.equal(await store.head('tls/none'), undefined);
      } finally {
        await store.close();
      }
    } finally {
      if (saved === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
      else process.env.NODE_TLS_REJECT_UNAUTHORIZED = saved;
      await server?.close();
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });

  it('parses URLs', () => {
    assert.deepEqual(parseS3Url('s3://bucket'), { bucket: 'bucket', prefix: '' });
    assert.deepEqual(parseS3Url('s3://bucket/a/b/'), { bucket: 'bucket', prefix: 'a/b' });
    assert.deepEqual(parseS3Url('s3://my.bucket/p?endpoint=http://127.0.0.1:9000&region=eu-west-1&path_style=true'), {
      bucket: 'my.bucket',
      prefix: 'p',
      endpoint: 'http://127.0.0.1:9000',
      region: 'eu-west-1',
      pathStyle: true,
    });
    assert.equal(parseS3Url('s3://bucket?path_style=false').pathStyle, false);
    for (const bad of [
      's3://',
      's3:///p',
      's3://ab',
      's3://Bucket',
      's3://b_k',
      's3://bucket:9000/p',
      's3://u:p@bucket',
      's3://bucket?x=1',
      's3://bucket?path_style=yes',
      's3://bucket?endpoint=nope',
      's3://bucket?endpoint=ftp://h',
      's3://bucket/a/../b',
      's3://bucket/%zz',
      's3://bucket#frag',
      's3://bucket?region=EU%20WEST',
    ]) {
      assert.throws(
        () => parseS3Url(bad),
        (e: unknown) => isCairnError(e, 'INVALID_ARGUMENT') && !!e.context.hint,
        bad,
      );
    }
  });
});
