/*
 * nread: reads served on the native worker threads from verified chunk bytes, never entering
 * JavaScript (docs/CHUNKS.md, "Native cached reads"; docs/ARCHITECTURE.md, the native/JS split).
 *
 * JavaScript registers, per open file handle, the chunk layout of a committed, unchanged file
 * (offsets and BLAKE3 names) and hands over the bytes of chunks it has verified; with the host
 * chunk cache (ncache.h) the worker threads also load chunks from it themselves, verified by the
 * addon's BLAKE3 against the layout's names. A READ on a registered handle whose range is covered
 * entirely by chunks at hand is answered here with fuse_reply_iov; anything else goes to
 * JavaScript as before. Files: nread.c (layouts, serving), nchunks.c (the chunk store),
 * nread_api.c (the Node-API exports), nstore.h (their shared internals).
 */
#ifndef CAIRN_NREAD_H
#define CAIRN_NREAD_H

#define FUSE_USE_VERSION 34
#include <fuse_lowlevel.h>
#include <node_api.h>
#include <stdint.h>

typedef struct nstore nstore;

/* A store bounded by `budget` bytes of chunk data (0: disabled, never serves); at most `waiters` of
 * its READs wait at once for a native fetch's chunk (nread_expect), the other workers stay free. */
nstore *nread_new(size_t budget, int waiters);

/*
 * Answers READ(size, off) on handle fh from resident chunks: 1 when answered, 0 when the request
 * must go to JavaScript. *ahead is set to the index of the chunk where a natively served read
 * ended when the reader entered a new chunk (JavaScript then loads the chunks after it), else -1.
 */
int nread_serve(nstore *s, fuse_req_t req, uint64_t fh, uint64_t ino, size_t size, off_t off, double *ahead);

/* Forgets handle fh (release). */
void nread_release(nstore *s, uint64_t fh);

/* 1 when fh is a registered (read-only, unchanged) handle: a flush has nothing to do. */
int nread_registered(nstore *s, uint64_t fh);

/*
 * Native opens (nopen.c): an OPEN for reading only of an inode whose layout JavaScript registered
 * (nreadLayout) is answered on the worker thread: 1 with *fh set (the caller replies, keep_cache),
 * else 0 (to JavaScript). A RELEASE of such a handle: 1 when released here (the caller replies),
 * 2 when released here but JavaScript must hear of it (its layout was dropped), 0: not one.
 */
int nopen_open(nstore *s, uint64_t ino, int flags, uint32_t pid, uint64_t *fh);
int nopen_release(nstore *s, uint64_t fh);
/*
 * The layout arguments of nreadOpen and nreadLayout (nread_api.c): 1 when offs is a Float64Array(n + 1)
 * and hashes a Buffer(32 n) with n >= min_chunks, with *offs, *hashes and *n set; else 0 (nothing thrown).
 */
int nread_layout_args(napi_env env, napi_value offs, napi_value hashes, size_t min_chunks, const double **offs_out,
                      const uint8_t **hashes_out, size_t *n);
/* Adds nativeOpens, nativeReleases, nativeOpen, layoutBytes to a stats object; the nopen exports. */
void nopen_stats(napi_env env, napi_value obj, nstore *s);
void nopen_define(napi_env env, napi_value exports);

/* The mount is stopping: READs waiting for a native fetch (nread_expect) stop waiting. Any thread. */
void nread_stop(nstore *s);

/* Frees every chunk and layout (after every worker has stopped). */
void nread_free(nstore *s);

/* What the Node-API exports (nread_api.c) call, on the JavaScript thread. */
/* Registers the layout of handle fh: chunk i covers [offs[i], offs[i+1]) and is named hashes[32 i..]; -1: bad offsets. */
int nread_register(nstore *s, uint64_t fh, uint64_t ino, uint64_t size, size_t n, const double *offs, const uint8_t *hashes);
/* Forgets every layout of inode ino; returns how many. */
uint32_t nread_drop_ino(nstore *s, uint64_t ino);
/* 1 when the chunk named hash is resident. */
int nread_has(nstore *s, const uint8_t *hash);
/* Keeps a copy of verified chunk bytes; 0 when not kept (off, too big, resident). */
int nread_put(nstore *s, const uint8_t *hash, const void *bytes, size_t len);

/*
 * Offers a chunk verified against `hash` (a native fetch's: nfetch.c) to the store of every mount
 * of this process that serves native reads: each keeps a copy (nread_put), so READs of it are
 * answered without reading and hashing it again from the host cache. Any thread.
 */
void nread_offer(const uint8_t *hash, const void *bytes, size_t len);
/*
 * A native fetch will offer the chunk named hash (nread_expect, once per chunk of a run, before the
 * run is queued) or has given up on it (nread_settle: offered, damaged, or the GET failed; exactly
 * once per expect). A sequential reader's READ that needs a chunk in neither a store nor the host
 * cache waits for an expected one (at most AWAIT_MS) and is then answered from the store, instead
 * of going to JavaScript to wait there. Any thread.
 */
void nread_expect(const uint8_t *hash);
void nread_settle(const uint8_t *hash);
/*
 * Computes the outboard of resident chunk `hash` on a thread of libuv's pool (a random reader's
 * chunk JavaScript verified and put): kept in the table and written to the host cache as
 * `<hash>.ob`, so random readers load blocks. 1 when started; 0: not resident, small, or known.
 */
int nread_outboard(napi_env env, nstore *s, const uint8_t *hash);
/* served, servedBytes, servedNs, misses, puts, putBytes, evictions, bytes, chunks, files, budget, partServed, outboardBytes,
 * offered, awaited, awaitTimeouts */
#define NREAD_FIGURES 16
void nread_figures(nstore *s, uint64_t out[NREAD_FIGURES]);
/* The host cache reader of a store (ncache.h). */
struct ncache *nread_cache(nstore *s);

/* The store of a mount context (the External the mount returned); NULL when not one. Defined in cairn_fuse.c. */
nstore *cairn_nstore(napi_env env, napi_value ctx);

/* Adds the nread* exports. */
void nread_define(napi_env env, napi_value exports);

#endif
