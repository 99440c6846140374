/**
 * s3rver's filesystem store made atomic the way real S3 stores are, for the harness in
 * ./s3server.ts. s3rver writes an object in place (a PUT cut short leaves the key truncated, an
 * overwrite is visible half-done) and answers a PUT before its write stream has flushed; and a GET
 * stats the path and then opens it, so a PUT in between pairs one object's length with another's
 * bytes. Here a PUT writes a temporary file (never listed: its name does not end in the object
 * suffix), renamed over the key only once every byte is on disk; a body that ends early is
 * discarded. A GET opens the file first and takes length and bytes from that one inode.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

type Metadata = Record<string, unknown>;
interface Range {
  start: number;
  end: number;
}
interface S3rverObject {
  bucket: string;
  key: string;
  content: Readable | Buffer | null;
  metadata: Metadata;
  range?: Range;
}
/** The part of s3rver's FilesystemStore (lib/stores/filesystem.js) replaced or used here. */
interface FilesystemStore {
  getResourcePath(bucket: string, key: string, resource: string): string;
  getMetadata(bucket: string, key: string): Promise<Metadata>;
  putMetadata(bucket: string, key: string, metadata: Metadata, md5: string): Promise<void>;
  putObject(object: S3rverObject): Promise<{ size: number; md5: string }>;
  getObject(bucket: string, key: string, options?: { start?: number; end?: number }): Promise<S3rverObject | null>;
}

const S3Object = createRequire(import.meta.url)('s3rver/lib/models/object') as new (
  bucket: string,
  key: string,
  content: Readable | null,
  metadata: Metadata,
) => S3rverObject;

const isMissing = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'ENOENT';

/**
 * Replaces `store`'s putObject and getObject (an s3rver instance's `store`) with atomic ones.
 * @example makeAtomic((s3rver as unknown as { store: unknown }).store);
 */
export function makeAtomic(target: unknown): void {
  const store = target as FilesystemStore;

  store.putObject = async (object) => {
    const objectPath = store.getResourcePath(object.bucket, object.key, 'object');
    await fs.mkdir(path.dirname(objectPath), { recursive: true });
    const temp = `${objectPath}.${randomBytes(6).toString('hex')}.partial`;
    const md5 = createHash('md5');
    let size = 0;
    const count = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        md5.update(chunk);
        size += chunk.length;
        done(null, chunk);
      },
    });
    const body = Buffer.isBuffer(object.content) ? Readable.from([object.content]) : object.content!;
    try {
      // Resolves once the file is closed, every byte written; rejects when the body ends early.
      await pipeline(body, count, createWriteStream(temp));
      await fs.rename(temp, objectPath);
    } catch (err) {
      await fs.rm(temp, { force: true });
      throw err;
    }
    const digest = md5.digest('hex');
    await store.putMetadata(object.bucket, object.key, object.metadata, digest);
    return { size, md5: digest };
  };

  // s3rver's getObject, with the length and the bytes taken from the one file it opened.
  store.getObject = async (bucket, key, options) => {
    let file: fs.FileHandle;
    try {
      file = await fs.open(store.getResourcePath(bucket, key, 'object'), 'r');
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
    let streaming = false;
    try {
      const st = await file.stat();
      const metadata = { ...(await store.getMetadata(bucket, key)), 'content-length': st.size, 'last-modified': st.mtime.toUTCString() };
      const lastByte = Math.max(0, st.size - 1);
      const range = { start: options?.start || 0, end: Math.min(options?.end || Infinity, lastByte) };
      const ranged = options !== undefined && (options.start !== undefined || Boolean(options.end));
      const satisfiable = range.start >= 0 && range.end >= range.start;
      const object = new S3Object(bucket, key, null, metadata);
      if (ranged) object.range = range;
      if (satisfiable) object.content = file.createReadStream({ ...range }); // closes the file at its end
      streaming = satisfiable;
      return object;
    } catch (err) {
      if (isMissing(err)) return null; // deleted since it was opened: its metadata went with it
      throw err;
    } finally {
      if (!streaming) await file.close();
    }
  };
}
