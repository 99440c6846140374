/*
 * nopen: OPEN and RELEASE of read-only handles of committed, unchanged files, answered on the
 * worker threads without entering JavaScript (docs/CHUNKS.md, "Native opens").
 *
 * JavaScript registers, by inode, the layout of a committed, unchanged file (offsets and BLAKE3
 * names, as nreadOpen does per handle; small files only) when it may be opened natively
 * (nreadLayout). An OPEN for reading only (no write access, truncation, creation, O_DIRECT) of such
 * an inode is answered here: a handle number of its own range (NATIVE_FH and up: JavaScript's
 * are 32-bit), the layout copied to the handle (nread.c serves its READs), keep_cache as
 * JavaScript answers, and a record of the handle and its opener's pid. Its RELEASE is answered
 * here too. Any other OPEN goes to JavaScript as before.
 *
 * The one open-file table: JavaScript's HandleTable reads the records here synchronously
 * (nreadOpened), so reload and unmount refuse VOLUME_BUSY naming these files and their openers as
 * for any other open file, and `settle` waits for their releases in flight.
 *
 * Invalidation: an inode's layout is dropped with its handles' (nreadDrop: before anything changes
 * the file, and for every inode a reload changed; nreadForget: all of them); a handle opened
 * natively whose layout was dropped stays open (and counted), its READs go to JavaScript, and its
 * RELEASE reaches JavaScript too (JavaScript drops the layout of a file it hides: unlinked or
 * renamed over while open, removed at its last close).
 *
 * Memory: layouts are direct-mapped by inode in LAYOUT_SLOTS slots (a collision replaces), of at
 * most LAYOUT_CHUNKS chunks each, LAYOUT_BYTES in all; records cost one small allocation per
 * open handle.
 */
#define _GNU_SOURCE
#include "nstore.h"
#include "napi_util.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#define LAYOUT_SLOTS 65536u
#define LAYOUT_CHUNKS 16u
#define LAYOUT_BYTES ((size_t)16 << 20)
/* Handle numbers of native opens start here (JavaScript's HandleTable numbers are 32-bit). */
#define NATIVE_FH (1ull << 32)

static size_t layout_cost(size_t n) { return (n + 1) * sizeof(uint64_t) + 32 * n; }

static void layout_clear(nstore *s, nlayout *l) {
  if (!l->offs) return;
  s->layout_bytes -= layout_cost(l->n);
  free(l->offs);
  free(l->hashes);
  memset(l, 0, sizeof *l);
}

void nopen_forget(nstore *s, uint64_t ino) {
  if (!s->layouts) return;
  if (ino != 0) {
    nlayout *l = &s->layouts[ino % LAYOUT_SLOTS];
    if (l->ino == ino) layout_clear(s, l);
    return;
  }
  for (unsigned k = 0; k < LAYOUT_SLOTS && s->layout_bytes > 0; k++) layout_clear(s, &s->layouts[k]);
}

void nopen_free(nstore *s) {
  nopen_forget(s, 0);
  free(s->layouts);
  s->layouts = NULL;
  for (unsigned b = 0; b < OBUCKETS; b++) {
    while (s->opens[b]) {
      nopen *o = s->opens[b];
      s->opens[b] = o->next;
      free(o);
    }
  }
  s->nopens = 0;
}

/* On a worker thread: 1 with *fh set when the OPEN is answered here (the caller replies). */
int nopen_open(nstore *s, uint64_t ino, int flags, uint32_t pid, uint64_t *fh) {
  if (!s || (flags & O_ACCMODE) != O_RDONLY || (flags & (O_TRUNC | O_CREAT | O_APPEND | O_DIRECT))) return 0;
  pthread_mutex_lock(&s->lock);
  nlayout *l = s->layouts && !s->closed ? &s->layouts[ino % LAYOUT_SLOTS] : NULL;
  nfile *f = NULL;
  nopen *o = NULL;
  if (l && l->offs && l->ino == ino) {
    f = calloc(1, sizeof *f);
    o = calloc(1, sizeof *o);
    if (f) f->offs = malloc((l->n + 1) * sizeof(uint64_t));
    if (f) f->hashes = malloc(32 * l->n);
  }
  if (!f || !o || !f->offs || !f->hashes) {
    pthread_mutex_unlock(&s->lock);
    if (f) {
      free(f->offs);
      free(f->hashes);
    }
    free(f);
    free(o);
    return 0;
  }
  memcpy(f->offs, l->offs, (l->n + 1) * sizeof(uint64_t));
  memcpy(f->hashes, l->hashes, 32 * l->n);
  f->n = l->n;
  f->size = l->size;
  f->ino = ino;
  f->ahead = f->entered = f->checked = -1;
  f->fh = o->fh = NATIVE_FH + ++s->next_fh;
  nf_insert(s, f);
  o->ino = ino;
  o->pid = pid;
  o->next = s->opens[o->fh % OBUCKETS];
  s->opens[o->fh % OBUCKETS] = o;
  s->nopens++;
  s->native_opens++;
  *fh = o->fh;
  pthread_mutex_unlock(&s->lock);
  return 1;
}

/*
 * On a worker thread: 0 when fh was not opened natively; else it is released here and 1 (the
 * caller replies), or 2 when its layout had been dropped (the file changed, or lost its name while
 * open): JavaScript then hears of the release as of any other (a hidden file is removed at its last close).
 */
int nopen_release(nstore *s, uint64_t fh) {
  if (!s || fh < NATIVE_FH) return 0;
  pthread_mutex_lock(&s->lock);
  int dropped = 1;
  for (nfile *f = s->files[fh % FBUCKETS]; f; f = f->next) dropped = dropped && f->fh != fh;
  nopen **p = &s->opens[fh % OBUCKETS];
  while (*p && (*p)->fh != fh) p = &(*p)->next;
  nopen *o = *p;
  if (o) {
    *p = o->next;
    s->nopens--;
    s->native_releases++;
  }
  nf_remove(s, fh);
  pthread_mutex_unlock(&s->lock);
  free(o);
  return dropped ? 2 : 1;
}

/* ---------------------------------------------------------------------------------------------- */
/* Node-API: nreadLayout, nreadForget, nreadOpened                                                 */

static nstore *store_of(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) return NULL;
  return cairn_nstore(env, argv[0]);
}

/*
 * nreadLayout(ctx, ino, size, offsets: Float64Array(n + 1), hashes: Buffer(32 n)) -> boolean: an
 * OPEN for reading of inode ino may be answered natively with this layout (false: not kept: too
 * many chunks, the bound reached, bad offsets).
 */
static napi_value nread_layout(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  nstore *s = store_of(env, info, 5, argv);
  double ino = 0, size = 0;
  const double *offs = NULL;
  const uint8_t *hd = NULL;
  size_t n = 0;
  if (!s || napi_get_value_double(env, argv[1], &ino) != napi_ok ||
      napi_get_value_double(env, argv[2], &size) != napi_ok ||
      !nread_layout_args(env, argv[3], argv[4], 1, &offs, &hd, &n) || ino < 1) {
    napi_throw_type_error(env, NULL, "cairn_fuse: nreadLayout(ctx, ino, size, Float64Array(n+1), Buffer(32n))");
    return NULL;
  }
  int kept = 0;
  pthread_mutex_lock(&s->lock);
  if (!s->layouts && !s->closed) s->layouts = calloc(LAYOUT_SLOTS, sizeof(nlayout));
  nlayout *l = s->layouts ? &s->layouts[(uint64_t)ino % LAYOUT_SLOTS] : NULL;
  if (l) layout_clear(s, l);
  if (l && n <= LAYOUT_CHUNKS && offs[0] == 0 && offs[n] == size && s->layout_bytes + layout_cost(n) <= LAYOUT_BYTES) {
    l->offs = malloc((n + 1) * sizeof(uint64_t));
    l->hashes = malloc(32 * n);
    if (l->offs && l->hashes) {
      for (size_t i = 0; i <= n; i++) l->offs[i] = (uint64_t)offs[i];
      memcpy(l->hashes, hd, 32 * n);
      l->ino = (uint64_t)ino;
      l->size = (uint64_t)size;
      l->n = n;
      s->layout_bytes += layout_cost(n);
      kept = 1;
    } else {
      free(l->offs);
      free(l->hashes);
      memset(l, 0, sizeof *l);
    }
  }
  pthread_mutex_unlock(&s->lock);
  return nu_bool(env, kept);
}

/* nreadForget(ctx): drops every inode's layout (handles stay open; their READs go to JavaScript once dropped too). */
static napi_value nread_forget(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  nstore *s = store_of(env, info, 1, argv);
  if (!s) return NULL;
  pthread_mutex_lock(&s->lock);
  nopen_forget(s, 0);
  pthread_mutex_unlock(&s->lock);
  return NULL;
}

/* nreadOpened(ctx) -> Float64Array [fh, ino, pid, ...]: the handles open natively now, for the open-file table. */
static napi_value nread_opened(napi_env env, napi_callback_info info) {
  napi_value argv[1], ab, out;
  nstore *s = store_of(env, info, 1, argv);
  if (!s) return NULL;
  pthread_mutex_lock(&s->lock);
  size_t n = s->nopens;
  double *d = NULL;
  napi_create_arraybuffer(env, 3 * n * sizeof(double), (void **)&d, &ab);
  size_t k = 0;
  for (unsigned b = 0; b < OBUCKETS && d; b++) {
    for (nopen *o = s->opens[b]; o && k < n; o = o->next, k++) {
      d[3 * k] = (double)o->fh;
      d[3 * k + 1] = (double)o->ino;
      d[3 * k + 2] = (double)o->pid;
    }
  }
  pthread_mutex_unlock(&s->lock);
  napi_create_typedarray(env, napi_float64_array, 3 * k, ab, 0, &out);
  return out;
}

void nopen_stats(napi_env env, napi_value obj, nstore *s) {
  pthread_mutex_lock(&s->lock);
  uint64_t v[4] = {s->native_opens, s->native_releases, s->nopens, s->layout_bytes};
  pthread_mutex_unlock(&s->lock);
  static const char *keys[4] = {"nativeOpens", "nativeReleases", "nativeOpen", "layoutBytes"};
  nu_set_figures(env, obj, keys, v, 4);
}

void nopen_define(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    NU_FN("nreadLayout", nread_layout),
    NU_FN("nreadForget", nread_forget),
    NU_FN("nreadOpened", nread_opened),
  };
  NU_DEFINE(env, exports, props);
}
