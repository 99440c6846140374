/**
 * The bytes->entry encoder shared by commit and batch upload (src/session/content.ts), on a real
 * ChunkStore over the in-memory store: small files are inlined, middle ones read whole (ahead),
 * big ones streamed; a read made ahead is used only while its source keeps its key.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { ChunkStore } from '../../src/chunks/index.js';
import { MemoryStore } from '../../src/store/index.js';
import { type ContentSource, INLINE_MAX, READ_AHEAD, WHOLE_READ_MAX, contentEncoder } from '../../src/session/index.js';

async function* pieces(b: Buffer): AsyncGenerator<Uint8Array> {
  for (let o = 0; o < b.length; o += 64 * 1024) yield b.subarray(o, o + 64 * 1024);
}

describe('content encoder', () => {
  it('inlines small files, chunks middle ones read whole, streams big ones; the bytes read back', async () => {
    const chunks = new ChunkStore({ store: new MemoryStore(), packPrefix: 'p/', cache: null, memoryBytes: 0 });
    const files = [INLINE_MAX, INLINE_MAX + 1, WHOLE_READ_MAX, WHOLE_READ_MAX + 1, 0].map((n) => crypto.randomBytes(n));
    const whole: number[] = [];
    const streamed: number[] = [];
    const source = (i: number): ContentSource => ({
      key: String(i),
      readWhole: async () => {
        whole.push(i);
        return files[i]!.length <= WHOLE_READ_MAX ? files[i] : undefined;
      },
      streamed: () => {
        streamed.push(i);
        return pieces(files[i]!);
      },
    });
    const writer = chunks.writer();
    const encode = contentEncoder(writer, files.length, source);
    const out = [];
    for (let i = 0; i < files.length; i++) out.push(await encode(i, source(i)));
    await writer.finish();
    assert.deepEqual(
      out.map((c) => c.size),
      files.map((f) => f.length),
    );
    assert.ok(out[0]!.inline?.equals(files[0]!) && !out[0]!.chunks, 'INLINE_MAX bytes are inlined');
    assert.ok(out[4]!.inline?.length === 0, 'an empty file is inlined');
    for (const i of [1, 2, 3]) {
      assert.ok(!out[i]!.inline && out[i]!.chunks!.length > 0, `file ${i} is chunked`);
      assert.ok((await chunks.read(out[i]!.chunks!, 0, files[i]!.length)).equals(files[i]!), `file ${i} reads back`);
    }
    assert.deepEqual(streamed, [3], 'only the file past WHOLE_READ_MAX streams');
    assert.deepEqual([...new Set(whole)].sort(), [0, 1, 2, 3, 4], 'every file was read whole (ahead) once');
  });

  it('reads ahead READ_AHEAD files, and again when a source changed its key meanwhile', async () => {
    const chunks = new ChunkStore({ store: new MemoryStore(), packPrefix: 'p/', cache: null, memoryBytes: 0 });
    const n = READ_AHEAD + 4;
    const reads: string[] = [];
    const keyOf = Array.from({ length: n }, (_, i) => `k${i}`);
    const source = (i: number): ContentSource => {
      const key = keyOf[i]!;
      return {
        key,
        readWhole: async () => {
          reads.push(key);
          return Buffer.from(key);
        },
        streamed: () => {
          throw new Error('small files never stream');
        },
      };
    };
    const writer = chunks.writer();
    const encode = contentEncoder(writer, n, source);
    assert.equal((await encode(0, source(0))).inline?.toString(), 'k0');
    assert.deepEqual(reads, keyOf.slice(0, READ_AHEAD), 'the first encode read READ_AHEAD files ahead');
    keyOf[1] = 'k1-restaged';
    assert.equal((await encode(1, source(1))).inline?.toString(), 'k1-restaged', 'a changed source is read again');
    assert.equal(reads.filter((k) => k === 'k1' || k === 'k1-restaged').length, 2);
    for (let i = 2; i < n; i++) assert.equal((await encode(i, source(i))).inline?.toString(), `k${i}`);
    assert.equal(reads.length, n + 1, 'every other file was read exactly once');
    await writer.finish();
  });
});
