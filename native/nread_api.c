/*
 * nread_api: the Node-API exports of native cached reads (nreadOpen, nreadClose, nreadDrop,
 * nreadHas, nreadPut, nreadOutboard, nreadStats; ncache.c adds nreadCache): argument checks and conversions
 * around nread.c, on the JavaScript thread.
 */
#include "nread.h"
#include "ncache.h"

#include <stdlib.h>

#define NARGS_OR_THROW(n)                                                      \
  size_t argc = n;                                                             \
  napi_value argv[n];                                                          \
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < n) { \
    napi_throw_type_error(env, NULL, "cairn_fuse: too few arguments");         \
    return NULL;                                                               \
  }

static double dnum(napi_env env, napi_value v) {
  double d = 0;
  napi_get_value_double(env, v, &d);
  return d;
}

static nstore *store_arg(napi_env env, napi_value v) {
  nstore *s = cairn_nstore(env, v);
  if (!s) napi_throw_type_error(env, NULL, "cairn_fuse: not a mount");
  return s;
}

/* A 32-byte name from a Buffer; NULL (and a thrown error) otherwise. */
static const uint8_t *hash_arg(napi_env env, napi_value v) {
  void *d = NULL;
  size_t len = 0;
  if (napi_get_buffer_info(env, v, &d, &len) != napi_ok || len != 32) {
    napi_throw_type_error(env, NULL, "cairn_fuse: a chunk name is a 32-byte Buffer");
    return NULL;
  }
  return d;
}

static napi_value boolean(napi_env env, int b) {
  napi_value v;
  napi_get_boolean(env, b != 0, &v);
  return v;
}

/*
 * nreadOpen(ctx, fh, ino, size, offsets: Float64Array(n + 1), hashes: Buffer(32 n)): registers the
 * layout of the file open as fh (replacing one registered before). Chunk i covers
 * [offsets[i], offsets[i+1]) and is named hashes[32 i, 32 i + 32); offsets[n] is the size.
 */
static napi_value nread_open(napi_env env, napi_callback_info info) {
  NARGS_OR_THROW(6);
  nstore *s = store_arg(env, argv[0]);
  if (!s) return NULL;
  napi_typedarray_type tt;
  size_t noffs = 0, hlen = 0;
  void *od = NULL, *hd = NULL;
  if (napi_get_typedarray_info(env, argv[4], &tt, &noffs, &od, NULL, NULL) != napi_ok || tt != napi_float64_array || noffs < 1 ||
      napi_get_buffer_info(env, argv[5], &hd, &hlen) != napi_ok || hlen != 32 * (noffs - 1)) {
    napi_throw_type_error(env, NULL, "cairn_fuse: nreadOpen(ctx, fh, ino, size, Float64Array(n+1), Buffer(32n))");
    return NULL;
  }
  if (nread_register(s, (uint64_t)dnum(env, argv[1]), (uint64_t)dnum(env, argv[2]), (uint64_t)dnum(env, argv[3]), noffs - 1, od, hd) < 0) {
    napi_throw_range_error(env, NULL, "cairn_fuse: nreadOpen: offsets must run from 0 to the size");
  }
  return NULL;
}

/* nreadClose(ctx, fh): forgets a handle's layout. */
static napi_value nread_close(napi_env env, napi_callback_info info) {
  NARGS_OR_THROW(2);
  nstore *s = store_arg(env, argv[0]);
  if (s) nread_release(s, (uint64_t)dnum(env, argv[1]));
  return NULL;
}

/* nreadDrop(ctx, ino) -> count: forgets every layout of an inode (its file is about to change). */
static napi_value nread_drop(napi_env env, napi_callback_info info) {
  NARGS_OR_THROW(2);
  nstore *s = store_arg(env, argv[0]);
  if (!s) return NULL;
  napi_value out;
  napi_create_uint32(env, nread_drop_ino(s, (uint64_t)dnum(env, argv[1])), &out);
  return out;
}

/* nreadHas(ctx, hash) -> boolean: the chunk is resident. */
static napi_value nread_has_js(napi_env env, napi_callback_info info) {
  NARGS_OR_THROW(2);
  nstore *s = store_arg(env, argv[0]);
  const uint8_t *h = s ? hash_arg(env, argv[1]) : NULL;
  return h ? boolean(env, nread_has(s, h)) : NULL;
}

/*
 * nreadPut(ctx, hash, bytes) -> boolean: keeps a copy of a chunk JavaScript has verified against
 * `hash` (the caller's promise: only ChunkStore's verified bytes are put). False when not kept
 * (disabled, too big for the budget, or already resident).
 */
static napi_value nread_put_js(napi_env env, napi_callback_info info) {
  NARGS_OR_THROW(3);
  nstore *s = store_arg(env, argv[0]);
  const uint8_t *h = s ? hash_arg(env, argv[1]) : NULL;
  if (!h) return NULL;
  void *d = NULL;
  size_t len = 0;
  if (napi_get_buffer_info(env, argv[2], &d, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "cairn_fuse: nreadPut(ctx, hash, Buffer)");
    return NULL;
  }
  return boolean(env, nread_put(s, h, d, len));
}

/* nreadOutboard(ctx, hash) -> boolean: computes a resident chunk's outboard off the JavaScript thread (nread_outboard). */
static napi_value nread_outboard_js(napi_env env, napi_callback_info info) {
  NARGS_OR_THROW(2);
  nstore *s = store_arg(env, argv[0]);
  const uint8_t *h = s ? hash_arg(env, argv[1]) : NULL;
  return h ? boolean(env, nread_outboard(env, s, h)) : NULL;
}

/*
 * nreadStats(ctx) -> { served, servedBytes, servedNs, misses, puts, putBytes, evictions, bytes,
 * chunks, files, budget, partServed (READs answered from verified blocks), outboardBytes, and the
 * host cache's (ncache_stats) }
 */
static napi_value nread_stats(napi_env env, napi_callback_info info) {
  NARGS_OR_THROW(1);
  nstore *s = store_arg(env, argv[0]);
  if (!s) return NULL;
  uint64_t v[NREAD_FIGURES];
  nread_figures(s, v);
  static const char *keys[NREAD_FIGURES] = {"served", "servedBytes", "servedNs", "misses", "puts", "putBytes",
                                            "evictions", "bytes", "chunks", "files", "budget", "partServed", "outboardBytes"};
  napi_value out;
  napi_create_object(env, &out);
  for (int i = 0; i < NREAD_FIGURES; i++) {
    napi_value x;
    napi_create_double(env, (double)v[i], &x);
    napi_set_named_property(env, out, keys[i], x);
  }
  ncache_stats(env, out, nread_cache(s));
  nopen_stats(env, out, s);
  return out;
}

void nread_define(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"nreadOpen", NULL, nread_open, NULL, NULL, NULL, napi_enumerable, NULL},
    {"nreadClose", NULL, nread_close, NULL, NULL, NULL, napi_enumerable, NULL},
    {"nreadDrop", NULL, nread_drop, NULL, NULL, NULL, napi_enumerable, NULL},
    {"nreadHas", NULL, nread_has_js, NULL, NULL, NULL, napi_enumerable, NULL},
    {"nreadPut", NULL, nread_put_js, NULL, NULL, NULL, napi_enumerable, NULL},
    {"nreadStats", NULL, nread_stats, NULL, NULL, NULL, napi_enumerable, NULL},
    {"nreadOutboard", NULL, nread_outboard_js, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  ncache_define(env, exports);
  nopen_define(env, exports);
}

ncache *cairn_ncache(napi_env env, napi_value ctx) { return nread_cache(cairn_nstore(env, ctx)); }
