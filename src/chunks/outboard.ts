/**
 * BLAKE3's tree, for verifying part of a chunk (an outboard, as Bao calls it).
 *
 * BLAKE3 hashes 1 KiB input chunks and merges their chaining values (CVs) in a left-balanced binary
 * tree; the chunk name (`hash.ts`) is the root. For a block size of 2^k KiB, every aligned block of a
 * chunk longer than one block is a subtree of that tree (the last block may be short). So the CVs of
 * a chunk's blocks, merged as BLAKE3 merges them, give its name: a list of block CVs read from an
 * untrusted place is checked against the trusted chunk name (`verifyBlockCvs`), and then one block's
 * bytes against its CV (`blockCv`, which also binds the block's position through the chunk
 * counter). A part of a chunk verified this way is as trustworthy as the whole chunk verified
 * against its name; nothing else (no pack checksum) is trusted.
 *
 * The native BLAKE3 (`@napi-rs/blake-hash`) and the WASM fallback expose only the root hash, so the
 * compression function is implemented here in plain JavaScript (checked against the native hash
 * by the tests, for many lengths and block sizes): ~120-280 MiB/s on this machine, against the
 * native root hash's ~3 GiB/s. It runs on the write path (the CVs of new chunks, `pack.ts`) and on
 * partial reads (the blocks they fetch, `partial.ts`).
 */

/** Bytes of one block CV in an outboard. */
export const CV_BYTES = 32;
/** BLAKE3's input chunk (the tree's leaf), bytes. */
const LEAF = 1024;
const IV = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
const CHUNK_START = 1;
const CHUNK_END = 2;
const PARENT = 4;
const ROOT = 8;

/**
 * The compression function: `cv` (8 words at cvOff), a 64-byte block `m` (16 words at mOff), the
 * counter, block length and flags; writes the first 8 output words (a CV) to `out` at outOff.
 */
function compress(
  cv: Uint32Array,
  cvOff: number,
  m: Uint32Array,
  mOff: number,
  counter: number,
  blockLen: number,
  flags: number,
  out: Uint32Array,
  outOff: number,
): void {
  let v0 = cv[cvOff],
    v1 = cv[cvOff + 1],
    v2 = cv[cvOff + 2],
    v3 = cv[cvOff + 3];
  let v4 = cv[cvOff + 4],
    v5 = cv[cvOff + 5],
    v6 = cv[cvOff + 6],
    v7 = cv[cvOff + 7];
  let v8 = IV[0],
    v9 = IV[1],
    v10 = IV[2],
    v11 = IV[3];
  let v12 = counter >>> 0,
    v13 = Math.floor(counter / 0x100000000) >>> 0,
    v14 = blockLen,
    v15 = flags;
  let m0 = m[mOff],
    m1 = m[mOff + 1],
    m2 = m[mOff + 2],
    m3 = m[mOff + 3],
    m4 = m[mOff + 4],
    m5 = m[mOff + 5];
  let m6 = m[mOff + 6],
    m7 = m[mOff + 7],
    m8 = m[mOff + 8],
    m9 = m[mOff + 9],
    m10 = m[mOff + 10],
    m11 = m[mOff + 11];
  let m12 = m[mOff + 12],
    m13 = m[mOff + 13],
    m14 = m[mOff + 14],
    m15 = m[mOff + 15];
  for (let r = 0; ; r++) {
    v0 = (v0 + v4 + m0) | 0;
    v12 ^= v0;
    v12 = (v12 >>> 16) | (v12 << 16);
    v8 = (v8 + v12) | 0;
    v4 ^= v8;
    v4 = (v4 >>> 12) | (v4 << 20);
    v0 = (v0 + v4 + m1) | 0;
    v12 ^= v0;
    v12 = (v12 >>> 8) | (v12 << 24);
    v8 = (v8 + v12) | 0;
    v4 ^= v8;
    v4 = (v4 >>> 7) | (v4 << 25);
    v1 = (v1 + v5 + m2) | 0;
    v13 ^= v1;
    v13 = (v13 >>> 16) | (v13 << 16);
    v9 = (v9 + v13) | 0;
    v5 ^= v9;
    v5 = (v5 >>> 12) | (v5 << 20);
    v1 = (v1 + v5 + m3) | 0;
    v13 ^= v1;
    v13 = (v13 >>> 8) | (v13 << 24);
    v9 = (v9 + v13) | 0;
    v5 ^= v9;
    v5 = (v5 >>> 7) | (v5 << 25);
    v2 = (v2 + v6 + m4) | 0;
    v14 ^= v2;
    v14 = (v14 >>> 16) | (v14 << 16);
    v10 = (v10 + v14) | 0;
    v6 ^= v10;
    v6 = (v6 >>> 12) | (v6 << 20);
    v2 = (v2 + v6 + m5) | 0;
    v14 ^= v2;
    v14 = (v14 >>> 8) | (v14 << 24);
    v10 = (v10 + v14) | 0;
    v6 ^= v10;
    v6 = (v6 >>> 7) | (v6 << 25);
    v3 = (v3 + v7 + m6) | 0;
    v15 ^= v3;
    v15 = (v15 >>> 16) | (v15 << 16);
    v11 = (v11 + v15) | 0;
    v7 ^= v11;
    v7 = (v7 >>> 12) | (v7 << 20);
    v3 = (v3 + v7 + m7) | 0;
    v15 ^= v3;
    v15 = (v15 >>> 8) | (v15 << 24);
    v11 = (v11 + v15) | 0;
    v7 ^= v11;
    v7 = (v7 >>> 7) | (v7 << 25);
    v0 = (v0 + v5 + m8) | 0;
    v15 ^= v0;
    v15 = (v15 >>> 16) | (v15 << 16);
    v10 = (v10 + v15) | 0;
    v5 ^= v10;
    v5 = (v5 >>> 12) | (v5 << 20);
    v0 = (v0 + v5 + m9) | 0;
    v15 ^= v0;
    v15 = (v15 >>> 8) | (v15 << 24);
    v10 = (v10 + v15) | 0;
    v5 ^= v10;
    v5 = (v5 >>> 7) | (v5 << 25);
    v1 = (v1 + v6 + m10) | 0;
    v12 ^= v1;
    v12 = (v12 >>> 16) | (v12 << 16);
    v11 = (v11 + v12) | 0;
    v6 ^= v11;
    v6 = (v6 >>> 12) | (v6 << 20);
    v1 = (v1 + v6 + m11) | 0;
    v12 ^= v1;
    v12 = (v12 >>> 8) | (v12 << 24);
    v11 = (v11 + v12) | 0;
    v6 ^= v11;
    v6 = (v6 >>> 7) | (v6 << 25);
    v2 = (v2 + v7 + m12) | 0;
    v13 ^= v2;
    v13 = (v13 >>> 16) | (v13 << 16);
    v8 = (v8 + v13) | 0;
    v7 ^= v8;
    v7 = (v7 >>> 12) | (v7 << 20);
    v2 = (v2 + v7 + m13) | 0;
    v13 ^= v2;
    v13 = (v13 >>> 8) | (v13 << 24);
    v8 = (v8 + v13) | 0;
    v7 ^= v8;
    v7 = (v7 >>> 7) | (v7 << 25);
    v3 = (v3 + v4 + m14) | 0;
    v14 ^= v3;
    v14 = (v14 >>> 16) | (v14 << 16);
    v9 = (v9 + v14) | 0;
    v4 ^= v9;
    v4 = (v4 >>> 12) | (v4 << 20);
    v3 = (v3 + v4 + m15) | 0;
    v14 ^= v3;
    v14 = (v14 >>> 8) | (v14 << 24);
    v9 = (v9 + v14) | 0;
    v4 ^= v9;
    v4 = (v4 >>> 7) | (v4 << 25);
    if (r === 6) break;
    const t0 = m2,
      t1 = m6,
      t2 = m3,
      t3 = m10,
      t4 = m7,
      t5 = m0,
      t6 = m4,
      t7 = m13,
      t8 = m1,
      t9 = m11,
      t10 = m12,
      t11 = m5,
      t12 = m9,
      t13 = m14,
      t14 = m15,
      t15 = m8;
    m0 = t0;
    m1 = t1;
    m2 = t2;
    m3 = t3;
    m4 = t4;
    m5 = t5;
    m6 = t6;
    m7 = t7;
    m8 = t8;
    m9 = t9;
    m10 = t10;
    m11 = t11;
    m12 = t12;
    m13 = t13;
    m14 = t14;
    m15 = t15;
  }
  out[outOff] = v0 ^ v8;
  out[outOff + 1] = v1 ^ v9;
  out[outOff + 2] = v2 ^ v10;
  out[outOff + 3] = v3 ^ v11;
  out[outOff + 4] = v4 ^ v12;
  out[outOff + 5] = v5 ^ v13;
  out[outOff + 6] = v6 ^ v14;
  out[outOff + 7] = v7 ^ v15;
}

const scratch = new Uint32Array(LEAF / 4);
const scratch8 = new Uint8Array(scratch.buffer);
const leafCv = new Uint32Array(8);
const parentBlock = new Uint32Array(16);

/** CV of one BLAKE3 chunk (1..1024 bytes of `data` at `at`) with chunk counter `counter`, into out[outOff..]. */
function leaf(data: Uint8Array, at: number, n: number, counter: number, root: boolean, out: Uint32Array, outOff: number): void {
  scratch8.set(data.subarray(at, at + n));
  if (n < LEAF) scratch8.fill(0, n, (n + 63) & ~63);
  leafCv.set(IV);
  const blocks = Math.max(1, Math.ceil(n / 64));
  for (let b = 0; b < blocks; b++) {
    const last = b === blocks - 1;
    const flags = (b === 0 ? CHUNK_START : 0) | (last ? CHUNK_END | (root ? ROOT : 0) : 0);
    if (last) compress(leafCv, 0, scratch, b * 16, counter, n - b * 64, flags, out, outOff);
    else compress(leafCv, 0, scratch, b * 16, counter, 64, flags, leafCv, 0);
  }
}

/** out[outOff..] = the parent CV of the CVs at l[lOff..] and r[rOff..] (`out` may alias `r`). */
function parent(l: Uint32Array, lOff: number, r: Uint32Array, rOff: number, root: boolean, out: Uint32Array, outOff: number): void {
  for (let i = 0; i < 8; i++) {
    parentBlock[i] = l[lOff + i];
    parentBlock[8 + i] = r[rOff + i];
  }
  compress(IV, 0, parentBlock, 0, 0, 64, PARENT | (root ? ROOT : 0), out, outOff);
}

/**
 * Merges `n` ≥ 2 CVs (8 words each, in order) as BLAKE3 merges subtrees: a left-balanced tree whose
 * left subtrees hold a power of two of them. With `root`, the result is the BLAKE3 hash.
 */
function merge(cvs: Uint32Array, n: number, root: boolean): Uint32Array {
  const stack = new Uint32Array(8 * 54);
  let sp = 0;
  const cur = new Uint32Array(8);
  for (let i = 0; i < n - 1; i++) {
    cur.set(cvs.subarray(i * 8, i * 8 + 8));
    for (let t = i + 1; (t & 1) === 0; t >>>= 1) parent(stack, --sp * 8, cur, 0, false, cur, 0);
    stack.set(cur, sp++ * 8);
  }
  cur.set(cvs.subarray((n - 1) * 8, n * 8));
  while (sp > 0) {
    sp--;
    parent(stack, sp * 8, cur, 0, root && sp === 0, cur, 0);
  }
  return cur;
}

/** Whether `blockBytes` is a usable block size: a power of two from 1 KiB to 1 GiB. */
export function isBlockSize(blockBytes: number): boolean {
  return Number.isInteger(blockBytes) && blockBytes >= LEAF && blockBytes <= 1 << 30 && (blockBytes & (blockBytes - 1)) === 0;
}

/**
 * How many block CVs the outboard of a chunk of `length` bytes holds: one per block, or none when
 * the chunk is a single block (it is read whole).
 *
 * @example blockCount(1048576 + 5, 65536) === 17; blockCount(65536, 65536) === 0
 */
export function blockCount(length: number, blockBytes: number): number {
  return length > blockBytes ? Math.ceil(length / blockBytes) : 0;
}

/**
 * The BLAKE3 CV of block `index` of a chunk: `bytes` are exactly that block's bytes (blockBytes,
 * or fewer for the last block). Its position is part of the result (the chunk counter), so a block
 * moved elsewhere does not match. Returns 32 bytes.
 *
 * @example Buffer.from(blockCv(block, 3, 65536)).equals(cvs.subarray(96, 128))
 */
export function blockCv(bytes: Uint8Array, index: number, blockBytes: number): Uint8Array {
  const leaves = Math.max(1, Math.ceil(bytes.length / LEAF));
  const first = index * (blockBytes / LEAF);
  const cvs = new Uint32Array(leaves * 8);
  for (let i = 0; i < leaves; i++) leaf(bytes, i * LEAF, Math.min(LEAF, bytes.length - i * LEAF), first + i, false, cvs, i * 8);
  const cv = leaves === 1 ? cvs : merge(cvs, leaves, false);
  return new Uint8Array(cv.buffer, cv.byteOffset, CV_BYTES);
}

/**
 * The outboard of a chunk: the CVs of its blocks back to back (`blockCount × 32` bytes; empty for a
 * chunk of one block).
 *
 * @example const ob = chunkOutboard(chunk, 65536); // 32 bytes per 64 KiB block
 */
export function chunkOutboard(chunk: Uint8Array, blockBytes: number): Uint8Array {
  const n = blockCount(chunk.length, blockBytes);
  const out = new Uint8Array(n * CV_BYTES);
  for (let i = 0; i < n; i++)
    out.set(blockCv(chunk.subarray(i * blockBytes, Math.min(chunk.length, (i + 1) * blockBytes)), i, blockBytes), i * CV_BYTES);
  return out;
}

/**
 * Whether `outboard` (from an untrusted place) is the block CVs of the chunk named `hash` of
 * `length` bytes: merged as BLAKE3 merges them, they must give that name. Only then may single blocks be
 * checked against them.
 *
 * @example if (!verifyOutboard(ob, ref.hash, ref.length, 65536)) fetchWhole(ref);
 */
export function verifyOutboard(outboard: Uint8Array, hash: string, length: number, blockBytes: number): boolean {
  if (!isBlockSize(blockBytes)) return false;
  const n = blockCount(length, blockBytes);
  if (n < 2 || outboard.length !== n * CV_BYTES) return false;
  const words = new Uint32Array(n * 8);
  new Uint8Array(words.buffer).set(outboard);
  const root = merge(words, n, true);
  return Buffer.from(root.buffer, root.byteOffset, CV_BYTES).toString('hex') === hash;
}
