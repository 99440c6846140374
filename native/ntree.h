/*
 * ntree: BLAKE3's tree over a chunk, in C, for verifying part of a chunk (the outboard of
 * src/chunks/outboard.ts, ported onto the official C implementation's compression functions).
 *
 * BLAKE3 hashes 1 KiB leaves and merges their chaining values (CVs) in a left-balanced binary tree;
 * a chunk's name is the root. Every aligned block of 2^k KiB of a chunk longer than one block is a
 * subtree, so the CVs of its blocks (the outboard, 32 bytes per block), merged as BLAKE3 merges,
 * give the name: CVs checked that way against the trusted name make one block's bytes checkable
 * against its CV (which binds the block's position through the leaves' counters). A block verified
 * so is as trustworthy as the whole chunk verified against its name.
 *
 * Block sizes are powers of two from 1 KiB to 1 GiB. A chunk of at most one block has no outboard
 * (it is verified whole). Checked against the whole-chunk BLAKE3 when the addon loads (ntree_self_test).
 */
#ifndef CAIRN_NTREE_H
#define CAIRN_NTREE_H

#include <stddef.h>
#include <stdint.h>

/* The block size of the outboards the addon computes (as the packs' default, src/chunks/pack.ts). */
#define NTREE_BLOCK ((size_t)32 << 10)

/* Blocks of a chunk of `len` bytes with blocks of `block` bytes: 0 when it is a single block. */
size_t ntree_blocks(uint64_t len, size_t block);

/* 1 when `block` is a usable block size (a power of two, 1 KiB to 1 GiB). */
int ntree_block_ok(uint64_t block);

/*
 * The CV (32 bytes, into out) of block `index` of a chunk: `bytes` are exactly that block's bytes
 * (`n` = block bytes, or fewer for the last block; n >= 1).
 */
void ntree_block_cv(const uint8_t *bytes, size_t n, uint64_t index, size_t block, uint8_t out[32]);

/* The root (the BLAKE3 hash, into out) of n >= 2 block CVs (32 bytes each, in order). */
void ntree_root(const uint8_t *cvs, size_t n, uint8_t out[32]);

/*
 * The BLAKE3 hash of data[0..len) into digest and, when len > block, the CVs of its blocks into
 * cvs (ntree_blocks(len, block) × 32 bytes): one pass, the cost of the hash alone.
 */
void ntree_hash(const uint8_t *data, size_t len, size_t block, uint8_t *cvs, uint8_t digest[32]);

/* 1 when the tree functions reproduce the whole-chunk BLAKE3 (run once when the addon loads). */
int ntree_self_test(void);

#endif
