/*
 * nread: native cached reads (see nread.h).
 *
 * Integrity: the store only ever holds verified bytes: those JavaScript verified against their
 * BLAKE3 name (ChunkStore.readChunk) and copied in with nreadPut, and those ncache_load read from
 * the host chunk cache and verified here with the C BLAKE3 against the name the layout gives
 * (ncache.c). Bytes that fail (missing, short, wrong digest) are never kept: the READ goes to
 * JavaScript as before. Keys are the 32-byte names; a layout maps a handle's file offsets to
 * names, so a reply is the bytes of exactly the chunks the file's committed entry names.
 *
 * Invalidation: a layout belongs to one open handle of a committed file nobody in this mount is
 * writing; release drops it (here, before JavaScript hears of the release), and JavaScript drops
 * an inode's layouts (nreadDrop) before it runs anything that changes the file (an open for
 * writing, write, truncate, fallocate) and for every inode a reload changed. Chunks are named by
 * their content, so a resident chunk is never stale; only layouts are.
 *
 * Memory: chunk bytes are bounded by the budget (LRU; a chunk over a quarter of the budget is not
 * kept, but one loaded for a READ still answers it). A chunk being sent keeps a reference, so
 * eviction never frees bytes under a reply. One mutex guards everything; it is never held while a
 * reply is written or a cache file is read (a chunk is loaded by one worker at a time; others
 * wanting it wait on `loaded`).
 *
 * Random readers: a READ of a reader that is not sequential (it starts more than 2 chunks before or
 * after the chunk its last READ ended in, and more than SEQ_BYTES from where its latest READ ends)
 * needing a chunk that is not resident loads only the blocks it needs (32 KiB by default), each
 * verified against the chunk's outboard, itself verified against the chunk's name (ntree.h): from
 * the store's table of verified outboards, else the host cache's `<hash>.ob` side entry (written
 * by this addon or by JavaScript's partial reads). Those parts live in the worker thread's own
 * buffers for that one reply and are never kept in the store. Without an outboard the whole chunk
 * is loaded (and kept) as before, verified through the tree, which yields the outboard on the way:
 * kept in the table and written as `<hash>.ob`, so the next mount reads parts from the start. A
 * sequential reader's chunks are verified whole with the plain hash: no outboard computed or written.
 *
 * Native fetches (nfetch.c): every chunk of a run queued on the fetch threads is expected
 * (nread_expect) until it was offered to the stores (nread_offer), found damaged, or its GET ended
 * without it (nread_settle). A sequential reader's READ missing a chunk that is expected waits for
 * it on its worker (await_fetch: at most max_waiters READs of a store, AWAIT_MS each, until
 * nread_stop) and is then answered from the store, instead of going to JavaScript only to wait
 * there for the same bytes. A random reader's goes to JavaScript, which also has the chunk's
 * outboard computed and kept (nread_outboard), so the next mount reads it by blocks.
 */
#define _GNU_SOURCE
#include "nstore.h"
#include "ntree.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

/* The stores that serve native reads, for nread_offer (a store's memory is never freed: nread_free
 * empties and closes it, and a put into a closed store keeps nothing). */
#define OFFER_MAX 16
static struct {
  pthread_mutex_t lock;
  nstore *stores[OFFER_MAX];
  int n;
} offers = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Chunks native fetches will offer (nread_expect), by name, with how many runs bring each. */
#define EBUCKETS 1024u
typedef struct nexpect {
  uint8_t hash[32];
  uint32_t count;
  struct nexpect *next;
} nexpect;
static struct {
  pthread_mutex_t lock;
  pthread_cond_t settled;
  nexpect *buckets[EBUCKETS];
} expects = {.lock = PTHREAD_MUTEX_INITIALIZER, .settled = PTHREAD_COND_INITIALIZER};

static nexpect **expect_at(const uint8_t *hash) {
  uint32_t b;
  memcpy(&b, hash, sizeof b);
  nexpect **p = &expects.buckets[b % EBUCKETS];
  while (*p && memcmp((*p)->hash, hash, 32) != 0) p = &(*p)->next;
  return p;
}

void nread_expect(const uint8_t *hash) {
  pthread_mutex_lock(&expects.lock);
  nexpect **p = expect_at(hash);
  if (!*p && (*p = calloc(1, sizeof **p)) != NULL) memcpy((*p)->hash, hash, 32);
  if (*p) (*p)->count++;
  pthread_mutex_unlock(&expects.lock);
}

void nread_settle(const uint8_t *hash) {
  pthread_mutex_lock(&expects.lock);
  nexpect **p = expect_at(hash), *e = *p;
  if (e && --e->count == 0) {
    *p = e->next;
    free(e);
    pthread_cond_broadcast(&expects.settled);
  }
  pthread_mutex_unlock(&expects.lock);
}

/* Waits (up to AWAIT_MS, or until the mount of s stops: nread_stop) while the chunk named hash is
 * expected: 0 when it was not, 1 when it was (and is no more, or the mount stops), 2 when it still
 * is after AWAIT_MS. */
static int await_expected(nstore *s, const uint8_t *hash) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += AWAIT_MS / 1000;
  until.tv_nsec += (long)(AWAIT_MS % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&expects.lock);
  int was = *expect_at(hash) != NULL;
  while (*expect_at(hash) && !__atomic_load_n(&s->stopping, __ATOMIC_ACQUIRE) &&
         pthread_cond_timedwait(&expects.settled, &expects.lock, &until) == 0) {}
  if (was && *expect_at(hash) && !__atomic_load_n(&s->stopping, __ATOMIC_ACQUIRE)) was = 2;
  pthread_mutex_unlock(&expects.lock);
  return was;
}

nstore *nread_new(size_t budget, int waiters) {
  nstore *s = calloc(1, sizeof *s);
  s->max_waiters = waiters;
  pthread_mutex_init(&s->lock, NULL);
  pthread_cond_init(&s->loaded, NULL);
  s->budget = budget;
  s->cache = ncache_new();
  s->buckets = calloc(NBUCKETS, sizeof(nchunk *));
  s->obs = calloc(OB_SLOTS, sizeof(nob));
  pthread_mutex_lock(&offers.lock);
  if (budget > 0 && offers.n < OFFER_MAX) offers.stores[offers.n++] = s;
  pthread_mutex_unlock(&offers.lock);
  return s;
}

void nread_offer(const uint8_t *hash, const void *bytes, size_t len) {
  nstore *to[OFFER_MAX];
  pthread_mutex_lock(&offers.lock);
  int n = offers.n;
  memcpy(to, offers.stores, sizeof(nstore *) * (size_t)n);
  pthread_mutex_unlock(&offers.lock);
  for (int i = 0; i < n; i++)
    if (nread_put(to[i], hash, bytes, len)) __atomic_fetch_add(&to[i]->offered, 1, __ATOMIC_RELAXED);
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

void nf_insert(nstore *s, nfile *f) {
  nf_remove(s, f->fh);
  f->next = s->files[f->fh % FBUCKETS];
  s->files[f->fh % FBUCKETS] = f;
  s->nfiles++;
}

void nf_remove(nstore *s, uint64_t fh) {
  nfile **p = &s->files[fh % FBUCKETS];
  while (*p && (*p)->fh != fh) p = &(*p)->next;
  if (!*p) return;
  nfile *f = *p;
  *p = f->next;
  s->nfiles--;
  file_free(f);
}

/* Chunk i's bytes [lo, hi) (offsets in the chunk), verified, in buf (a worker thread's, for one reply). */
typedef struct part {
  size_t i;
  uint64_t lo, hi;
  char *buf;
} part;

/* A worker thread's buffers: MAX_PARTS parts of chunks, and room for one outboard. */
typedef struct tlbufs {
  char *buf[MAX_PARTS];
  size_t cap[MAX_PARTS];
  uint8_t cvs[32 * OB_MAX_BLOCKS];
} tlbufs;

static pthread_key_t tl_key;
static pthread_once_t tl_once = PTHREAD_ONCE_INIT;

static void tl_free(void *p) {
  tlbufs *t = p;
  for (int k = 0; k < MAX_PARTS; k++) free(t->buf[k]);
  free(t);
}

static void tl_init(void) { pthread_key_create(&tl_key, tl_free); }

static tlbufs *tl_get(void) {
  pthread_once(&tl_once, tl_init);
  tlbufs *t = pthread_getspecific(tl_key);
  if (!t && (t = calloc(1, sizeof *t)) != NULL) pthread_setspecific(tl_key, t);
  return t;
}

/* Part buffer k of this thread, at least len bytes; NULL when out of memory. */
static char *tl_buf(tlbufs *t, int k, size_t len) {
  if (t->cap[k] < len) {
    free(t->buf[k]);
    t->buf[k] = malloc(len);
    t->cap[k] = t->buf[k] ? len : 0;
  }
  return t->buf[k];
}

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/*
 * Finds the chunks of f covering [start, end): 1 with their pieces referenced when every one is at
 * hand (resident, in own[]: loaded by this read, or the part of it needed in parts[]; a part's
 * piece is NULL), 0 with *miss the first that is not, -1 when the range needs more than
 * MAX_PIECES pieces. *first: the chunk holding start.
 */
static int cover(nstore *s, nfile *f, uint64_t start, uint64_t end, nchunk **own, int nown, const part *parts, int nparts,
                 nchunk **pieces, struct iovec *iov, int *np, size_t *miss, long *first, long *last) {
  /* The chunk holding `start`: the last i with offs[i] <= start. */
  size_t lo = 0, hi = f->n;
  while (hi - lo > 1) {
    size_t mid = (lo + hi) / 2;
    if (f->offs[mid] <= start) lo = mid; else hi = mid;
  }
  int n = 0;
  size_t i = lo;
  *first = (long)lo;
  for (uint64_t pos = start; pos < end; i++) {
    if (i >= f->n || n == MAX_PIECES) return -1;
    const uint8_t *h = f->hashes + 32 * i;
    uint64_t from = pos - f->offs[i];
    uint64_t to = (end < f->offs[i + 1] ? end : f->offs[i + 1]) - f->offs[i];
    nchunk *c = nc_find(s, h);
    for (int k = 0; !c && k < nown; k++) c = memcmp(own[k]->hash, h, 32) == 0 ? own[k] : NULL;
    if (c && c->len != f->offs[i + 1] - f->offs[i]) c = NULL;
    const part *p = NULL;
    for (int k = 0; !c && k < nparts; k++)
      if (parts[k].i == i && parts[k].lo <= from && to <= parts[k].hi) p = &parts[k];
    if (!c && !p) {
      *miss = i;
      return 0;
    }
    pieces[n] = c;
    iov[n].iov_base = c ? c->data + from : p->buf + (from - p->lo);
    iov[n].iov_len = (size_t)(to - from);
    n++;
    pos = f->offs[i] + to;
  }
  for (int k = 0; k < n; k++) {
    if (!pieces[k]) continue;
    pieces[k]->refs++;
    nc_touch(s, pieces[k]);
  }
  *np = n;
  *last = (long)i - 1;
  return 1;
}

static int inflight_at(nstore *s, const uint8_t *hash) {
  for (int k = 0; k < INFLIGHT; k++)
    if (s->inflight_used[k] && memcmp(s->inflight[k], hash, 32) == 0) return k;
  return -1;
}

/*
 * Loads chunk i of f from the host cache into the store (called and returning with the lock held;
 * it is released during the load): the chunk with a reference for the caller, or NULL. One load per
 * chunk at a time: while another is loading it, NULL (*waited set) after waiting for it when
 * `wait`, at once otherwise. The chunk is verified whole against its name either way; for a random
 * reader (`random`) that verification goes through the tree and yields the chunk's outboard on the
 * way: kept in the table and written to the host cache. A sequential reader's chunk is verified
 * with the plain hash (cheaper, and it will be read whole: no outboard is needed).
 */
static nchunk *load(nstore *s, nfile *f, size_t i, int wait, int *waited, int random) {
  uint8_t want[32];
  memcpy(want, f->hashes + 32 * i, 32);
  size_t len = (size_t)(f->offs[i + 1] - f->offs[i]), cap = 0;
  if (inflight_at(s, want) >= 0) {
    while (wait && inflight_at(s, want) >= 0) pthread_cond_wait(&s->loaded, &s->lock);
    *waited = 1;
    return NULL;
  }
  int slot = 0;
  for (; slot < INFLIGHT && s->inflight_used[slot]; slot++) {}
  if (slot == INFLIGHT || len > s->budget) return NULL;
  s->inflight_used[slot] = 1;
  memcpy(s->inflight[slot], want, 32);
  char *data = nc_take(s, len, &cap);
  pthread_mutex_unlock(&s->lock);
  if (!data) data = malloc(cap = nc_size(len));
  size_t nb = ntree_blocks(len, NTREE_BLOCK);
  tlbufs *t = random && nb && nb <= OB_MAX_BLOCKS ? tl_get() : NULL;
  uint8_t *cvs = t ? t->cvs : NULL;
  int rc = data ? ncache_load(s->cache, want, len, data, cvs) : NCACHE_MISS;
  if (rc == NCACHE_OK && cvs) ncache_put_outboard(s->cache, want, NTREE_BLOCK, cvs, nb);
  pthread_mutex_lock(&s->lock);
  if (rc == NCACHE_OK && cvs) nob_put(s, want, NTREE_BLOCK, cvs, nb);
  s->inflight_used[slot] = 0;
  pthread_cond_broadcast(&s->loaded);
  if (rc != NCACHE_OK) {
    if (data) nc_give(s, data, cap);
    return NULL;
  }
  nchunk *c = nc_new(want, data, len, cap);
  c->refs++; /* the caller's */
  if (!nc_insert(s, c)) nc_unref(s, c);
  return c;
}

/* After a reply: loads chunk i of handle fh ahead of its reader, unless it is at hand or being loaded. */
static void load_ahead(nstore *s, uint64_t fh, uint64_t ino, long i) {
  int waited = 0;
  nfile *f = file_find(s, fh);
  if (!f || f->ino != ino || i < 0 || (size_t)i >= f->n || nc_find(s, f->hashes + 32 * i)) return;
  nchunk *c = load(s, f, (size_t)i, 0, &waited, 0);
  if (c) nc_unref(s, c);
}

/*
 * Loads the blocks of chunk i of f holding chunk bytes [from, to) into part buffer k of this
 * thread, verified against the chunk's outboard (the table's, else the host cache's `.ob`, which is
 * verified against the name and then kept): 1 with *p set; 0 when there is no outboard or the
 * blocks are missing or damaged. Called and returning with the lock held (released during I/O).
 */
static int load_part(nstore *s, nfile *f, size_t i, uint64_t from, uint64_t to, int k, part *p) {
  tlbufs *t = tl_get();
  if (!t) return 0;
  uint8_t want[32];
  memcpy(want, f->hashes + 32 * i, 32);
  uint64_t len = f->offs[i + 1] - f->offs[i];
  size_t block = nob_get(s, want, len, t->cvs, OB_MAX_BLOCKS);
  int fetched = 0, rc = NCACHE_OK;
  pthread_mutex_unlock(&s->lock);
  if (!block) fetched = (rc = ncache_outboard(s->cache, want, len, &block, t->cvs, OB_MAX_BLOCKS)) == NCACHE_OK;
  if (rc == NCACHE_OK) {
    size_t b0 = (size_t)(from / block), b1 = (size_t)((to - 1) / block);
    char *buf = tl_buf(t, k, (b1 - b0 + 1) * block);
    rc = buf ? ncache_load_part(s->cache, want, len, block, t->cvs, b0, b1, buf) : NCACHE_MISS;
    p->i = i;
    p->lo = (uint64_t)b0 * block;
    p->hi = (uint64_t)(b1 + 1) * block < len ? (uint64_t)(b1 + 1) * block : len;
    p->buf = buf;
  }
  pthread_mutex_lock(&s->lock);
  if (fetched) nob_put(s, want, block, t->cvs, ntree_blocks(len, block));
  return rc == NCACHE_OK;
}

/*
 * A chunk in neither the store nor the host cache that a native fetch is bringing (nread_expect):
 * waits for it with the lock released (the fetch offers it to this store first: the caller then
 * finds it resident, else in the host cache). 0 at once when not expected, or when max_waiters
 * READs of this store wait already (a worker stays free for everything else). Lock held.
 */
static int await_fetch(nstore *s, const uint8_t *hash) {
  if (s->waiting >= s->max_waiters) return 0;
  uint8_t want[32];
  memcpy(want, hash, 32);
  s->waiting++;
  pthread_mutex_unlock(&s->lock);
  int was = await_expected(s, want);
  pthread_mutex_lock(&s->lock);
  s->waiting--;
  s->await_timeouts += was == 2;
  return was == 1;
}

int nread_serve(nstore *s, fuse_req_t req, uint64_t fh, uint64_t ino, size_t size, off_t off, double *ahead) {
  *ahead = -1;
  if (!s || s->budget == 0 || s->closed || off < 0) return 0;
  uint64_t t0 = now_ns();
  nchunk *pieces[MAX_PIECES], *own[MAX_LOADS];
  part parts[MAX_PARTS];
  struct iovec iov[MAX_PIECES];
  uint8_t probe[WINDOW][32];
  long probe_at[WINDOW];
  int n = 0, nown = 0, nparts = 0, nprobe = 0, ok = 0, cached = ncache_on(s->cache), whole = 0, awaits = 0;
  size_t sent = 0;
  long last = -1, window_end = -1, entered = -1, miss_at = -1;
  pthread_mutex_lock(&s->lock);
  /* Near where the handle's latest READ ends (either side): a sequential reader's READ, even out of order. */
  nfile *f0 = file_find(s, fh);
  int near = 0;
  if (f0 && f0->ino == ino) {
    near = (uint64_t)off <= f0->last_end + SEQ_BYTES && (uint64_t)off + SEQ_BYTES >= f0->last_end;
    f0->last_end = (uint64_t)off + size;
  }
  for (int tries = 0; tries < 4 * MAX_LOADS; tries++) {
    nfile *f = file_find(s, fh);
    if (!f || f->ino != ino) break;
    uint64_t start = (uint64_t)off, end = start + size;
    if (end > f->size) end = f->size;
    if (start >= end) {
      ok = 1;
      break;
    }
    size_t miss = 0;
    long first = -1;
    int r = cover(s, f, start, end, own, nown, parts, nparts, pieces, iov, &n, &miss, &first, &last);
    if (r == 1) {
      ok = 1;
      if (!cached && last > f->ahead) *ahead = (double)(f->ahead = last); /* a reader entered a new chunk */
      /* With the host cache, a sequential reader that entered a new chunk: the next one is loaded
       * after the reply, and JavaScript loads only from the first chunk within WINDOW that is
       * neither here nor there. A random reader loads nothing ahead. */
      int seq = first == f->entered || first == f->entered + 1, fresh = last > f->entered;
      f->entered = last;
      if (cached && seq && fresh) {
        entered = last;
        for (long j = (f->checked > last ? f->checked : last) + 1; j <= last + WINDOW && j < (long)f->n; j++) {
          window_end = j;
          if (nc_find(s, f->hashes + 32 * j)) continue;
          memcpy(probe[nprobe], f->hashes + 32 * j, 32);
          probe_at[nprobe++] = j;
        }
      }
      break;
    }
    miss_at = first;
    if (r < 0 || !cached || nown == MAX_LOADS) break;
    /* A random reader (its READ starts more than 2 chunks from where its last one ended, and more
     * than SEQ_BYTES from where the latest READ to arrive ends: a sequential reader's READs may
     * arrive out of order on the workers) loads the blocks it needs when the chunk has an outboard
     * (else it is loaded whole, once, and its outboard comes out of the verification). */
    int random = !near && (first > f->entered + 2 || first < f->entered - 2);
    uint64_t c0 = f->offs[miss], c1 = f->offs[miss + 1];
    if (random && !whole && nparts < MAX_PARTS && c1 - c0 > NTREE_BLOCK) {
      uint64_t from = (start > c0 ? start : c0) - c0, to = (end < c1 ? end : c1) - c0;
      if (load_part(s, f, miss, from, to, nparts, &parts[nparts])) nparts++;
      else whole = 1;
      continue; /* f may be gone: found again */
    }
    whole = 0;
    int waited = 0;
    nchunk *c = load(s, f, miss, 1, &waited, random);
    if (c) own[nown++] = c;
    /* A random reader's READ goes to JavaScript instead: there its chunk also gets an outboard, for the next READs of blocks. */
    else if (!waited && (random || awaits == MAX_AWAITS || !await_fetch(s, f->hashes + 32 * miss))) break;
    else if (!waited) awaits++;
  }
  if (!ok) {
    s->misses++;
    /* JavaScript answers this READ: the reader is there now (its next READs are sequential from it). */
    nfile *f = miss_at >= 0 ? file_find(s, fh) : NULL;
    if (f && f->ino == ino) f->entered = miss_at;
  }
  pthread_mutex_unlock(&s->lock);
  if (ok) {
    for (int k = 0; k < n; k++) sent += iov[k].iov_len;
    if (n == 0) fuse_reply_buf(req, NULL, 0);
    else fuse_reply_iov(req, iov, n);
  }
  uint64_t t1 = now_ns();
  long first_missing = window_end + 1;
  for (int k = 0; k < nprobe; k++) {
    if (!ncache_has(s->cache, probe[k])) {
      first_missing = probe_at[k];
      break;
    }
  }
  pthread_mutex_lock(&s->lock);
  if (cached && entered >= 0) load_ahead(s, fh, ino, entered + 1);
  for (int k = 0; k < n; k++)
    if (pieces[k]) nc_unref(s, pieces[k]);
  for (int k = 0; k < nown; k++) nc_unref(s, own[k]);
  nfile *f = window_end >= 0 ? file_find(s, fh) : NULL;
  if (f && f->ino == ino) {
    if (first_missing - 1 > f->checked) f->checked = first_missing - 1;
    if (first_missing <= window_end && first_missing - 1 > f->ahead) *ahead = (double)(f->ahead = first_missing - 1);
  }
  if (awaits) s->awaited++;
  if (ok) {
    s->part_served += nparts > 0;
    s->served++;
    s->served_bytes += sent;
    s->served_ns += t1 - t0;
  }
  pthread_mutex_unlock(&s->lock);
  return ok;
}

void nread_release(nstore *s, uint64_t fh) {
  if (!s) return;
  pthread_mutex_lock(&s->lock);
  nf_remove(s, fh);
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
  pthread_mutex_lock(&offers.lock);
  for (int i = 0; i < offers.n; i++)
    if (offers.stores[i] == s) offers.stores[i--] = offers.stores[--offers.n];
  pthread_mutex_unlock(&offers.lock);
  pthread_mutex_lock(&s->lock);
  s->closed = 1;
  nc_free_all(s);
  nopen_free(s);
  for (unsigned b = 0; b < FBUCKETS; b++) {
    while (s->files[b]) {
      nfile *f = s->files[b];
      s->files[b] = f->next;
      file_free(f);
    }
  }
  s->nfiles = 0;
  pthread_mutex_unlock(&s->lock);
}

void nread_stop(nstore *s) {
  if (!s) return;
  __atomic_store_n(&s->stopping, 1, __ATOMIC_RELEASE);
  pthread_mutex_lock(&expects.lock);
  pthread_cond_broadcast(&expects.settled);
  pthread_mutex_unlock(&expects.lock);
}

/* ---------------------------------------------------------------------------------------------- */
/* What the Node-API exports (nread_api.c) do, on the JavaScript thread                            */

int nread_register(nstore *s, uint64_t fh, uint64_t ino, uint64_t size, size_t n, const double *offs, const uint8_t *hashes) {
  if (offs[0] != 0 || (uint64_t)offs[n] != size) return -1;
  nfile *f = calloc(1, sizeof *f);
  f->fh = fh;
  f->ino = ino;
  f->size = size;
  f->n = n;
  f->offs = malloc((n + 1) * sizeof(uint64_t));
  for (size_t i = 0; i <= n; i++) f->offs[i] = (uint64_t)offs[i];
  f->hashes = malloc(n ? 32 * n : 1);
  memcpy(f->hashes, hashes, 32 * n);
  f->ahead = f->entered = f->checked = -1;
  pthread_mutex_lock(&s->lock);
  if (s->closed) {
    pthread_mutex_unlock(&s->lock);
    file_free(f);
    return 0;
  }
  nf_insert(s, f);
  pthread_mutex_unlock(&s->lock);
  return 0;
}

uint32_t nread_drop_ino(nstore *s, uint64_t ino) {
  uint32_t dropped = 0;
  pthread_mutex_lock(&s->lock);
  nopen_forget(s, ino);
  for (unsigned b = 0; s->nfiles > 0 && b < FBUCKETS; b++) {
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
  return dropped;
}

void nread_figures(nstore *s, uint64_t out[NREAD_FIGURES]) {
  pthread_mutex_lock(&s->lock);
  uint64_t v[NREAD_FIGURES] = {s->served,   s->served_bytes, s->served_ns, s->misses, s->puts,   s->put_bytes,   s->evictions,
                               s->bytes,    s->nchunks,      s->nfiles,    s->budget, s->part_served, s->ob_bytes,
                               __atomic_load_n(&s->offered, __ATOMIC_RELAXED), s->awaited, s->await_timeouts};
  pthread_mutex_unlock(&s->lock);
  memcpy(out, v, sizeof v);
}

ncache *nread_cache(nstore *s) { return s ? s->cache : NULL; }