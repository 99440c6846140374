/*
 * nread_api: the Node-API exports of native cached reads (nreadOpen, nreadClose, nreadDrop,
 * nreadHas, nreadPut, nreadOutboard, nreadStats; ncache.c adds nreadCache): argument checks and conversions
 * around nread.c, on the JavaScript thread.
 */
#include "nread.h"
#include "ncache.h"
#include "napi_util.h"

#include <stdlib.h>

static nstore *store_arg(napi_env env, napi_value v) {
  nstore *s = cairn_nstore(env, v);
  if (!s) napi_throw_type_error(env, NULL, "cairn_fuse: not a mount");
  return s;
}

/* A 32-byte name from a Buffer; NULL (and a thrown error) otherwise. */
static const uint8_t *hash_arg(napi_env env, napi_value v) {
  void *d = NULL;
  size_t len = 0;
  if (!nu_buf(env, v, &d, &len) || len != 32) {
    napi_throw_type_error(env, NULL, "cairn_fuse: a chunk name is a 32-byte Buffer");
    return NULL;
  }
  return d;
}

int nread_layout_args(napi_env env, napi_value offs_v, napi_value hashes_v, size_t min_chunks, const double **offs,
                      const uint8_t **hashes, size_t *n) {
  double *o = NULL;
  void *h = NULL;
  size_t noffs = 0, hlen = 0;
  if (!nu_f64(env, offs_v, &o, &noffs) || noffs < min_chunks + 1 || !nu_buf(env, hashes_v, &h, &hlen) ||
      hlen != 32 * (noffs - 1))
    return 0;
  *offs = o;
  *hashes = h;
  *n = noffs - 1;
  return 1;
}

/*
 * nreadOpen(ctx, fh, ino, size, offsets: Float64Array(n + 1), hashes: Buffer(32 n)): registers the
 * layout of the file open as fh (replacing one registered before). Chunk i covers
 * [offsets[i], offsets[i+1]) and is named hashes[32 i, 32 i + 32); offsets[n] is the size.
 */
static napi_value nread_open(napi_env env, napi_callback_info info) {
  NU_ARGS(6);
  nstore *s = store_arg(env, argv[0]);
  if (!s) return NULL;
  const double *offs = NULL;
  const uint8_t *hashes = NULL;
  size_t n = 0;
  if (!nread_layout_args(env, argv[4], argv[5], 0, &offs, &hashes, &n)) {
    napi_throw_type_error(env, NULL, "cairn_fuse: nreadOpen(ctx, fh, ino, size, Float64Array(n+1), Buffer(32n))");
    return NULL;
  }
  uint64_t fh = (uint64_t)nu_num(env, argv[1]), ino = (uint64_t)nu_num(env, argv[2]);
  if (nread_register(s, fh, ino, (uint64_t)nu_num(env, argv[3]), n, offs, hashes) < 0) {
    napi_throw_range_error(env, NULL, "cairn_fuse: nreadOpen: offsets must run from 0 to the size");
  }
  return NULL;
}

/* nreadClose(ctx, fh): forgets a handle's layout. */
static napi_value nread_close(napi_env env, napi_callback_info info) {
  NU_ARGS(2);
  nstore *s = store_arg(env, argv[0]);
  if (s) nread_release(s, (uint64_t)nu_num(env, argv[1]));
  return NULL;
}

/* nreadDrop(ctx, ino) -> count: forgets every layout of an inode (its file is about to change). */
static napi_value nread_drop(napi_env env, napi_callback_info info) {
  NU_ARGS(2);
  nstore *s = store_arg(env, argv[0]);
  if (!s) return NULL;
  napi_value out;
  napi_create_uint32(env, nread_drop_ino(s, (uint64_t)nu_num(env, argv[1])), &out);
  return out;
}

/* nreadHas(ctx, hash) -> boolean: the chunk is resident. */
static napi_value nread_has_js(napi_env env, napi_callback_info info) {
  NU_ARGS(2);
  nstore *s = store_arg(env, argv[0]);
  const uint8_t *h = s ? hash_arg(env, argv[1]) : NULL;
  return h ? nu_bool(env, nread_has(s, h)) : NULL;
}

/*
 * nreadPut(ctx, hash, bytes) -> boolean: keeps a copy of a chunk JavaScript has verified against
 * `hash` (the caller's promise: only ChunkStore's verified bytes are put). False when not kept
 * (disabled, too big for the budget, or already resident).
 */
static napi_value nread_put_js(napi_env env, napi_callback_info info) {
  NU_ARGS(3);
  nstore *s = store_arg(env, argv[0]);
  const uint8_t *h = s ? hash_arg(env, argv[1]) : NULL;
  if (!h) return NULL;
  void *d = NULL;
  size_t len = 0;
  if (!nu_buf(env, argv[2], &d, &len)) {
    napi_throw_type_error(env, NULL, "cairn_fuse: nreadPut(ctx, hash, Buffer)");
    return NULL;
  }
  return nu_bool(env, nread_put(s, h, d, len));
}

/* nreadOutboard(ctx, hash) -> boolean: computes a resident chunk's outboard off the JavaScript thread (nread_outboard). */
static napi_value nread_outboard_js(napi_env env, napi_callback_info info) {
  NU_ARGS(2);
  nstore *s = store_arg(env, argv[0]);
  const uint8_t *h = s ? hash_arg(env, argv[1]) : NULL;
  return h ? nu_bool(env, nread_outboard(env, s, h)) : NULL;
}

/*
 * nreadStats(ctx) -> { served, servedBytes, servedNs, misses, puts, putBytes, evictions, bytes,
 * chunks, files, budget, partServed (READs answered from verified blocks), outboardBytes, offered
 * (chunks kept from native fetches: nread_offer), awaited (READs that waited for one: nread_expect),
 * awaitTimeouts (of those, READs that gave up waiting after AWAIT_MS),
 * and the host cache's (ncache_stats) }
 */
static napi_value nread_stats(napi_env env, napi_callback_info info) {
  NU_ARGS(1);
  nstore *s = store_arg(env, argv[0]);
  if (!s) return NULL;
  uint64_t v[NREAD_FIGURES];
  nread_figures(s, v);
  static const char *keys[NREAD_FIGURES] = {"served", "servedBytes", "servedNs", "misses", "puts", "putBytes",
                                            "evictions", "bytes", "chunks", "files", "budget", "partServed", "outboardBytes",
                                            "offered", "awaited", "awaitTimeouts"};
  napi_value out;
  napi_create_object(env, &out);
  nu_set_figures(env, out, keys, v, NREAD_FIGURES);
  ncache_stats(env, out, nread_cache(s));
  nopen_stats(env, out, s);
  return out;
}

void nread_define(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    NU_FN("nreadOpen", nread_open),
    NU_FN("nreadClose", nread_close),
    NU_FN("nreadDrop", nread_drop),
    NU_FN("nreadHas", nread_has_js),
    NU_FN("nreadPut", nread_put_js),
    NU_FN("nreadStats", nread_stats),
    NU_FN("nreadOutboard", nread_outboard_js),
  };
  NU_DEFINE(env, exports, props);
  ncache_define(env, exports);
  nopen_define(env, exports);
}

ncache *cairn_ncache(napi_env env, napi_value ctx) { return nread_cache(cairn_nstore(env, ctx)); }
