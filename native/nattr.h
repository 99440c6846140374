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
 *
 * Names. A LOOKUP JavaScript answers may leave the names of the directory it looked in
 * (`nameStage`: name -> inode, entry timeout; src/fuse/lowlevel-lookups.ts says when). They are
 * kept as attributes are (read with nothing of the directory changed since the request was
 * received), and are current while the directory's attributes would be: every change of a
 * directory's names is a change of that directory's inode (create, mknod, mkdir, symlink, link,
 * unlink, rmdir and rename name their directories) or of anything (a reload). A LOOKUP of a
 * current name whose inode has current attributes is answered here (`nattr_lookup`).
 *
 * Lookup counts. The kernel counts every entry answered, and FORGETs the sum; JavaScript's inode
 * table counts its own answers only. So the inodes names may be answered with are `held` here,
 * with the lookups answered natively and not yet forgotten: a FORGET takes from that count first
 * and only the rest goes to JavaScript (`nattr_forget`; a FORGET of 0 tells it the count emptied),
 * and JavaScript drops an inode only when none is held (`nattr_release`, under the same lock as
 * the lookups: one either happens before the other, or the drop is refused).
 */
#ifndef CAIRN_NATTR_H
#define CAIRN_NATTR_H

#include <stdint.h>
#include <sys/stat.h>

typedef struct nattr nattr;
/* A name a request's answer leaves (a list owned by the request until settled). */
typedef struct nname nname;
struct fuse_entry_param;

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
void nattr_settle(nattr *a, uint64_t since, int scope, const uint64_t *inos, int n, nattr_item **list, nname **names);
/* Adds a name of directory `parent` to a request's list. */
void nattr_name_push(nname **list, uint64_t parent, const char *name, uint64_t ino, double timeout);
void nattr_names_free(nname **list);
/* 1 and the entry of `name` in `parent` when current (its lookup counted held), else 0. */
int nattr_lookup(nattr *a, uint64_t parent, const char *name, struct fuse_entry_param *e);
/* A FORGET of `n` lookups of `ino`: takes the natively answered first; returns the rest (JavaScript's). */
uint64_t nattr_forget(nattr *a, uint64_t ino, uint64_t n, int *emptied);
/* JavaScript may drop `ino` (1: it is no longer answered with), or not (0: the kernel holds native lookups of it). */
int nattr_release(nattr *a, uint64_t ino);
#define NATTR_STATS 8
/* Figures: GETATTRs answered here, not answered here, attributes kept, generation bumps, LOOKUPs
 * answered here, not answered here, names kept, inodes held. */
void nattr_stats(nattr *a, uint64_t out[NATTR_STATS]);

#endif
