/**
 * The native BLAKE3 (npm `@napi-rs/blake-hash`: the official Rust `blake3` crate, with runtime
 * SSE4.1/AVX2/AVX-512 dispatch, as a prebuilt N-API addon shipped inside the registry package
 * `@napi-rs/blake-hash-linux-x64-gnu` and its siblings; no install script, nothing downloaded).
 *
 * `loadNativeBlake3()` returns the one-shot hash function, or undefined when the addon is missing
 * (unsupported platform, optional dependency skipped, `--no-optional`), fails to load, or does not
 * reproduce the BLAKE3 test vectors. It never throws and never logs: `hash.ts` then falls back to
 * the WebAssembly `blake3` package.
 */
import { createRequire } from 'node:module';

/** A one-shot BLAKE3-256: the 32-byte digest of exactly the view's bytes. */
export type Blake3Fn = (data: Uint8Array) => Buffer;

interface NapiBlakeHash {
  blake3(input: Uint8Array): Buffer;
}

/** Official test vectors: input bytes `i % 251` of the given length -> BLAKE3-256 hex. */
const VECTORS: ReadonlyArray<readonly [number, string]> = [
  [0, 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262'],
  [1, '2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213'],
  [1024, '42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7'],
  [1025, 'd00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444'],
  [8193, 'bab6c09cb8ce8cf459261398d2e7aef35700bf488116ceb94a36d0f5f1b7bc3b'],
];

function selfTest(fn: Blake3Fn): boolean {
  for (const [n, hex] of VECTORS) {
    const input = new Uint8Array(n + 1);
    for (let i = 0; i < n; i++) input[i + 1] = i % 251;
    // Hash a view at an odd offset: the addon must honour byteOffset/byteLength.
    const out = fn(input.subarray(1));
    if (!Buffer.isBuffer(out) || out.toString('hex') !== hex) return false;
  }
  return true;
}

/** The native one-shot BLAKE3, or undefined when it is unavailable or wrong (see module doc). */
export function loadNativeBlake3(): Blake3Fn | undefined {
  try {
    const require = createRequire(import.meta.url);
    // The platform package of @napi-rs/blake-hash (its wrapper's lockfile entries for other
    // platforms are not all published, which breaks `npm ci`); `$CAIRN_BLAKE3_NATIVE` overrides.
    const mod = require(process.env.CAIRN_BLAKE3_NATIVE || `@napi-rs/blake-hash-${process.platform}-${process.arch}-gnu`) as NapiBlakeHash;
    if (typeof mod?.blake3 !== 'function') return undefined;
    const fn: Blake3Fn = (data) => mod.blake3(data);
    return selfTest(fn) ? fn : undefined;
  } catch {
    return undefined;
  }
}
