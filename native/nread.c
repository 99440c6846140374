/*
 * nread: native cached reads (see nread.h).
 *
 * Integrity: the store only ever holds bytes JavaScript verified against their BLAKE3 name
 * (ChunkStore.readChunk) and copied in with nreadPut; nothing here reads the host chunk cache or
 * any other file, so a damaged cache file can never reach a reply through this path. Keys are the
 * 32-byte names; a layout maps a handle's file offsets to names, so a reply is the bytes of exactly
 * the chunks the file's committed entry names.
 *
 * Invalidation: a layout belongs to one open handle of a committed file nobody in this mount is
 * writing; release drops it (here, before JavaScript hears of the release), and JavaScript drops
 * an inode's layouts (nreadDrop) before it runs anything that changes the file (an open for
 * writing, write, truncate, fallocate) and for every inode a reload changed. Chunks are named by
 * their content, so a resident chunk is never stale; only layouts are.
 *
 * Memory: chunk bytes are bounded by the budget (LRU; a chunk over a quarter of the budget is not
 * kept). A chunk being sent keeps a reference, so eviction never frees bytes under a reply.
 * One mutex guards everything; it is never held while a reply is written.
 */
#define _GNU_SOURCE
#include "nread.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#define NBUCKETS (1u << 16)
#define FBUCKETS 1024u
/* Pieces per natively served read: more (tiny chunks) go to JavaScript. */
#define MAX_PIECES 32

typedef struct nchunk {
  uint8_t hash[32];
  char *data;
  size_t len;
  int refs;     /* 1 while in the store, +1 per reply being written */
  int resident; /* in the table and the LRU */
  struct nchunk *hnext, *prev, *next;
} nchunk;

typedef struct nfile {
  uint64_t fh, ino, size;
  size_t n;
  uint64_t *offs; /* n + 1: chunk i covers [offs[i], offs[i+1]) */
  uint8_t *hashes;
  long ahead; /* last chunk index reported to JavaScript */
  struct nfile *next;
} nfile;

struct nstore {
  pthread_mutex_t lock;
  size_t budget, bytes;
  nchunk **buckets;
  nchunk *head, *tail; /* head: most recent */
  nfile *files[FBUCKETS];
  size_t nfiles, nchunks;
  int closed; /* unmounted: nothing more is kept */
  /* figures */
  uint64_t served, served_bytes, served_ns, misses, puts, put_bytes, evictions;
};

nstore *nread_new(size_t budget) {
  nstore *s = calloc(1, sizeof *s);
  pthread_mutex_init(&s->lock, NULL);
  s->budget = budget;
  s->buckets = calloc(NBUCKETS, sizeof(nchunk *));
  return s;
}

static uint32_t bucket_of(const uint8_t *hash) {
  uint32_t b;
  memcpy(&b, hash, sizeof b);
  return b & (NBUCKETS - 1);
}

static nchunk *chunk_find(nstore *s, const uint8_t *hash) {
  for (nchunk *c = s->buckets[bucket_of(hash)]; c; c = c->hnext)
    if (memcmp(c->hash, hash, 32) == 0) return c;
  return NULL;
}

static void lru_unlink(nstore *s, nchunk *c) {
  if (c->prev) c->prev->next = c->next; else s->head = c->next;
  if (c->next) c->next->prev = c->prev; else s->tail = c->prev;
  c->prev = c->next = NULL;
}

static void lru_front(nstore *s, nchunk *c) {
  c->prev = NULL;
  c->next = s->head;
  if (s->head) s->head->prev = c;
  s->head = c;
  if (!s->tail) s->tail = c;
}

static void chunk_unref(nchunk *c) {
  if (--c->refs == 0) {
    free(c->data);
    free(c);
  }
}

/* Takes c out of the table and the LRU (its bytes live on while a reply holds them). */
static void chunk_evict(nstore *s, nchunk *c) {
  nchunk **p = &s->buckets[bucket_of(c->hash)];
  while (*p && *p != c) p = &(*p)->hnext;
  if (*p) *p = c->hnext;
  lru_unlink(s, c);
  c->resident = 0;
  s->bytes -= c->len;
  s->nchunks--;
  s->evictions++;
  chunk_unref(c);
}

static nfile *file_find(nstore *s, uint64_t fh) {
  for (nfile *f = s->files[fh % FBUCKETS]; f; f = f->next)
    if (f->fh == fh) return f;
  return NULL;
}

static void file_free(nfile *f) {
  free(f->offs);
  free(f->hashes);
  free(f);
}

static void file_remove(nstore *s, uint64_t fh) {
  nfile **p = &s->files[fh % FBUCKETS];
  while (*p && (*p)->fh != fh) p = &(*p)->next;
  if (!*p) return;
  nfile *f = *p;
  *p = f->next;
  s->nfiles--;
  file_free(f);
}

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

int nread_serve(nstore *s, fuse_req_t req, uint64_t fh, uint64_t ino, size_t size, off_t off, double *ahead) {
  *ahead = -1;
  if (!s || s->budget == 0 || s->closed || off < 0) return 0;
  uint64_t t0 = now_ns();
  nchunk *pieces[MAX_PIECES];
  struct iovec iov[MAX_PIECES];
  int n = 0;
  pthread_mutex_lock(&s->lock);
  nfile *f = file_find(s, fh);
  if (!f || f->ino != ino) {
    pthread_mutex_unlock(&s->lock);
    return 0;
  }
  uint64_t start = (uint64_t)off, end = start + size;
  if (end > f->size) end = f->size;
  if (start < end) {
    /* The chunk holding `start`: the last i with offs[i] <= start. */
    size_t lo = 0, hi = f->n;
    while (hi - lo > 1) {
      size_t mid = (lo + hi) / 2;
      if (f->offs[mid] <= start) lo = mid; else hi = mid;
    }
    size_t i = lo;
    uint64_t pos = start;
    for (; pos < end; i++) {
      nchunk *c = i < f->n && n < MAX_PIECES ? chunk_find(s, f->hashes + 32 * i) : NULL;
      if (!c || c->len != f->offs[i + 1] - f->offs[i]) {
        for (int k = 0; k < n; k++) chunk_unref(pieces[k]);
        s->misses++;
        pthread_mutex_unlock(&s->lock);
        return 0;
      }
      uint64_t from = pos - f->offs[i];
      uint64_t to = (end < f->offs[i + 1] ? end : f->offs[i + 1]) - f->offs[i];
      c->refs++;
      lru_unlink(s, c);
      lru_front(s, c);
      pieces[n] = c;
      iov[n].iov_base = c->data + from;
      iov[n].iov_len = (size_t)(to - from);
      n++;
      pos = f->offs[i] + to;
    }
    long last = (long)i - 1;
    if (last > f->ahead) {
      f->ahead = last;
      *ahead = (double)last;
    }
  }
  pthread_mutex_unlock(&s->lock);
  size_t sent = 0;
  for (int k = 0; k < n; k++) sent += iov[k].iov_len;
  if (n == 0) fuse_reply_buf(req, NULL, 0);
  else fuse_reply_iov(req, iov, n);
  pthread_mutex_lock(&s->lock);
  for (int k = 0; k < n; k++) chunk_unref(pieces[k]);
  s->served++;
  s->served_bytes += sent;
  s->served_ns += now_ns() - t0;
  pthread_mutex_unlock(&s->lock);
  return 1;
}

void nread_release(nstore *s, uint64_t fh) {
  if (!s) return;
  pthread_mutex_lock(&s->lock);
  file_remove(s, fh);
  pthread_mutex_unlock(&s->lock);
}

int nread_registered(nstore *s, uint64_t fh) {
  if (!s) return 0;
  pthread_mutex_lock(&s->lock);
  int yes = file_find(s, fh) != NULL;
  pthread_mutex_unlock(&s->lock);
  return yes;
}

void nread_free(nstore *s) {
  if (!s) return;
  pthread_mutex_lock(&s->lock);
  while (s->head) chunk_evict(s, s->head);
  for (unsigned b = 0; b < FBUCKETS; b++) {
    while (s->files[b]) {
      nfile *f = s->files[b];
      s->files[b] = f->next;
      file_free(f);
    }
  }
  s->nfiles = 0;
  s->closed = 1;
  pthread_mutex_unlock(&s->lock);
}

/* ---------------------------------------------------------------------------------------------- */
/* Node-API: nreadOpen, nreadPut, nreadHas, nreadDrop, nreadClose, nreadStats                      */

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
 * [offsets[i], offsets[i+1]); offsets[n] is the size.
 */
static napi_value nread_open(napi_env env, napi_callback_info info) {
  NARGS_OR_THROW(6);
  nstore *s = store_arg(env, argv[0]);
  if (!s) return NULL;
  napi_typedarray_type tt;
  size_t noffs = 0;
  void *od = NULL;
  void *hd = NULL;
  size_t hlen = 0;
  if (napi_get_typedarray_info(env, argv[4], &tt, &noffs, &od, NULL, NULL) != napi_ok || tt != napi_float64_array || noffs < 1 ||
      napi_get_buffer_info(env, argv[5], &hd, &hlen) != napi_ok || hlen != 32 * (noffs - 1)) {
    napi_throw_type_error(env, NULL, "cairn_fuse: nreadOpen(ctx, fh, ino, size, Float64Array(n+1), Buffer(32n))");
    return NULL;
  }
  nfile *f = calloc(1, sizeof *f);
  f->fh = (uint64_t)dnum(env, argv[1]);
  f->ino = (uint64_t)dnum(env, argv[2]);
  f->size = (uint64_t)dnum(env, argv[3]);
  f->n = noffs - 1;
  f->offs = malloc(noffs * sizeof(uint64_t));
  for (size_t i = 0; i < noffs; i++) f->offs[i] = (uint64_t)((double *)od)[i];
  f->hashes = malloc(hlen ? hlen : 1);
  memcpy(f->hashes, hd, hlen);
  f->ahead = -1;
  if (s->closed) {
    file_free(f);
    return NULL;
  }
  if (f->offs[f->n] != f->size || f->offs[0] != 0) {
    file_free(f);
    napi_throw_range_error(env, NULL, "cairn_fuse: nreadOpen: offsets must run from 0 to the size");
    return NULL;
  }
  pthread_mutex_lock(&s->lock);
  file_remove(s, f->fh);
  f->next = s->files[f->fh % FBUCKETS];
  s->files[f->fh % FBUCKETS] = f;
  s->nfiles++;
  pthread_mutex_unlock(&s->lock);
  return NULL;
}

/* nreadClose(ctx, fh): forgets a handle's layout. */
static napi_value nread_close(napi_env env, napi_callback_info info) {
  NARGS_OR_THROW(2);
  nstore *s = store_arg(env, argv[0]);
  if (!s) return NULL;
  nread_release(s, (uint64_t)dnum(env, argv[1]));
  return NULL;
}

/* nreadDrop(ctx, ino) -> count: forgets every layout of an inode (its file is about to change). */
static napi_value nread_drop(napi_env env, napi_callback_info info) {
  NARGS_OR_THROW(2);
  nstore *s = store_arg(env, argv[0]);
  if (!s) return NULL;
  uint64_t ino = (uint64_t)dnum(env, argv[1]);
  uint32_t dropped = 0;
  pthread_mutex_lock(&s->lock);
  for (unsigned b = 0; b < FBUCKETS; b++) {
    nfile **p = &s->files[b];
    while (*p) {
      if ((*p)->ino == ino) {
        nfile *f = *p;
        *p = f->next;
        file_free(f);
        s->nfiles--;
        dropped++;
      } else {
        p = &(*p)->next;
      }
    }
  }
  pthread_mutex_unlock(&s->lock);
  napi_value out;
  napi_create_uint32(env, dropped, &out);
  return out;
}

/* nreadHas(ctx, hash) -> boolean */
static napi_value nread_has(napi_env env, napi_callback_info info) {
  NARGS_OR_THROW(2);
  nstore *s = store_arg(env, argv[0]);
  if (!s) return NULL;
  const uint8_t *h = hash_arg(env, argv[1]);
  if (!h) return NULL;
  pthread_mutex_lock(&s->lock);
  int yes = chunk_find(s, h) != NULL;
  pthread_mutex_unlock(&s->lock);
  return boolean(env, yes);
}

/*
 * nreadPut(ctx, hash, bytes) -> boolean: keeps a copy of a chunk JavaScript has verified against
 * `hash` (the caller's promise: only ChunkStore's verified bytes are put). False when not kept
 * (disabled, too big for the budget, or already resident).
 */
static napi_value nread_put(napi_env env, napi_callback_info info) {
  NARGS_OR_THROW(3);
  nstore *s = store_arg(env, argv[0]);
  if (!s) return NULL;
  const uint8_t *h = hash_arg(env, argv[1]);
  if (!h) return NULL;
  void *d = NULL;
  size_t len = 0;
  if (napi_get_buffer_info(env, argv[2], &d, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "cairn_fuse: nreadPut(ctx, hash, Buffer)");
    return NULL;
  }
  if (s->budget == 0 || s->closed || len > s->budget / 4) return boolean(env, 0);
  pthread_mutex_lock(&s->lock);
  int have = chunk_find(s, h) != NULL;
  pthread_mutex_unlock(&s->lock);
  if (have) return boolean(env, 0);
  nchunk *c = calloc(1, sizeof *c);
  memcpy(c->hash, h, 32);
  c->data = malloc(len ? len : 1);
  memcpy(c->data, d, len); /* outside the lock */
  c->len = len;
  c->refs = 1;
  pthread_mutex_lock(&s->lock);
  if (s->closed || chunk_find(s, h)) {
    pthread_mutex_unlock(&s->lock);
    free(c->data);
    free(c);
    return boolean(env, 0);
  }
  uint32_t b = bucket_of(h);
  c->hnext = s->buckets[b];
  s->buckets[b] = c;
  c->resident = 1;
  lru_front(s, c);
  s->bytes += len;
  s->nchunks++;
  s->puts++;
  s->put_bytes += len;
  while (s->bytes > s->budget && s->tail && s->tail != c) chunk_evict(s, s->tail);
  pthread_mutex_unlock(&s->lock);
  return boolean(env, 1);
}

static void set_num(napi_env env, napi_value obj, const char *k, double v) {
  napi_value x;
  napi_create_double(env, v, &x);
  napi_set_named_property(env, obj, k, x);
}

/* nreadStats(ctx) -> { served, servedBytes, servedNs, misses, puts, putBytes, evictions, bytes, chunks, files, budget } */
static napi_value nread_stats(napi_env env, napi_callback_info info) {
  NARGS_OR_THROW(1);
  nstore *s = store_arg(env, argv[0]);
  if (!s) return NULL;
  pthread_mutex_lock(&s->lock);
  uint64_t v[11] = {s->served, s->served_bytes, s->served_ns, s->misses,  s->puts, s->put_bytes,
                    s->evictions, s->bytes, s->nchunks, s->nfiles, s->budget};
  pthread_mutex_unlock(&s->lock);
  static const char *keys[11] = {"served", "servedBytes", "servedNs", "misses", "puts", "putBytes",
                                 "evictions", "bytes", "chunks", "files", "budget"};
  napi_value out;
  napi_create_object(env, &out);
  for (int i = 0; i < 11; i++) set_num(env, out, keys[i], (double)v[i]);
  return out;
}

void nread_define(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"nreadOpen", NULL, nread_open, NULL, NULL, NULL, napi_enumerable, NULL},
    {"nreadClose", NULL, nread_close, NULL, NULL, NULL, napi_enumerable, NULL},
    {"nreadDrop", NULL, nread_drop, NULL, NULL, NULL, napi_enumerable, NULL},
    {"nreadHas", NULL, nread_has, NULL, NULL, NULL, napi_enumerable, NULL},
    {"nreadPut", NULL, nread_put, NULL, NULL, NULL, napi_enumerable, NULL},
    {"nreadStats", NULL, nread_stats, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
