/*
 * nstore: the internals of native cached reads shared by nread.c (layouts, serving READs) and
 * nchunks.c (the bounded store of verified chunk bytes). Not an interface: see nread.h.
 */
#ifndef CAIRN_NSTORE_H
#define CAIRN_NSTORE_H

#include "nread.h"
#include "ncache.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define NBUCKETS (1u << 16)
#define FBUCKETS 1024u
/* Pieces per natively served read: more (tiny chunks) go to JavaScript. */
#define MAX_PIECES 32
/* Chunks one READ may load from the host cache; chunks being loaded at once (per mount). */
#define MAX_LOADS 8
#define INFLIGHT 32
/* Chunks after a reader's that must be at hand (resident or in the host cache) before JavaScript is asked to load. */
#define WINDOW 8
/* A READ starting within this many bytes of where the handle's latest READ ends is sequential (its
 * READs in flight at once may reach the workers out of order; the kernel's read-ahead is 1 MiB). */
#define SEQ_BYTES ((uint64_t)2 << 20)
/* Buffers of evicted chunks kept for the next loads (fresh memory costs a page fault per 4 KiB). */
#define POOL_MAX 32
#define POOL_BYTES ((size_t)24 << 20)
/* Chunk buffers are allocated in steps of this (chunks vary in size: a pooled buffer then fits more). */
#define POOL_STEP ((size_t)256 << 10)

/* Verified outboards kept (direct-mapped by name; a collision replaces): 32 bytes per 32 KiB block,
 * so ~1 KiB per MiB of chunk, ~16 MiB at most for 1 MiB chunks. Bigger outboards are not kept. */
#define OB_SLOTS 16384u
#define OB_MAX_BLOCKS 2048u
/* Chunk parts one READ may load (blocks verified against an outboard, held by the worker thread). */
#define MAX_PARTS 2
/* How long a READ waits for a chunk a native fetch was expected to offer before going to JavaScript. */
#define AWAIT_MS 10000
/* Chunks one READ may wait for. */
#define MAX_AWAITS 4

typedef struct nob {
  uint8_t hash[32];
  uint32_t block, n; /* n = 0: empty slot */
  uint8_t *cvs;
} nob;

typedef struct nchunk {
  uint8_t hash[32];
  char *data;
  size_t len, cap;
  int refs;     /* 1 while in the store, +1 per reply being written */
  int resident; /* in the table and the LRU */
  struct nchunk *hnext, *prev, *next;
} nchunk;

typedef struct nfile {
  uint64_t fh, ino, size;
  size_t n;
  uint64_t *offs; /* n + 1: chunk i covers [offs[i], offs[i+1]) */
  uint8_t *hashes;
  long ahead;    /* last chunk index reported to JavaScript */
  long entered;  /* last chunk of the latest natively served read (the next is sequential when it starts there or just after) */
  long checked;  /* chunks up to here were found resident or in the host cache */
  uint64_t last_end; /* where the latest READ to arrive ends (sequential detection, in bytes) */
  struct nfile *next;
} nfile;

/* A file's layout registered by inode for native opens (nopen.c); offs NULL: empty slot. */
typedef struct nlayout {
  uint64_t ino, size;
  size_t n;
  uint64_t *offs;
  uint8_t *hashes;
} nlayout;

/* An open handle answered natively (nopen.c): the one record JavaScript's open-file table reads. */
typedef struct nopen {
  uint64_t fh, ino;
  uint32_t pid;
  struct nopen *next;
} nopen;
#define OBUCKETS 256u

struct nstore {
  pthread_mutex_t lock;
  size_t budget, bytes;
  nchunk **buckets;
  nchunk *head, *tail; /* head: most recent */
  nfile *files[FBUCKETS];
  size_t nfiles, nchunks;
  int closed;   /* unmounted: nothing more is kept */
  int stopping; /* unmounting: no READ waits for a fetch (atomic) */
  ncache *cache; /* the host chunk cache, read and verified here (ncache.c) */
  pthread_cond_t loaded; /* a load from the host cache ended */
  uint8_t inflight[INFLIGHT][32];
  uint8_t inflight_used[INFLIGHT];
  struct {
    char *data;
    size_t cap;
  } pool[POOL_MAX];
  int npool;
  size_t pool_bytes;
  nlayout *layouts; /* nopen.c: layouts by inode (direct-mapped) */
  size_t layout_bytes;
  nopen *opens[OBUCKETS];
  size_t nopens;
  uint64_t next_fh, native_opens, native_releases;
  nob *obs;        /* OB_SLOTS verified outboards */
  size_t ob_bytes; /* their CVs' bytes */
  /* figures */
  uint64_t part_served, served, served_bytes, served_ns, misses, puts, put_bytes, evictions;
  uint64_t offered; /* chunks kept from native fetches (nread_offer; atomic) */
  uint64_t awaited, await_timeouts; /* READs that waited for a native fetch's chunk (nread_expect); that gave up after AWAIT_MS */
  int waiting, max_waiters; /* READs waiting for a native fetch now; at most */
};

/* nread.c, with the lock held: adds a layout of handle f->fh (replacing one); removes one. */
void nf_insert(nstore *s, nfile *f);
void nf_remove(nstore *s, uint64_t fh);

/* nopen.c, with the lock held: forgets the layout of inode ino (every one: ino 0); frees everything (unmount). */
void nopen_forget(nstore *s, uint64_t ino);
void nopen_free(nstore *s);

/* nchunks.c; every one with the lock held. */
nchunk *nc_find(nstore *s, const uint8_t *hash);
/* Moves a resident chunk to the front of the LRU. */
void nc_touch(nstore *s, nchunk *c);
/* A chunk of bytes `data` (taken over; `cap` bytes of memory), referenced once by the caller. */
nchunk *nc_new(const uint8_t *hash, char *data, size_t len, size_t cap);
/* Keeps c (its caller's reference becomes the store's); 0 when not kept (closed, too big, present). */
int nc_insert(nstore *s, nchunk *c);
/* Drops a reference; the last one frees the chunk, its buffer to the pool. */
void nc_unref(nstore *s, nchunk *c);
/* A pooled buffer for len bytes (not over 1.5 len), with *cap its size; NULL: none fits. */
char *nc_take(nstore *s, size_t len, size_t *cap);
void nc_give(nstore *s, char *data, size_t cap);
/* The size to allocate for a chunk of len bytes (a multiple of POOL_STEP). */
size_t nc_size(size_t len);
/* The verified outboard of chunk `hash` (`len` bytes) into cvs (at most max CVs): its block size, 0 when none is kept. */
size_t nob_get(nstore *s, const uint8_t *hash, uint64_t len, uint8_t *cvs, size_t max);
/* Keeps a verified outboard (n CVs of blocks of `block` bytes). */
void nob_put(nstore *s, const uint8_t *hash, size_t block, const uint8_t *cvs, size_t n);
/* Frees every chunk, outboard and pooled buffer (unmount). */
void nc_free_all(nstore *s);

#endif
