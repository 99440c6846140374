/*
 * ncache: the host chunk cache, read and verified on the native worker threads (see ncache.h).
 *
 * Integrity: bytes leave ncache_load only after the BLAKE3 of exactly those bytes, in memory that
 * is ours (read with pread, never mapped: a file written in place after the check cannot change
 * them), equalled the 32-byte name the layout gave for the chunk. The BLAKE3 is the official C
 * implementation (Debian's librust-blake3-dev, runtime SIMD dispatch), checked against the
 * official test vectors when the addon loads; if it fails, or the addon was built without it
 * (CAIRN_NO_BLAKE3), the cache is never read here and every such read goes to JavaScript.
 *
 * LRU: src/chunks/cache.ts evicts by mtime and a hit touches its entry at most once per 10 s per
 * entry and process; a load here does the same (futimens on the descriptor it read, best effort),
 * remembered per chunk in a small direct-mapped table.
 */
#define _GNU_SOURCE
#include "ncache.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef CAIRN_NO_BLAKE3
#include "blake3.h"
#endif
#include "ntree.h"
#include "napi_util.h"

#define TOUCH_EVERY_NS (10ull * 1000000000ull)
#define TOUCH_SLOTS 4096u

struct ncache {
  char *dir; /* set once (ncache_set_dir); NULL: off */
  pthread_mutex_t touch_lock;
  struct {
    uint64_t key, at;
  } touched[TOUCH_SLOTS];
  /* figures (atomic) */
  uint64_t loads, load_bytes, load_ns, misses, corrupt, touches, hashed, part_loads, outboards, outboard_puts;
};

/* 1 once the C BLAKE3 reproduced the official vectors (ncache_define). */
static int blake3_ok;

ncache *ncache_new(void) {
  ncache *c = calloc(1, sizeof *c);
  pthread_mutex_init(&c->touch_lock, NULL);
  return c;
}

int ncache_on(const ncache *c) {
  return c && blake3_ok && __atomic_load_n(&c->dir, __ATOMIC_ACQUIRE) != NULL;
}

static uint64_t mono_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void add(uint64_t *v, uint64_t n) { __atomic_fetch_add(v, n, __ATOMIC_RELAXED); }

void ncache_digest(const void *data, size_t len, uint8_t out[32]) {
#ifndef CAIRN_NO_BLAKE3
  blake3_hasher h;
  blake3_hasher_init(&h);
  blake3_hasher_update(&h, data, len);
  blake3_hasher_finalize(&h, out, 32);
#else
  (void)data;
  (void)len;
  memset(out, 0, 32);
#endif
}

int ncache_blake3_ok(void) { return blake3_ok; }

/* <dir>/<hh>/<64 hex><suffix> into buf; 0 when it does not fit. */
static int path_in(const char *dir, const uint8_t *hash, const char *suffix, char *buf, size_t cap) {
  static const char hex[] = "0123456789abcdef";
  char name[65];
  for (int i = 0; i < 32; i++) {
    name[2 * i] = hex[hash[i] >> 4];
    name[2 * i + 1] = hex[hash[i] & 15];
  }
  name[64] = 0;
  int n = snprintf(buf, cap, "%s/%.2s/%s%s", dir, name, name, suffix);
  return n > 0 && (size_t)n < cap;
}

static int entry_path(const ncache *c, const uint8_t *hash, char *buf, size_t cap) { return path_in(c->dir, hash, "", buf, cap); }

static int write_all(int fd, const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    ssize_t w = write(fd, p, len);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return 0;
    p += w;
    len -= (size_t)w;
  }
  return 1;
}

int ncache_write(const char *dir, const uint8_t *hash, const char *suffix, const void *head, size_t hlen, const void *data,
                 size_t len) {
  char path[PATH_MAX], tmp[PATH_MAX];
  if (!path_in(dir, hash, suffix, path, sizeof path)) return -1;
  /* A temp name as cache.ts makes them (`.tmp-` in the entry's directory: its scans skip them). */
  char *slash = strrchr(path, '/');
  static uint64_t seq;
  uint64_t k = __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED);
  int m = snprintf(tmp, sizeof tmp, "%.*s/.tmp-%.64s-%d-n%llu", (int)(slash - path), path, slash + 1, (int)getpid(), (unsigned long long)k);
  if (m <= 0 || (size_t)m >= sizeof tmp) return -1;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0 && errno == ENOENT) {
    /* The entry's directory (or the cache's) is not there yet: make both. */
    *slash = 0;
    mkdir(dir, 0755);
    mkdir(path, 0755);
    *slash = '/';
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  }
  if (fd < 0) return -1;
  int ok = (hlen == 0 || write_all(fd, head, hlen)) && write_all(fd, data, len);
  ok = close(fd) == 0 && ok;
  if (!ok || rename(tmp, path) != 0) {
    unlink(tmp);
    return -1;
  }
  return 0;
}

/* Touches the entry's mtime (the cache's LRU clock) unless this process did in the last 10 s. */
static void touch(ncache *c, const uint8_t *hash, int fd) {
  uint64_t key, now = mono_ns();
  memcpy(&key, hash, sizeof key);
  unsigned slot = (unsigned)(key % TOUCH_SLOTS);
  pthread_mutex_lock(&c->touch_lock);
  int due = c->touched[slot].key != key || now - c->touched[slot].at >= TOUCH_EVERY_NS;
  if (due) {
    c->touched[slot].key = key;
    c->touched[slot].at = now;
  }
  pthread_mutex_unlock(&c->touch_lock);
  if (due && futimens(fd, NULL) == 0) add(&c->touches, 1);
}

/* Removes a damaged entry, unless the name was meanwhile renamed over with another file. */
static void remove_bad(ncache *c, const char *path, const struct stat *read) {
  struct stat now;
  if (stat(path, &now) == 0 && now.st_ino == read->st_ino && now.st_dev == read->st_dev) unlink(path);
  add(&c->corrupt, 1);
}

/* Opens the cache entry of `hash` (its path in `path`, PATH_MAX bytes; its stat in `st`): the fd, or
 * -1 when there is no regular file there (counted as a miss). */
static int open_entry(ncache *c, const uint8_t *hash, char *path, struct stat *st) {
  if (!entry_path(c, hash, path, PATH_MAX)) return -1;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
    if (fd >= 0) close(fd);
    add(&c->misses, 1);
    return -1;
  }
  return fd;
}

int ncache_load(ncache *c, const uint8_t *hash, size_t len, char *buf, uint8_t *cvs) {
  if (!ncache_on(c)) return NCACHE_MISS;
  uint64_t t0 = mono_ns();
  char path[PATH_MAX];
  struct stat st;
  int fd = open_entry(c, hash, path, &st);
  if (fd < 0) return NCACHE_MISS;
  if ((uint64_t)st.st_size != (uint64_t)len) { /* an entry is exactly the chunk's bytes */
    close(fd);
    remove_bad(c, path, &st);
    return NCACHE_BAD;
  }
  size_t got = 0;
  int err = 0;
  while (got < len) {
    ssize_t r = pread(fd, buf + got, len - got, (off_t)got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) err = 1;
    if (r <= 0) break;
    got += (size_t)r;
  }
  if (err) { /* unreadable (an I/O error): a miss, as in cache.ts */
    close(fd);
    add(&c->misses, 1);
    return NCACHE_MISS;
  }
  uint8_t d[32];
  if (got == len && cvs) ntree_hash((const uint8_t *)buf, len, NTREE_BLOCK, cvs, d); /* the hash, and the block CVs on the way */
  else if (got == len) ncache_digest(buf, len, d);
  if (got != len || memcmp(d, hash, 32) != 0) {
    close(fd);
    remove_bad(c, path, &st);
    return NCACHE_BAD;
  }
  touch(c, hash, fd);
  close(fd);
  add(&c->loads, 1);
  add(&c->load_bytes, len);
  add(&c->hashed, len);
  add(&c->load_ns, mono_ns() - t0);
  return NCACHE_OK;
}

/* Reads a whole small file (at most cap bytes) into buf: its size, or -1. */
static ssize_t read_small(const char *path, uint8_t *buf, size_t cap, struct stat *st) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = -1;
  if (fstat(fd, st) == 0 && S_ISREG(st->st_mode) && (uint64_t)st->st_size <= cap) {
    n = pread(fd, buf, (size_t)st->st_size, 0);
    if (n != st->st_size) n = -1;
  }
  close(fd);
  return n;
}

int ncache_outboard(ncache *c, const uint8_t *hash, uint64_t len, size_t *block, uint8_t *cvs, size_t max) {
  char path[PATH_MAX];
  if (!ncache_on(c) || !entry_path(c, hash, path, sizeof path - 4)) return NCACHE_MISS;
  strcat(path, ".ob");
  uint8_t *buf = malloc(4 + 32 * max);
  struct stat st;
  ssize_t got = buf ? read_small(path, buf, 4 + 32 * max, &st) : -1;
  if (got < 0) {
    free(buf);
    return NCACHE_MISS;
  }
  uint32_t b = got >= 4 ? (uint32_t)buf[0] | (uint32_t)buf[1] << 8 | (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 24 : 0;
  size_t n = ntree_block_ok(b) ? ntree_blocks(len, b) : 0;
  uint8_t root[32];
  int ok = n >= 2 && n <= max && (size_t)got == 4 + 32 * n;
  if (ok) ntree_root(buf + 4, n, root);
  if (!ok || memcmp(root, hash, 32) != 0) { /* not this chunk's outboard: damage */
    free(buf);
    remove_bad(c, path, &st);
    return NCACHE_BAD;
  }
  memcpy(cvs, buf + 4, 32 * n);
  *block = b;
  free(buf);
  add(&c->outboards, 1);
  return NCACHE_OK;
}

void ncache_put_outboard(ncache *c, const uint8_t *hash, size_t block, const uint8_t *cvs, size_t n) {
  if (!ncache_on(c)) return;
  uint8_t head[4] = {(uint8_t)block, (uint8_t)(block >> 8), (uint8_t)(block >> 16), (uint8_t)(block >> 24)};
  if (ncache_write(c->dir, hash, ".ob", head, 4, cvs, 32 * n) == 0) add(&c->outboard_puts, 1);
}

int ncache_load_part(ncache *c, const uint8_t *hash, uint64_t len, size_t block, const uint8_t *cvs, size_t b0, size_t b1, char *buf) {
  if (!ncache_on(c)) return NCACHE_MISS;
  uint64_t t0 = mono_ns();
  char path[PATH_MAX];
  struct stat st;
  int fd = open_entry(c, hash, path, &st);
  if (fd < 0) return NCACHE_MISS;
  uint64_t from = (uint64_t)b0 * block, to = (uint64_t)(b1 + 1) * block;
  if (to > len) to = len;
  if ((uint64_t)st.st_size != len || from >= to) {
    close(fd);
    remove_bad(c, path, &st);
    return NCACHE_BAD;
  }
  size_t want = (size_t)(to - from), got = 0;
  int err = 0;
  while (got < want) {
    ssize_t r = pread(fd, buf + got, want - got, (off_t)(from + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) err = 1;
    if (r <= 0) break;
    got += (size_t)r;
  }
  if (err) {
    close(fd);
    add(&c->misses, 1);
    return NCACHE_MISS;
  }
  int ok = got == want;
  for (size_t b = b0; ok && b <= b1; b++) { /* each block against its verified CV */
    uint8_t cv[32];
    uint64_t at = (uint64_t)(b - b0) * block;
    size_t n = (size_t)(want - at < block ? want - at : block);
    ntree_block_cv((const uint8_t *)buf + at, n, b, block, cv);
    ok = memcmp(cv, cvs + 32 * b, 32) == 0;
  }
  if (!ok) {
    close(fd);
    remove_bad(c, path, &st);
    return NCACHE_BAD;
  }
  touch(c, hash, fd);
  close(fd);
  add(&c->part_loads, 1);
  add(&c->load_bytes, want);
  add(&c->hashed, want);
  add(&c->load_ns, mono_ns() - t0);
  return NCACHE_OK;
}

int ncache_has(ncache *c, const uint8_t *hash) {
  char path[PATH_MAX];
  return ncache_on(c) && entry_path(c, hash, path, sizeof path) && access(path, F_OK) == 0;
}

void ncache_stats(napi_env env, napi_value obj, const ncache *c) {
  static const char *keys[10] = {"cacheLoads",    "cacheLoadBytes", "cacheLoadNs",    "cacheMisses",         "cacheCorrupt",
                                 "cacheTouches",  "cacheHashed",    "cachePartLoads", "cacheOutboardLoads", "cacheOutboardPuts"};
  const uint64_t *v[10] = {&c->loads,   &c->load_bytes, &c->load_ns,    &c->misses,    &c->corrupt,
                           &c->touches, &c->hashed,     &c->part_loads, &c->outboards, &c->outboard_puts};
  for (int i = 0; i < 10; i++) nu_set_num(env, obj, keys[i], (double)__atomic_load_n(v[i], __ATOMIC_RELAXED));
  napi_set_named_property(env, obj, "cacheOn", nu_bool(env, ncache_on(c)));
}

/*
 * nreadCache(ctx, dir) -> boolean: native reads of this mount may read chunk <h> from the host
 * cache at dir/<h[0:2]>/<h> (set once per mount; later calls keep the first directory). False when
 * they may not (no C BLAKE3, or it failed its self-test): every miss then goes to JavaScript.
 */
static napi_value nread_cache_js(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  ncache *c = argc == 2 ? cairn_ncache(env, argv[0]) : NULL;
  char *dir = c ? nu_str(env, argv[1]) : NULL;
  if (!dir || !*dir || strlen(dir) > PATH_MAX - 80) {
    free(dir);
    napi_throw_type_error(env, NULL, "cairn_fuse: nreadCache(ctx, dir)");
    return NULL;
  }
  char *none = NULL;
  if (!blake3_ok || !__atomic_compare_exchange_n(&c->dir, &none, dir, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) free(dir);
  return nu_bool(env, ncache_on(c));
}

/* Official BLAKE3 test vectors: input bytes i % 251 of the given length (the larger ones take the SIMD paths). */
static const struct {
  size_t len;
  const char *hex;
} VECTORS[] = {
  {0, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"},
  {1, "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"},
  {1023, "10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11"},
  {1025, "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444"},
  {8193, "bab6c09cb8ce8cf459261398d2e7aef35700bf488116ceb94a36d0f5f1b7bc3b"},
  {31744, "62b6960e1a44bcc1eb1a611a8d6235b6b4b78f32e7abc4fb4c6cdcce94895c47"},
  {102400, "bc3e3d41a1146b069abffad3c0d44860cf664390afce4d9661f7902e7943e085"},
};

static int self_test(void) {
#ifdef CAIRN_NO_BLAKE3
  return 0;
#else
  uint8_t *in = malloc(102400 + 1);
  if (!in) return 0;
  for (size_t i = 0; i < 102400; i++) in[i + 1] = (uint8_t)(i % 251);
  int ok = 1;
  for (size_t v = 0; v < sizeof VECTORS / sizeof VECTORS[0]; v++) {
    uint8_t d[32];
    char hex[65];
    ncache_digest(in + 1, VECTORS[v].len, d); /* at an odd address, as a read buffer may be */
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
    if (strcmp(hex, VECTORS[v].hex) != 0) ok = 0;
  }
  free(in);
  return ok;
#endif
}

/* A block size argument of the tree exports: a power of two from 1 KiB to 1 GiB (ntree.h). */
static int block_arg_ok(double block) {
  return block >= 1024 && block <= (double)(1u << 30) && ntree_block_ok((uint64_t)block);
}

/*
 * The result of a tree export: a new Buffer of `bytes` (1, its data in *data), or null (0) when
 * the addon's BLAKE3 failed its self-test.
 */
static int tree_result(napi_env env, size_t bytes, void **data, napi_value *out) {
  if (!blake3_ok) {
    napi_get_null(env, out);
    return 0;
  }
  return napi_create_buffer(env, bytes, data, out) == napi_ok;
}

/*
 * ntreeOutboard(bytes: Buffer, blockBytes) -> Buffer: the outboard of a chunk (the CVs of its
 * blocks, ntree.h; empty for a chunk of one block), as src/chunks/outboard.ts computes it, in one
 * pass of the C BLAKE3; null when the addon's BLAKE3 failed its self-test. Throws on bad arguments.
 */
static napi_value ntree_outboard_js(napi_env env, napi_callback_info info) {
  NU_ARGS(2);
  void *data = NULL, *cvs = NULL;
  size_t len = 0;
  double block = nu_num(env, argv[1]);
  if (!nu_buf(env, argv[0], &data, &len) || !block_arg_ok(block)) {
    napi_throw_type_error(env, NULL, "cairn_fuse: ntreeOutboard(Buffer, a power of two from 1024)");
    return NULL;
  }
  napi_value out = NULL;
  size_t n = ntree_blocks(len, (size_t)block);
  uint8_t digest[32];
  if (tree_result(env, 32 * n, &cvs, &out) && n > 0) ntree_hash(data, len, (size_t)block, cvs, digest);
  return out;
}

/*
 * ntreeBlockCv(bytes: Buffer, index, blockBytes) -> Buffer(32): the CV of block `index` of a chunk
 * (`bytes` exactly that block's bytes), as src/chunks/outboard.ts `blockCv` computes it; null when
 * the addon's BLAKE3 failed its self-test. Throws on bad arguments.
 */
static napi_value ntree_block_cv_js(napi_env env, napi_callback_info info) {
  NU_ARGS(3);
  void *data = NULL, *cv = NULL;
  size_t len = 0;
  double index = nu_num(env, argv[1]), block = nu_num(env, argv[2]);
  if (!nu_buf(env, argv[0], &data, &len) || len < 1 || !block_arg_ok(block) || len > block ||
      !(index >= 0 && index < 9007199254740992.0)) {
    napi_throw_type_error(env, NULL, "cairn_fuse: ntreeBlockCv(Buffer of 1 to blockBytes, index, a power of two from 1024)");
    return NULL;
  }
  napi_value out = NULL;
  if (tree_result(env, 32, &cv, &out)) ntree_block_cv(data, len, (uint64_t)index, (size_t)block, cv);
  return out;
}

void ncache_define(napi_env env, napi_value exports) {
  blake3_ok = self_test() && ntree_self_test();
  napi_property_descriptor props[] = {NU_FN("nreadCache", nread_cache_js), NU_FN("ntreeOutboard", ntree_outboard_js),
                                      NU_FN("ntreeBlockCv", ntree_block_cv_js)};
  NU_DEFINE(env, exports, props);
  napi_set_named_property(env, exports, "nreadBlake3", nu_bool(env, blake3_ok));
}
