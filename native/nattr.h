/*
 * nattr: the attributes a worker thread answers GETATTR with itself, without JavaScript.
 *
 * JavaScript's own answers fill it: every reply that carries attributes with a timeout (getattr,
 * setattr, lookup, create, mkdir...) leaves them here, and a request may add others it read
 * (`attrStage`: the parent directory of a create, whose attributes the kernel drops and fetches
 * again at once). An attribute is answered natively only while nothing changed since it was read:
 *
 * - changes are numbered: every answer to a request that may change something is one, numbered
 *   before the kernel gets the answer: of its inode's attributes only (write, setattr, fallocate,
 *   fsync, flush, xattr changes, an open for writing), or of anything (create, mkdir,
 *   mknod, symlink, link, unlink, rmdir, rename, and any other request but those that change
 *   nothing: lookup, getattr, read, readdir, readlink, xattr reads, access, opendir, releasedir,
 *   an open for reading without O_TRUNC, a release) — unless JavaScript's answer names every
 *   inode it changed (`attrTouch`: a create's new inode, an unlinked or renamed inode, one a rename
 *   replaced), when the change is of those and of the request's inodes (the directories) only;
 *   JavaScript numbers changes of its own (a reload,
 *   the removal of a hidden file at a release: `attrBump`, of anything). Attributes kept before a
 *   change that may touch them are never answered again;
 * - a request notes the number of the last change when a worker receives it; an attribute its
 *   answer carries is kept only if no change that may touch it was answered since (but the
 *   request's own), so attributes read before a change that completed meanwhile are never kept.
 *
 * A GETATTR answered from here is one that JavaScript would answer with the same attributes at
 * that moment; one racing a change not yet answered may get the attributes from before it, as
 * it may from JavaScript (the change has not completed) and from the kernel's own cache.
 */
#ifndef CAIRN_NATTR_H
#define CAIRN_NATTR_H

#include <stdint.h>
#include <sys/stat.h>

typedef struct nattr nattr;

/* Attributes a request's answer leaves in the table (a short list owned by the request). */
typedef struct nattr_item {
  struct nattr_item *next;
  uint64_t ino;
  struct stat st;
  double timeout;
  int keep; /* nattr_settle's */
} nattr_item;

/* What answering a request may have changed: nothing, the attributes of some inodes only, anything. */
enum { NATTR_NONE = 0, NATTR_INODE = 1, NATTR_ALL = 2 };

nattr *nattr_new(void);
void nattr_free(nattr *a);
/* The current generation (noted by a request when a worker receives it). */
uint64_t nattr_gen(nattr *a);
/* 1 and the attributes of `ino` when they are current, else 0. */
int nattr_get(nattr *a, uint64_t ino, struct stat *st, double *timeout);
/* A change not answered through a request (a reload): every slot becomes stale. */
void nattr_bump(nattr *a);
/* Adds attributes to a request's list (it takes the list's ownership on settle). */
void nattr_push(nattr_item **list, uint64_t ino, const struct stat *st, double timeout);
/*
 * A request noted at generation `since` is answered, having changed `scope` (NATTR_INODE: the
 * attributes of the `n` inodes `inos`): the change is numbered, and each item is kept when nothing
 * that could change it (but this request) was answered since `since`; the items are freed (the list emptied).
 */
void nattr_settle(nattr *a, uint64_t since, int scope, const uint64_t *inos, int n, nattr_item **list);
/* Figures: GETATTRs answered here, not answered here, attributes kept, generation bumps. */
void nattr_stats(nattr *a, uint64_t out[4]);

#endif
