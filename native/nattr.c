/*
 * nattr: attributes answered by the workers without JavaScript (see nattr.h for the rules).
 *
 * A direct-mapped table of NATTR_SLOTS slots by inode number (numbers are handed out in order, so
 * recent inodes rarely collide; a collision only costs a trip to JavaScript), one mutex: a
 * lookup copies one slot under it. A slot is current when its generation is the table's.
 */
#define _GNU_SOURCE
#define FUSE_USE_VERSION 34
#include <fuse_lowlevel.h>

#include "nattr.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NATTR_SLOTS 65536
#define NNAME_BUCKETS 65536
/* Names kept at most; past it they are all dropped (the next lookups in JavaScript register again). */
#define NNAMES_MAX (1u << 18)

/*
 * Changes are numbered (`gen`). `all` is the number of the last change of unknown scope; a slot's
 * `floor` the number of the last change of an inode that maps to it (whichever: a collision only
 * makes it stricter). Attributes kept at `kept` are current while kept >= all and kept >= floor.
 */
typedef struct {
  uint64_t ino; /* 0: empty */
  uint64_t kept, floor;
  struct stat st;
  double timeout;
} slot;

/* A name JavaScript answered: kept at `kept`, current while the directory's slot says so (nattr.h, "Names"). */
struct nname {
  struct nname *next; /* a request's list, or a bucket's chain */
  uint64_t parent, ino, kept;
  uint32_t hash;
  double timeout;
  char name[];
};

/* An inode the table may answer a LOOKUP with, and the lookups answered with it the kernel still holds. */
typedef struct {
  uint64_t ino; /* 0: empty */
  uint64_t count;
} held;

struct nattr {
  pthread_mutex_t lock;
  uint64_t gen, all;
  uint64_t hits, misses, kept, bumps;
  uint64_t name_hits, name_misses, names_kept;
  slot slots[NATTR_SLOTS];
  nname *buckets[NNAME_BUCKETS];
  size_t nnames;
  held *helds; /* open addressing, linear probing, nheld_cap a power of two */
  size_t nheld, nheld_cap;
};

nattr *nattr_new(void) {
  nattr *a = calloc(1, sizeof *a);
  pthread_mutex_init(&a->lock, NULL);
  a->gen = 1;
  return a;
}

static void names_clear(nattr *a) {
  for (unsigned b = 0; b < NNAME_BUCKETS && a->nnames > 0; b++) {
    for (nname *n = a->buckets[b], *x; n; n = x) x = n->next, free(n), a->nnames--;
    a->buckets[b] = NULL;
  }
}

void nattr_free(nattr *a) {
  if (!a) return;
  names_clear(a);
  free(a->helds);
  pthread_mutex_destroy(&a->lock);
  free(a);
}

uint64_t nattr_gen(nattr *a) {
  pthread_mutex_lock(&a->lock);
  uint64_t g = a->gen;
  pthread_mutex_unlock(&a->lock);
  return g;
}

/* Whether attributes of `ino` are current; lock held. */
static int attr_current(nattr *a, uint64_t ino) {
  slot *s = &a->slots[ino % NATTR_SLOTS];
  return ino != 0 && s->ino == ino && s->kept != 0 && s->kept >= a->all && s->kept >= s->floor;
}

int nattr_get(nattr *a, uint64_t ino, struct stat *st, double *timeout) {
  slot *s = &a->slots[ino % NATTR_SLOTS];
  pthread_mutex_lock(&a->lock);
  int hit = attr_current(a, ino);
  if (hit) {
    *st = s->st;
    *timeout = s->timeout;
    a->hits++;
  } else {
    a->misses++;
  }
  pthread_mutex_unlock(&a->lock);
  return hit;
}

/* A change of `scope` (NATTR_INODE: of the n inodes `inos` only), numbered; lock held. */
static void stamp(nattr *a, int scope, const uint64_t *inos, int n) {
  a->gen++;
  a->bumps++;
  if (scope == NATTR_INODE)
    for (int i = 0; i < n; i++) a->slots[inos[i] % NATTR_SLOTS].floor = a->gen;
  else a->all = a->gen;
}

void nattr_bump(nattr *a) {
  pthread_mutex_lock(&a->lock);
  stamp(a, NATTR_ALL, NULL, 0);
  pthread_mutex_unlock(&a->lock);
}

void nattr_push(nattr_item **list, uint64_t ino, const struct stat *st, double timeout) {
  if (ino == 0 || !(timeout > 0)) return;
  nattr_item *it = malloc(sizeof *it);
  it->ino = ino;
  it->st = *st;
  it->timeout = timeout;
  it->keep = 0;
  it->next = *list;
  *list = it;
}

/* FNV-1a of a directory and a name. */
static uint32_t name_hash(uint64_t parent, const char *name) {
  uint32_t h = 2166136261u;
  for (int i = 0; i < 8; i++) h = (h ^ (uint8_t)(parent >> (8 * i))) * 16777619u;
  for (const unsigned char *p = (const unsigned char *)name; *p; p++) h = (h ^ *p) * 16777619u;
  return h;
}

static nname *name_find(nattr *a, uint64_t parent, const char *name, uint32_t h) {
  for (nname *n = a->buckets[h % NNAME_BUCKETS]; n; n = n->next)
    if (n->hash == h && n->parent == parent && strcmp(n->name, name) == 0) return n;
  return NULL;
}

static size_t held_index(const nattr *a, uint64_t ino) { return (size_t)((ino * 0x9e3779b97f4a7c15ull) >> 20) & (a->nheld_cap - 1); }

/* The record of `ino` among the held inodes, or NULL; lock held. */
static held *held_find(nattr *a, uint64_t ino) {
  if (!a->nheld_cap) return NULL;
  for (size_t i = held_index(a, ino);; i = (i + 1) & (a->nheld_cap - 1)) {
    if (a->helds[i].ino == ino) return &a->helds[i];
    if (a->helds[i].ino == 0) return NULL;
  }
}

static void held_insert(nattr *a, uint64_t ino, uint64_t count) {
  for (size_t i = held_index(a, ino);; i = (i + 1) & (a->nheld_cap - 1)) {
    if (a->helds[i].ino == 0) {
      a->helds[i] = (held){ino, count};
      a->nheld++;
      return;
    }
  }
}

/* `ino` may be answered with (count kept when it is already); lock held. Out of memory it is not
   (its names then only miss: nattr_lookup answers only held inodes). */
static void held_add(nattr *a, uint64_t ino) {
  if (held_find(a, ino)) return;
  if ((a->nheld + 1) * 2 > a->nheld_cap) {
    size_t cap = a->nheld_cap, bigger = cap ? cap * 2 : 1024;
    held *old = a->helds, *table = calloc(bigger, sizeof(held));
    if (!table) return;
    a->helds = table;
    a->nheld_cap = bigger;
    a->nheld = 0;
    for (size_t i = 0; i < cap; i++)
      if (old[i].ino) held_insert(a, old[i].ino, old[i].count);
    free(old);
  }
  held_insert(a, ino, 0);
}

/* Removes record `h` (backward-shift deletion: no tombstones); lock held. */
static void held_remove(nattr *a, held *h) {
  size_t mask = a->nheld_cap - 1, i = (size_t)(h - a->helds);
  for (size_t j = (i + 1) & mask; a->helds[j].ino; j = (j + 1) & mask) {
    size_t home = held_index(a, a->helds[j].ino);
    /* entry j may move to the hole at i when its home is not in (i, j] (cyclically) */
    if (((j - home) & mask) >= ((j - i) & mask)) {
      a->helds[i] = a->helds[j];
      i = j;
    }
  }
  a->helds[i] = (held){0, 0};
  a->nheld--;
}

void nattr_name_push(nname **list, uint64_t parent, const char *name, uint64_t ino, double timeout) {
  if (parent == 0 || ino == 0 || !(timeout > 0)) return;
  size_t len = strlen(name);
  nname *n = malloc(sizeof *n + len + 1);
  if (!n) return; /* out of memory: the name is not left (its LOOKUPs go to JavaScript) */
  memcpy(n->name, name, len + 1);
  n->parent = parent;
  n->ino = ino;
  n->timeout = timeout;
  n->kept = 0;
  n->hash = name_hash(parent, name);
  n->next = *list;
  *list = n;
}

void nattr_names_free(nname **list) {
  for (nname *n = *list, *x; n; n = x) x = n->next, free(n);
  *list = NULL;
}

/* Keeps the names of `list` read at `since` with nothing of their directories changed since (lock held; frees the list). */
static void names_settle(nattr *a, uint64_t since, nname **list) {
  nname *n = *list, *x;
  *list = NULL;
  int clean = a->all <= since;
  for (; n; n = x) {
    x = n->next;
    if (!clean || a->slots[n->parent % NATTR_SLOTS].floor > since) {
      free(n);
      continue;
    }
    if (a->nnames >= NNAMES_MAX) names_clear(a);
    nname *old = name_find(a, n->parent, n->name, n->hash);
    if (old) {
      old->ino = n->ino;
      old->timeout = n->timeout;
      old->kept = a->gen;
      free(n);
    } else {
      n->kept = a->gen;
      n->next = a->buckets[n->hash % NNAME_BUCKETS];
      a->buckets[n->hash % NNAME_BUCKETS] = n;
      a->nnames++;
    }
    held_add(a, old ? old->ino : n->ino);
    a->names_kept++;
  }
}

int nattr_lookup(nattr *a, uint64_t parent, const char *name, struct fuse_entry_param *e) {
  uint32_t h = name_hash(parent, name);
  pthread_mutex_lock(&a->lock);
  nname *n = name_find(a, parent, name, h);
  held *k = NULL;
  int hit = n && n->kept >= a->all && n->kept >= a->slots[parent % NATTR_SLOTS].floor && attr_current(a, n->ino) &&
            (k = held_find(a, n->ino)) != NULL;
  if (hit) {
    slot *s = &a->slots[n->ino % NATTR_SLOTS];
    memset(e, 0, sizeof *e);
    e->ino = n->ino;
    e->attr = s->st;
    e->attr_timeout = s->timeout;
    e->entry_timeout = n->timeout;
    k->count++; /* the kernel holds one more lookup of it once answered */
    a->name_hits++;
  } else {
    a->name_misses++;
  }
  pthread_mutex_unlock(&a->lock);
  return hit;
}

uint64_t nattr_forget(nattr *a, uint64_t ino, uint64_t n, int *emptied) {
  *emptied = 0;
  pthread_mutex_lock(&a->lock);
  held *k = held_find(a, ino);
  if (k && k->count > 0) {
    uint64_t take = n < k->count ? n : k->count;
    k->count -= take;
    n -= take;
    *emptied = k->count == 0;
  }
  pthread_mutex_unlock(&a->lock);
  return n;
}

int nattr_release(nattr *a, uint64_t ino) {
  pthread_mutex_lock(&a->lock);
  held *k = held_find(a, ino);
  int free_to_go = !k || k->count == 0;
  if (k && free_to_go) held_remove(a, k);
  pthread_mutex_unlock(&a->lock);
  return free_to_go;
}

void nattr_settle(nattr *a, uint64_t since, int scope, const uint64_t *inos, int n, nattr_item **list, nname **names) {
  nattr_item *it = *list;
  *list = NULL;
  if (scope == NATTR_NONE && !it && !*names) return;
  pthread_mutex_lock(&a->lock);
  if (*names) names_settle(a, since, names); /* names come with lookups, which change nothing */
  /* Which items were read with nothing of theirs changed since `since` (this request's own change aside)... */
  int clean = a->all <= since;
  for (nattr_item *i = it; i; i = i->next) i->keep = clean && a->slots[i->ino % NATTR_SLOTS].floor <= since;
  /* ...then this request's change, then they are kept as current. */
  if (scope != NATTR_NONE) stamp(a, scope, inos, n);
  for (nattr_item *i = it; i; i = i->next) {
    if (!i->keep) continue;
    slot *s = &a->slots[i->ino % NATTR_SLOTS];
    s->ino = i->ino;
    s->kept = a->gen;
    s->st = i->st;
    s->timeout = i->timeout;
    a->kept++;
  }
  pthread_mutex_unlock(&a->lock);
  while (it) {
    nattr_item *n = it->next;
    free(it);
    it = n;
  }
}

void nattr_stats(nattr *a, uint64_t out[NATTR_STATS]) {
  pthread_mutex_lock(&a->lock);
  out[0] = a->hits;
  out[1] = a->misses;
  out[2] = a->kept;
  out[3] = a->bumps;
  out[4] = a->name_hits;
  out[5] = a->name_misses;
  out[6] = a->names_kept;
  out[7] = a->nheld;
  pthread_mutex_unlock(&a->lock);
}
