/**
 * The lean reads' addressing (src/store/s3get.ts): the base URL and signing region taken from the
 * SDK's own HeadBucket, for a virtual-hosted AWS bucket and a path-style endpoint, without a
 * network (the client's handler answers locally), and keys escaped as the SDK escapes them.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { HeadBucketCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { LeanReads, baseOf, keyPath } from '../../src/store/s3get.js';

/** A client whose requests never leave the process: each is recorded and answered 200. */
function offlineClient(config: S3ClientConfig): { client: S3Client; sent: { hostname: string; path: string }[] } {
  const sent: { hostname: string; path: string }[] = [];
  const client = new S3Client({
    ...config,
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
    requestHandler: {
      handle: async (req: { hostname: string; path: string }) => {
        sent.push({ hostname: req.hostname, path: req.path });
        return { response: { statusCode: 200, headers: {}, body: Readable.from([]) } };
      },
    } as never,
  });
  return { client, sent };
}

const limits = { idleMs: 1000, connectMs: 1000 };

describe('lean S3 reads: where they go', () => {
  it('a virtual-hosted AWS bucket: the host names the bucket, keys hang off the root', async () => {
    const { client, sent } = offlineClient({ region: 'eu-west-1' });
    const lean = LeanReads.capture(client, limits)!;
    assert.equal(lean.target, undefined, 'nothing captured before the HeadBucket');
    await client.send(new HeadBucketCommand({ Bucket: 'my-bucket' }));
    assert.equal(sent[0].hostname, 'my-bucket.s3.eu-west-1.amazonaws.com');
    const base = lean.target!;
    assert.deepEqual(
      { ...base, port: undefined },
      {
        protocol: 'https:',
        hostname: 'my-bucket.s3.eu-west-1.amazonaws.com',
        port: undefined,
        host: base.host,
        path: '',
        region: 'eu-west-1',
      },
    );
    assert.match(base.host, /^my-bucket\.s3\.eu-west-1\.amazonaws\.com(:443)?$/);
    assert.equal(keyPath(base, "p/a b+(1)!*'~\u00fc%.bin"), '/p/a%20b%2B%281%29%21%2A%27~%C3%BC%25.bin');
    lean.close();
    client.destroy();
  });

  it('a path-style endpoint: the bucket is the first path segment; the region is the signing one', async () => {
    const { client } = offlineClient({ region: 'us-east-1', endpoint: 'http://127.0.0.1:9000', forcePathStyle: true });
    const lean = LeanReads.capture(client, limits)!;
    await client.send(new HeadBucketCommand({ Bucket: 'data' }));
    const base = lean.target!;
    assert.equal(base.protocol, 'http:');
    assert.equal(base.hostname, '127.0.0.1');
    assert.equal(base.port, 9000);
    assert.equal(base.host, '127.0.0.1:9000');
    assert.equal(base.region, 'us-east-1');
    assert.equal(keyPath(base, 'volumes/v1/packs/abc'), '/data/volumes/v1/packs/abc');
    lean.close();
    client.destroy();
  });

  it('no base from a request that is not a SigV4 s3 request over http(s), and none with CAIRN_S3_LEAN=0', () => {
    const auth = (scope: string) => ({
      authorization: `AWS4-HMAC-SHA256 Credential=AKID/20261201/us-east-1/${scope}/aws4_request, SignedHeaders=host, Signature=x`,
    });
    assert.ok(baseOf({ protocol: 'https:', hostname: 'h', path: '/', headers: auth('s3') }));
    assert.equal(baseOf({ protocol: 'https:', hostname: 'h', path: '/', headers: auth('s3express') }), undefined);
    assert.equal(baseOf({ protocol: 'ftp:', hostname: 'h', path: '/', headers: auth('s3') }), undefined);
    assert.equal(baseOf({ protocol: 'https:', hostname: 'h', path: '/', headers: {} }), undefined);
    const saved = process.env.CAIRN_S3_LEAN;
    process.env.CAIRN_S3_LEAN = '0';
    try {
      const { client } = offlineClient({ region: 'us-east-1' });
      assert.equal(LeanReads.capture(client, limits), undefined);
      client.destroy();
    } finally {
      if (saved === undefined) delete process.env.CAIRN_S3_LEAN;
      else process.env.CAIRN_S3_LEAN = saved;
    }
  });
});
