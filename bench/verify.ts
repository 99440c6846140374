/**
 * What a benchmark reader checks of each file it reads: the byte count always, and the content
 * of a sample of byte ranges (SHA-256 of each, recorded from the dataset's local copy when it is
 * generated). A reader that gets a short, long or wrong file fails, and its group records a
 * failure instead of a figure (bench/reads.ts).
 *
 * The sample is the first 4 KiB of every MiB and the last 4 KiB of the file (what of them the
 * first range does not cover): every MiB of a big
 * file is spot-checked (0.4% of its bytes hashed), and each small file is checked at both ends
 * (1/8 of a 64 KiB file), so a misplaced, swapped or truncated read shows while the hashing costs
 * the reader well under 1% of its time (SHA-256 runs at ~1.6 GiB/s here). Hashing everything
 * would cost a reader a third of its time at warm-read speeds and distort the figures.
 *
 * Invariant: the ranges depend only on the file's size, so the generator and the reader agree.
 */
import { createHash, type Hash } from 'node:crypto';
import { promises as fsp } from 'node:fs';

/** One sampled range of a file and the SHA-256 (hex) of its bytes. */
export interface SampleCheck {
  offset: number;
  length: number;
  sha256: string;
}

/** What a reader must find in one file. */
export interface FileCheck {
  size: number;
  samples: SampleCheck[];
}

const SAMPLE = 4096;
const STRIDE = 1024 * 1024;

/** The sampled ranges of a file of `size` bytes, in offset order, not overlapping. */
export function sampleRanges(size: number): { offset: number; length: number }[] {
  const out: { offset: number; length: number }[] = [];
  for (let off = 0; off < size; off += STRIDE) out.push({ offset: off, length: Math.min(SAMPLE, size - off) });
  const last = out[out.length - 1];
  const tail = last ? Math.max(size - SAMPLE, last.offset + last.length) : size;
  if (tail < size) out.push({ offset: tail, length: size - tail });
  return out;
}

/** The check of a local file (its size and the SHA-256 of each sampled range). */
export async function fileCheck(file: string): Promise<FileCheck> {
  const fh = await fsp.open(file, 'r');
  try {
    const { size } = await fh.stat();
    const samples: SampleCheck[] = [];
    for (const r of sampleRanges(size)) {
      const buf = Buffer.alloc(r.length);
      const { bytesRead } = await fh.read(buf, 0, r.length, r.offset);
      if (bytesRead !== r.length) throw new Error(`${file}: short read at ${r.offset} while recording its check`);
      samples.push({ ...r, sha256: createHash('sha256').update(buf).digest('hex') });
    }
    return { size, samples };
  } finally {
    await fh.close();
  }
}

/**
 * Checks one file's bytes as they stream past, in order: `update` with each piece read, `end`
 * at end of file. Either throws an Error naming the file and what differs.
 *
 * @example
 *   const v = new StreamCheck('big.bin', check);
 *   for await (const piece of stream) v.update(piece);
 *   v.end();
 */
export class StreamCheck {
  private pos = 0;
  private next = 0;
  private hash: Hash | undefined;

  constructor(
    private readonly name: string,
    private readonly check: FileCheck,
  ) {}

  /** Feeds the next bytes of the file. */
  update(piece: Uint8Array): void {
    const start = this.pos;
    const end = start + piece.length;
    this.pos = end;
    if (end > this.check.size) throw new Error(`${this.name}: more than the expected ${this.check.size} bytes`);
    while (this.next < this.check.samples.length) {
      const s = this.check.samples[this.next]!;
      if (s.offset >= end) break;
      const from = Math.max(s.offset, start);
      const to = Math.min(s.offset + s.length, end);
      this.hash ??= createHash('sha256');
      this.hash.update(piece.subarray(from - start, to - start));
      if (to < s.offset + s.length) break;
      const got = this.hash.digest('hex');
      this.hash = undefined;
      this.next++;
      if (got !== s.sha256) {
        throw new Error(`${this.name}: bytes ${s.offset}..${s.offset + s.length} differ from the dataset`);
      }
    }
  }

  /** At end of file: the byte count must be the expected size (every sample is then checked). */
  end(): void {
    if (this.pos !== this.check.size) throw new Error(`${this.name}: read ${this.pos} bytes, expected ${this.check.size}`);
    const unread = this.check.samples.length - this.next;
    if (unread) throw new Error(`${this.name}: ${unread} sampled ranges never read`);
  }
}
