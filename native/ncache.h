/*
 * ncache: the host chunk cache read on the native worker threads, each chunk verified with the
 * official BLAKE3 C implementation before a byte of it is served (docs/CHUNKS.md, "Native cached
 * reads").
 *
 * The host cache (src/chunks/cache.ts) keeps chunk <hash> in <dir>/<hash[0:2]>/<hash>, exactly its
 * bytes; entries may vanish or be replaced (renamed over) at any time. ncache_load reads an entry
 * whole into memory of its own, hashes it and compares the digest with the name it was asked for:
 * only a match is returned. A missing or unreadable entry is a miss; one of the wrong size or
 * digest is damage: it is removed (when the name still points at the file that was read) and
 * counted. Either way the caller falls back to JavaScript.
 */
#ifndef CAIRN_NCACHE_H
#define CAIRN_NCACHE_H

#include <node_api.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ncache ncache;

enum { NCACHE_OK = 0, NCACHE_MISS = 1, NCACHE_BAD = 2 };

/* A reader of no cache yet (off until ncache_set_dir). */
ncache *ncache_new(void);

/* 1 when the cache may be read: a directory was given and the C BLAKE3 passed its self-test. */
int ncache_on(const ncache *c);

/*
 * Reads and verifies the entry of chunk `hash` (`len` bytes) into buf (len bytes, the caller's):
 * NCACHE_OK when buf then holds exactly the chunk's bytes, else NCACHE_MISS or NCACHE_BAD (buf's
 * contents are then garbage: never use them). With `cvs` (ntree_blocks(len, NTREE_BLOCK) × 32
 * bytes, when len > NTREE_BLOCK), the hash goes through the tree and the chunk's outboard comes out
 * of it: verified with it on OK (for random readers; a few % dearer than the plain hash, which is
 * used without `cvs`). Thread-safe; blocks on file I/O (worker threads only).
 */
int ncache_load(ncache *c, const uint8_t *hash, size_t len, char *buf, uint8_t *cvs);

/*
 * Reads the outboard side entry `<hash>.ob` (cache.ts, partial.ts: u32le block size, then the
 * block CVs) of a chunk of `len` bytes and verifies it against the name `hash` (ntree_root): OK
 * with *block and cvs (at most `max` CVs) set; MISS when absent; BAD (removed) when it does not
 * give the name.
 */
int ncache_outboard(ncache *c, const uint8_t *hash, uint64_t len, size_t *block, uint8_t *cvs, size_t max);

/* Stores a verified outboard as `<hash>.ob` (temp file, rename; best effort). */
void ncache_put_outboard(ncache *c, const uint8_t *hash, size_t block, const uint8_t *cvs, size_t n);

/*
 * Reads blocks b0..b1 of the entry of chunk `hash` (`len` bytes, blocks of `block` bytes) into
 * buf and checks each against its CV in `cvs` (an outboard verified against the name): OK when
 * buf then holds exactly chunk bytes [b0 × block, min((b1 + 1) × block, len)); MISS; BAD (the
 * entry is removed, as in ncache_load).
 */
int ncache_load_part(ncache *c, const uint8_t *hash, uint64_t len, size_t block, const uint8_t *cvs, size_t b0, size_t b1, char *buf);

/* 1 when an entry for `hash` exists now (no read, no verification: for read-ahead decisions). */
int ncache_has(ncache *c, const uint8_t *hash);

/* Sets the counters of `c` on a stats object (cacheLoads, cacheLoadBytes, cacheLoadNs, cacheMisses, cacheCorrupt, cacheTouches,
 * cacheHashed: bytes hashed, cachePartLoads, cacheOutboardLoads, cacheOutboardPuts, cacheOn). */
void ncache_stats(napi_env env, napi_value obj, const ncache *c);

/* The cache reader of a mount context; NULL when not one. Defined in nread.c. */
ncache *cairn_ncache(napi_env env, napi_value ctx);

/* 1 once the C BLAKE3 reproduced the official test vectors (ncache_define ran). */
int ncache_blake3_ok(void);

/* The BLAKE3-256 of data[0..len) into out (all zeros when built without BLAKE3: check ncache_blake3_ok). */
void ncache_digest(const void *data, size_t len, uint8_t out[32]);

/*
 * Writes `head` then `data` as the entry `<dir>/<hash[0:2]>/<hash><suffix>` of a host cache (a temp
 * file `.tmp-…` in that directory, renamed into place; the directories made when missing): 0, or
 * -1 (nothing left behind). Thread-safe; blocks on file I/O.
 */
int ncache_write(const char *dir, const uint8_t *hash, const char *suffix, const void *head, size_t hlen, const void *data,
                 size_t len);

/* Checks the C BLAKE3 against the official vectors (once, at addon load); adds the exports. */
void ncache_define(napi_env env, napi_value exports);

#endif
