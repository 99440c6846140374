/*
 * ntree: BLAKE3's tree over a chunk (see ntree.h), on the official C implementation's internal
 * compression functions (blake3_impl.h of librust-blake3-dev: blake3_hash_many hashes whole 1 KiB
 * leaves with SIMD, blake3_compress_in_place does partial leaves and parents). The merge is
 * src/chunks/outboard.ts's `merge`: a left-balanced tree whose left subtrees hold a power of two.
 */
#include "ntree.h"

#include <stdlib.h>
#include <string.h>

#define LEAF 1024u
/* Leaves hashed per blake3_hash_many call. */
#define BATCH 32u

size_t ntree_blocks(uint64_t len, size_t block) { return len > block ? (size_t)((len + block - 1) / block) : 0; }

int ntree_block_ok(uint64_t block) { return block >= LEAF && block <= (1ull << 30) && (block & (block - 1)) == 0; }

#ifndef CAIRN_NO_BLAKE3
#include "blake3.h"
#include "blake3_impl.h"

typedef struct {
  uint8_t stack[64][32];
  int sp;
  uint64_t count; /* CVs added */
} merger;

static void parent(const uint8_t l[32], const uint8_t r[32], int root, uint8_t out[32]) {
  uint8_t block[64];
  uint32_t cv[8];
  memcpy(block, l, 32);
  memcpy(block + 32, r, 32);
  memcpy(cv, IV, sizeof cv);
  blake3_compress_in_place(cv, block, 64, 0, PARENT | (root ? ROOT : 0));
  store_cv_words(out, cv);
}

/* Adds a CV that is not the last one. */
static void merge_add(merger *m, const uint8_t cv[32]) {
  uint8_t cur[32];
  memcpy(cur, cv, 32);
  for (uint64_t t = ++m->count; (t & 1) == 0; t >>= 1) parent(m->stack[--m->sp], cur, 0, cur);
  memcpy(m->stack[m->sp++], cur, 32);
}

/* Adds the last CV and merges everything (the last merge with ROOT when `root`). */
static void merge_end(merger *m, const uint8_t cv[32], int root, uint8_t out[32]) {
  uint8_t cur[32];
  memcpy(cur, cv, 32);
  while (m->sp > 0) {
    m->sp--;
    parent(m->stack[m->sp], cur, root && m->sp == 0, cur);
  }
  memcpy(out, cur, 32);
}

/* CV of a leaf of n (1..1023) bytes with chunk counter `counter` (never the root here). */
static void short_leaf(const uint8_t *p, size_t n, uint64_t counter, uint8_t out[32]) {
  uint32_t cv[8];
  memcpy(cv, IV, sizeof cv);
  size_t blocks = (n + 63) / 64;
  for (size_t b = 0; b < blocks; b++) {
    uint8_t buf[64] = {0};
    size_t take = n - 64 * b < 64 ? n - 64 * b : 64;
    memcpy(buf, p + 64 * b, take);
    uint8_t flags = (uint8_t)((b == 0 ? CHUNK_START : 0) | (b == blocks - 1 ? CHUNK_END : 0));
    blake3_compress_in_place(cv, buf, (uint8_t)take, counter, flags);
  }
  store_cv_words(out, cv);
}

/*
 * A full block of 2^k leaves (k >= 1, at most BATCH): the leaves' CVs with SIMD, then each level of
 * parents with SIMD too (as blake3.c's compress_parents_parallel): the cost of the plain hash.
 */
static void full_block(const uint8_t *bytes, size_t leaves, uint64_t first, uint8_t out[32]) {
  uint8_t cvs[BATCH * 32], next[BATCH * 16];
  const uint8_t *in[BATCH] = {0};
  for (size_t j = 0; j < leaves; j++) in[j] = bytes + j * LEAF;
  blake3_hash_many(in, leaves, LEAF / 64, IV, first, true, 0, CHUNK_START, CHUNK_END, cvs);
  for (size_t n = leaves; n > 1; n /= 2) {
    for (size_t j = 0; j < n / 2; j++) in[j] = cvs + 64 * j;
    blake3_hash_many(in, n / 2, 1, IV, 0, false, PARENT, 0, 0, next);
    memcpy(cvs, next, 32 * (n / 2));
  }
  memcpy(out, cvs, 32);
}

void ntree_block_cv(const uint8_t *bytes, size_t n, uint64_t index, size_t block, uint8_t out[32]) {
  uint64_t first = index * (block / LEAF);
  size_t full = n / LEAF, leaves = (n + LEAF - 1) / LEAF;
  if (n == block && leaves >= 2 && leaves <= BATCH) return full_block(bytes, leaves, first, out);
  merger m = {.sp = 0, .count = 0};
  uint8_t cvs[BATCH * 32];
  const uint8_t *in[BATCH];
  for (size_t i = 0; i < full; i += BATCH) {
    size_t k = full - i < BATCH ? full - i : BATCH;
    for (size_t j = 0; j < k; j++) in[j] = bytes + (i + j) * LEAF;
    blake3_hash_many(in, k, LEAF / 64, IV, first + i, true, 0, CHUNK_START, CHUNK_END, cvs);
    for (size_t j = 0; j < k; j++) {
      if (i + j == leaves - 1) {
        if (leaves == 1) memcpy(out, cvs, 32);
        else merge_end(&m, cvs + 32 * j, 0, out);
        return;
      }
      merge_add(&m, cvs + 32 * j);
    }
  }
  uint8_t last[32];
  short_leaf(bytes + full * LEAF, n - full * LEAF, first + full, last);
  if (leaves == 1) memcpy(out, last, 32);
  else merge_end(&m, last, 0, out);
}

void ntree_root(const uint8_t *cvs, size_t n, uint8_t out[32]) {
  merger m = {.sp = 0, .count = 0};
  for (size_t i = 0; i + 1 < n; i++) merge_add(&m, cvs + 32 * i);
  merge_end(&m, cvs + 32 * (n - 1), 1, out);
}

void ntree_hash(const uint8_t *data, size_t len, size_t block, uint8_t *cvs, uint8_t digest[32]) {
  size_t n = ntree_blocks(len, block);
  if (n == 0) {
    blake3_hasher h;
    blake3_hasher_init(&h);
    blake3_hasher_update(&h, data, len);
    blake3_hasher_finalize(&h, digest, 32);
    return;
  }
  for (size_t j = 0; j < n; j++) {
    size_t at = j * block, take = len - at < block ? len - at : block;
    ntree_block_cv(data + at, take, j, block, cvs + 32 * j);
  }
  ntree_root(cvs, n, digest);
}

int ntree_self_test(void) {
  /* Lengths around leaf and block edges; block sizes 1, 4 and 32 KiB: the tree's root must be the hash. */
  static const size_t lens[] = {1025, 2048, 3000, 4097, 8193, 31744, 65536, 65537, 102400, 300001};
  static const size_t blocks[] = {1024, 4096, NTREE_BLOCK};
  size_t max = 300001;
  uint8_t *in = malloc(max), *cvs = malloc(32 * (max / 1024 + 2));
  if (!in || !cvs) {
    free(in);
    free(cvs);
    return 0;
  }
  for (size_t i = 0; i < max; i++) in[i] = (uint8_t)(i % 251);
  int ok = 1;
  for (size_t a = 0; a < sizeof lens / sizeof lens[0]; a++) {
    uint8_t want[32];
    blake3_hasher h;
    blake3_hasher_init(&h);
    blake3_hasher_update(&h, in, lens[a]);
    blake3_hasher_finalize(&h, want, 32);
    for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++) {
      uint8_t got[32];
      ntree_hash(in, lens[a], blocks[b], cvs, got);
      if (memcmp(got, want, 32) != 0) ok = 0;
    }
  }
  free(in);
  free(cvs);
  return ok;
}

#else

void ntree_block_cv(const uint8_t *bytes, size_t n, uint64_t index, size_t block, uint8_t out[32]) {
  (void)bytes, (void)n, (void)index, (void)block;
  memset(out, 0, 32);
}
void ntree_root(const uint8_t *cvs, size_t n, uint8_t out[32]) {
  (void)cvs, (void)n;
  memset(out, 0, 32);
}
void ntree_hash(const uint8_t *data, size_t len, size_t block, uint8_t *cvs, uint8_t digest[32]) {
  (void)data, (void)len, (void)block, (void)cvs;
  memset(digest, 0, 32);
}
int ntree_self_test(void) { return 0; }

#endif
