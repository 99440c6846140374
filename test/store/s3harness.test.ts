/**
 * The in-repo S3 harness (test/helpers/s3server.ts) behaves like a real store where Cairn's tests
 * rely on it: a PUT becomes visible whole or not at all. s3rver alone writes an object in place,
 * so a GET racing an overwrite read part of the new bytes, and a client killed mid-PUT left the
 * key truncated (gc-race's actors read a checkpoint as a cut gzip stream once in about four CI runs).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { type S3Server, startS3 } from '../helpers/s3server.js';

/** Version `v` of the object: its length and every byte say which version it is. */
const version = (v: number): Buffer => Buffer.alloc(64 * 1024 + v * 4099, v % 251);

function whole(body: Buffer): boolean {
  const v = body[0] ?? 0;
  return body.length === version(v).length && body.every((b) => b === v);
}

describe('S3 harness: PUTs are atomic', () => {
  let s3: S3Server;
  let client: S3Client;
  before(async () => {
    s3 = await startS3();
    client = new S3Client({ endpoint: s3.endpoint, forcePathStyle: true, region: 'us-east-1' });
  });
  after(async () => {
    client?.destroy();
    await s3?.stop();
  });

  const get = async (Key: string): Promise<Buffer> => {
    const r = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key }));
    return Buffer.from(await r.Body!.transformToByteArray());
  };

  it('a GET racing overwrites of its key reads one whole version', async () => {
    const Key = 'race/one';
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key, Body: version(1) }));
    let writing = true;
    const writer = (async () => {
      for (let v = 2; v <= 120; v++) await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key, Body: version(v) }));
      writing = false;
    })();
    const torn: string[] = [];
    const readers = Array.from({ length: 4 }, async () => {
      while (writing) {
        const body = await get(Key);
        if (!whole(body)) torn.push(`${body.length} bytes starting ${body[0]}`);
      }
    });
    await Promise.all([writer, ...readers]);
    assert.deepEqual(torn, []);
  });

  /** A PUT of `size` bytes from a child process SIGKILLed after it sent half of them. */
  const killedPut = async (Key: string, size: number): Promise<void> => {
    const script = `
      import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
      import { PassThrough } from 'node:stream';
      const client = new S3Client({ endpoint: process.argv[1], forcePathStyle: true, region: 'us-east-1' });
      const body = new PassThrough();
      body.write(Buffer.alloc(${size >> 1}, 7));
      void client.send(new PutObjectCommand({ Bucket: process.argv[2], Key: process.argv[3], Body: body, ContentLength: ${size} }));
      setTimeout(() => console.log('half sent'), 300);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, s3.endpoint, s3.bucket, Key], {
      cwd: process.cwd(),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    await new Promise((r) => setTimeout(r, 300)); // what the server does once its client is gone
  };

  it('a PUT whose client is killed mid-body leaves the key as it was, or absent', async () => {
    const old = version(3);
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'cut/old', Body: old }));
    await killedPut('cut/old', version(7).length);
    assert.ok((await get('cut/old')).equals(old), 'the old object, whole');
    await killedPut('cut/new', version(7).length);
    await assert.rejects(get('cut/new'), (err: Error) => err.name === 'NoSuchKey');
  });
});
