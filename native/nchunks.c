/*
 * nchunks: the store of verified chunk bytes behind native cached reads (see nread.h, nstore.h):
 * a hash table keyed by the 32-byte BLAKE3 name, an LRU bounded by the budget in bytes (a chunk
 * over a quarter of it is not kept), reference counts (a chunk being sent is never freed under its
 * reply), and a small pool of the buffers of evicted chunks for the next loads (fresh memory costs
 * a page fault per 4 KiB), and the verified outboards of chunks (direct-mapped by name, bounded by
 * OB_SLOTS; for partial loads of random reads, nread.c). Everything here runs with the store's lock held, except where a
 * function takes it itself (nread_has, nread_put).
 */
#include "nstore.h"
#include "ntree.h"

#include <stdlib.h>
#include <string.h>

static uint32_t bucket_of(const uint8_t *hash) {
  uint32_t b;
  memcpy(&b, hash, sizeof b);
  return b & (NBUCKETS - 1);
}

nchunk *nc_find(nstore *s, const uint8_t *hash) {
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

char *nc_take(nstore *s, size_t len, size_t *cap) {
  int best = -1;
  for (int k = 0; k < s->npool; k++) {
    size_t c = s->pool[k].cap;
    if (c >= len && c <= len + len / 2 + POOL_STEP && (best < 0 || c < s->pool[best].cap)) best = k;
  }
  if (best < 0) return NULL;
  char *d = s->pool[best].data;
  *cap = s->pool[best].cap;
  s->pool_bytes -= *cap;
  s->pool[best] = s->pool[--s->npool];
  return d;
}

size_t nc_size(size_t len) { return len == 0 ? POOL_STEP : (len + POOL_STEP - 1) / POOL_STEP * POOL_STEP; }

void nc_give(nstore *s, char *data, size_t cap) {
  if (!s->closed && s->npool < POOL_MAX && s->pool_bytes + cap <= POOL_BYTES) {
    s->pool[s->npool].data = data;
    s->pool[s->npool++].cap = cap;
    s->pool_bytes += cap;
  } else {
    free(data);
  }
}

void nc_unref(nstore *s, nchunk *c) {
  if (--c->refs == 0) {
    nc_give(s, c->data, c->cap);
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
  nc_unref(s, c);
}

nchunk *nc_new(const uint8_t *hash, char *data, size_t len, size_t cap) {
  nchunk *c = calloc(1, sizeof *c);
  memcpy(c->hash, hash, 32);
  c->data = data;
  c->len = len;
  c->cap = cap;
  c->refs = 1;
  return c;
}

int nc_insert(nstore *s, nchunk *c) {
  if (s->closed || c->len > s->budget / 4 || nc_find(s, c->hash)) return 0;
  uint32_t b = bucket_of(c->hash);
  c->hnext = s->buckets[b];
  s->buckets[b] = c;
  c->resident = 1;
  lru_front(s, c);
  s->bytes += c->len;
  s->nchunks++;
  s->puts++;
  s->put_bytes += c->len;
  while (s->bytes > s->budget && s->tail && s->tail != c) chunk_evict(s, s->tail);
  return 1;
}

int nread_has(nstore *s, const uint8_t *hash) {
  pthread_mutex_lock(&s->lock);
  int yes = nc_find(s, hash) != NULL;
  pthread_mutex_unlock(&s->lock);
  return yes;
}

int nread_put(nstore *s, const uint8_t *hash, const void *bytes, size_t len) {
  if (s->budget == 0 || s->closed || len > s->budget / 4 || nread_has(s, hash)) return 0;
  size_t cap = 0;
  pthread_mutex_lock(&s->lock);
  char *data = nc_take(s, len, &cap);
  pthread_mutex_unlock(&s->lock);
  if (!data) data = malloc(cap = nc_size(len));
  memcpy(data, bytes, len); /* outside the lock */
  nchunk *c = nc_new(hash, data, len, cap);
  pthread_mutex_lock(&s->lock);
  int kept = nc_insert(s, c);
  if (!kept) nc_unref(s, c);
  pthread_mutex_unlock(&s->lock);
  return kept;
}

/* The outboard of a resident chunk, computed on a thread of libuv's pool (nread_outboard). */
typedef struct obwork {
  nstore *s;
  nchunk *c;
  napi_async_work work;
} obwork;

static void ob_execute(napi_env env, void *data) {
  (void)env;
  obwork *w = data;
  size_t n = ntree_blocks(w->c->len, NTREE_BLOCK);
  uint8_t *cvs = malloc(32 * n), d[32];
  if (!cvs) return;
  ntree_hash((const uint8_t *)w->c->data, w->c->len, NTREE_BLOCK, cvs, d);
  if (memcmp(d, w->c->hash, 32) == 0) { /* as it must (the bytes were verified): else nothing is kept */
    ncache_put_outboard(w->s->cache, w->c->hash, NTREE_BLOCK, cvs, n);
    pthread_mutex_lock(&w->s->lock);
    nob_put(w->s, w->c->hash, NTREE_BLOCK, cvs, n);
    pthread_mutex_unlock(&w->s->lock);
  }
  free(cvs);
}

static void ob_complete(napi_env env, napi_status status, void *data) {
  (void)status;
  obwork *w = data;
  pthread_mutex_lock(&w->s->lock);
  nc_unref(w->s, w->c);
  pthread_mutex_unlock(&w->s->lock);
  napi_delete_async_work(env, w->work);
  free(w);
}

int nread_outboard(napi_env env, nstore *s, const uint8_t *hash) {
  if (!ncache_on(s->cache)) return 0;
  pthread_mutex_lock(&s->lock);
  nchunk *c = s->closed ? NULL : nc_find(s, hash);
  size_t n = c ? ntree_blocks(c->len, NTREE_BLOCK) : 0;
  nob *o = s->obs ? &s->obs[bucket_of(hash) % OB_SLOTS] : NULL;
  int known = o && o->n && memcmp(o->hash, hash, 32) == 0;
  obwork *w = n >= 2 && n <= OB_MAX_BLOCKS && !known ? calloc(1, sizeof *w) : NULL;
  if (w) c->refs++;
  pthread_mutex_unlock(&s->lock);
  if (!w) return 0;
  w->s = s;
  w->c = c;
  napi_value name;
  napi_create_string_utf8(env, "cairn_outboard", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, ob_execute, ob_complete, w, &w->work) != napi_ok || napi_queue_async_work(env, w->work) != napi_ok) {
    pthread_mutex_lock(&s->lock);
    nc_unref(s, c);
    pthread_mutex_unlock(&s->lock);
    free(w);
    return 0;
  }
  return 1;
}

void nc_touch(nstore *s, nchunk *c) {
  if (!c->resident) return;
  lru_unlink(s, c);
  lru_front(s, c);
}

size_t nob_get(nstore *s, const uint8_t *hash, uint64_t len, uint8_t *cvs, size_t max) {
  if (!s->obs) return 0;
  nob *o = &s->obs[bucket_of(hash) % OB_SLOTS];
  if (o->n == 0 || memcmp(o->hash, hash, 32) != 0 || o->n > max || o->n != ntree_blocks(len, o->block)) return 0;
  memcpy(cvs, o->cvs, 32 * (size_t)o->n);
  return o->block;
}

void nob_put(nstore *s, const uint8_t *hash, size_t block, const uint8_t *cvs, size_t n) {
  if (!s->obs || s->closed || n < 2 || n > OB_MAX_BLOCKS) return;
  nob *o = &s->obs[bucket_of(hash) % OB_SLOTS];
  if (o->n != 0 && memcmp(o->hash, hash, 32) == 0) return;
  uint8_t *copy = realloc(o->n ? o->cvs : NULL, 32 * n);
  if (!copy) return;
  s->ob_bytes += 32 * n - 32 * (size_t)o->n;
  memcpy(o->hash, hash, 32);
  memcpy(copy, cvs, 32 * n);
  o->cvs = copy;
  o->block = (uint32_t)block;
  o->n = (uint32_t)n;
}

void nc_free_all(nstore *s) {
  while (s->head) chunk_evict(s, s->head);
  for (unsigned k = 0; s->obs && k < OB_SLOTS; k++) {
    free(s->obs[k].cvs);
    s->obs[k].cvs = NULL;
    s->obs[k].n = 0;
  }
  s->ob_bytes = 0;
  while (s->npool > 0) free(s->pool[--s->npool].data);
  s->pool_bytes = 0;
}
