/*
 * nattr: attributes answered by the workers without JavaScript (see nattr.h for the rules).
 *
 * A direct-mapped table of NATTR_SLOTS slots by inode number (numbers are handed out in order, so
 * recent inodes rarely collide; a collision only costs a trip to JavaScript), one mutex: a
 * lookup copies one slot under it. A slot is current when its generation is the table's.
 */
#define _GNU_SOURCE
#include "nattr.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NATTR_SLOTS 65536

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

struct nattr {
  pthread_mutex_t lock;
  uint64_t gen, all;
  uint64_t hits, misses, kept, bumps;
  slot slots[NATTR_SLOTS];
};

nattr *nattr_new(void) {
  nattr *a = calloc(1, sizeof *a);
  pthread_mutex_init(&a->lock, NULL);
  a->gen = 1;
  return a;
}

void nattr_free(nattr *a) {
  if (!a) return;
  pthread_mutex_destroy(&a->lock);
  free(a);
}

uint64_t nattr_gen(nattr *a) {
  pthread_mutex_lock(&a->lock);
  uint64_t g = a->gen;
  pthread_mutex_unlock(&a->lock);
  return g;
}

int nattr_get(nattr *a, uint64_t ino, struct stat *st, double *timeout) {
  slot *s = &a->slots[ino % NATTR_SLOTS];
  pthread_mutex_lock(&a->lock);
  int hit = ino != 0 && s->ino == ino && s->kept != 0 && s->kept >= a->all && s->kept >= s->floor;
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

void nattr_settle(nattr *a, uint64_t since, int scope, const uint64_t *inos, int n, nattr_item **list) {
  nattr_item *it = *list;
  *list = NULL;
  if (scope == NATTR_NONE && !it) return;
  pthread_mutex_lock(&a->lock);
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

void nattr_stats(nattr *a, uint64_t out[4]) {
  pthread_mutex_lock(&a->lock);
  out[0] = a->hits;
  out[1] = a->misses;
  out[2] = a->kept;
  out[3] = a->bumps;
  pthread_mutex_unlock(&a->lock);
}
