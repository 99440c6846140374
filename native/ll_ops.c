/*
 * ll_ops: the libfuse low-level request table, run on the worker threads. Each handler either
 * answers at once (forget, statfs, fsyncdir, init; GETATTR and LOOKUP from nattr.h, OPEN/READ/FLUSH/RELEASE
 * of natively served handles from nread.h, getxattr of security.* while JavaScript says no entry
 * has them) or copies what the request carries into a creq and posts it to JavaScript
 * (ll_post.c): the request buffer is libfuse's and is reused once the handler returns.
 */
#define _GNU_SOURCE
#include "ll.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

/* Answers a READ from verified resident chunks (1), else 0; tells JavaScript when to load ahead. */
static int nread_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  cmount *m = fuse_req_userdata(req);
  double ahead = -1;
  if (!fi || !nread_serve(m->ns, req, fi->fh, ino, size, off, &ahead)) return 0;
  if (ahead >= 0) {
    creq *r = creq_new(OP_NREAD_AHEAD, NULL, (fuse_ino_t)fi->fh);
    r->n[0] = ahead;
    creq_post(m, r);
  }
  return 1;
}

static char *dupstr(const char *s) { return s ? strdup(s) : NULL; }

/* Whether s is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF). */
static int utf8_ok(const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p;) {
    unsigned c = *p;
    int n = c < 0x80 ? 0 : c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : -1;
    if (n < 0) return 0;
    /* the second byte's range where the first byte narrows it (overlongs, surrogates, > U+10FFFF) */
    unsigned lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80, hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
    p++;
    for (int i = 0; i < n; i++, p++) {
      if (*p < (i ? 0x80 : lo) || *p > (i ? 0xbf : hi)) return 0;
    }
  }
  return 1;
}

/*
 * Names and symlink targets are UTF-8 in a volume (its paths are strings: docs/SEMANTICS.md): a
 * request carrying other bytes is answered here, with err (ENOENT where it looks a name up: no such
 * name can exist; EILSEQ where it would make one), and 1 returned. JavaScript would receive such
 * bytes as U+FFFD, so different names would share one entry.
 */
static int refuse_non_utf8(fuse_req_t req, const char *s, int err) {
  if (!s || utf8_ok(s)) return 0;
  fuse_reply_err(req, err);
  return 1;
}

static void ll_init(void *ud, struct fuse_conn_info *conn) {
  cmount *m = ud;
  conn->max_write = m->max_write;
  conn->max_readahead = m->max_readahead;
  conn->max_background = 64;
  /* Times are whole milliseconds in a volume: the kernel's own (a write's mtime with the writeback
     cache, a UTIME_NOW) are cut to them too, so a stat never shows digits a commit drops. */
  conn->time_gran = 1000000;
  conn->congestion_threshold = 48;
  if (conn->capable & FUSE_CAP_READDIRPLUS) conn->want |= FUSE_CAP_READDIRPLUS;
  conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
  if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
  if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  if (m->writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE)) conn->want |= FUSE_CAP_WRITEBACK_CACHE;
  else conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  conn->want &= ~FUSE_CAP_POSIX_LOCKS;
  conn->want &= ~FUSE_CAP_FLOCK_LOCKS;
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  if (refuse_non_utf8(req, name, ENOENT)) return;
  struct fuse_entry_param e;
  if (nattr_lookup(((cmount *)fuse_req_userdata(req))->na, parent, name, &e)) {
    fuse_reply_entry(req, &e); /* a current name JavaScript answered, and its current attributes (nattr.h) */
    return;
  }
  creq *r = creq_new(OP_LOOKUP, req, parent);
  r->s1 = dupstr(name);
  creq_post(r->m, r);
}

static void post_forget(cmount *m, fuse_ino_t ino, uint64_t n) {
  creq *r = creq_new(OP_FORGET, NULL, ino);
  r->n[0] = (double)n;
  creq_post(m, r);
}

/* The lookups answered natively are forgotten here first; JavaScript gets the rest, or a FORGET of 0
   when the native count emptied (it may then drop the inode: nattr.h, "Lookup counts"). */
static void forget(cmount *m, fuse_ino_t ino, uint64_t n) {
  int emptied;
  uint64_t rest = nattr_forget(m->na, ino, n, &emptied);
  if (rest > 0 || emptied) post_forget(m, ino, rest);
}

static void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  cmount *m = fuse_req_userdata(req);
  fuse_reply_none(req);
  forget(m, ino, nlookup);
}

static void ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
  cmount *m = fuse_req_userdata(req);
  for (size_t i = 0; i < count; i++) forget(m, forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

static double fh_of(struct fuse_file_info *fi) { return fi ? (double)fi->fh : -1; }

static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  cmount *m = fuse_req_userdata(req);
  struct stat st;
  double t;
  if (nattr_get(m->na, ino, &st, &t)) {
    fuse_reply_attr(req, &st, t); /* current attributes JavaScript answered (nattr.h) */
    return;
  }
  creq *r = creq_new(OP_GETATTR, req, ino);
  r->n[0] = fh_of(fi);
  creq_post(r->m, r);
}

/* Whole milliseconds, cut toward the past in integers: a double sum would round 35.999999999 s to 36 s. */
static double ts_ms(const struct timespec *t) {
  return (double)((int64_t)t->tv_sec * 1000 + (int64_t)(t->tv_nsec / 1000000));
}

static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi) {
  creq *r = creq_new(OP_SETATTR, req, ino);
  r->n[0] = to_set;
  r->n[1] = attr->st_mode;
  r->n[2] = (double)attr->st_size;
  r->n[3] = fh_of(fi);
  r->n[4] = ts_ms(&attr->st_atim);
  r->n[5] = ts_ms(&attr->st_mtim);
  r->n[6] = attr->st_uid;
  r->n[7] = attr->st_gid;
  creq_post(r->m, r);
}

static void ll_readlink(fuse_req_t req, fuse_ino_t ino) {
  creq_post(fuse_req_userdata(req), creq_new(OP_READLINK, req, ino));
}

static void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) {
  if (refuse_non_utf8(req, name, EILSEQ)) return;
  creq *r = creq_new(OP_MKNOD, req, parent);
  r->s1 = dupstr(name);
  r->n[0] = mode;
  r->n[1] = (double)rdev;
  creq_post(r->m, r);
}

static void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
  if (refuse_non_utf8(req, name, EILSEQ)) return;
  creq *r = creq_new(OP_MKDIR, req, parent);
  r->s1 = dupstr(name);
  r->n[0] = mode;
  creq_post(r->m, r);
}

static void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) {
  if (refuse_non_utf8(req, name, ENOENT)) return;
  creq *r = creq_new(OP_UNLINK, req, parent);
  r->s1 = dupstr(name);
  creq_post(r->m, r);
}

static void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) {
  if (refuse_non_utf8(req, name, ENOENT)) return;
  creq *r = creq_new(OP_RMDIR, req, parent);
  r->s1 = dupstr(name);
  creq_post(r->m, r);
}

static void ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name) {
  if (refuse_non_utf8(req, name, EILSEQ) || refuse_non_utf8(req, link, EILSEQ)) return;
  creq *r = creq_new(OP_SYMLINK, req, parent);
  r->s1 = dupstr(name);
  r->s2 = dupstr(link);
  creq_post(r->m, r);
}

static void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname,
                      unsigned int flags) {
  if (refuse_non_utf8(req, name, ENOENT) || refuse_non_utf8(req, newname, EILSEQ)) return;
  creq *r = creq_new(OP_RENAME, req, parent);
  r->s1 = dupstr(name);
  r->ino2 = newparent;
  r->s2 = dupstr(newname);
  r->n[0] = flags;
  creq_post(r->m, r);
}

static void ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) {
  if (refuse_non_utf8(req, newname, EILSEQ)) return;
  creq *r = creq_new(OP_LINK, req, ino);
  r->ino2 = newparent;
  r->s1 = dupstr(newname);
  creq_post(r->m, r);
}

static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  uint64_t fh; /* a read-only open of a committed, unchanged file: answered natively (nopen.c) */
  if (nopen_open(((cmount *)fuse_req_userdata(req))->ns, ino, fi->flags, (uint32_t)fuse_req_ctx(req)->pid, &fh)) {
    fi->fh = fh;
    fi->keep_cache = 1;
    fi->noflush = 1; /* nothing to flush: the kernel skips FLUSH on close */
    fuse_reply_open(req, fi);
    return;
  }
  creq *r = creq_new(OP_OPEN, req, ino);
  r->n[0] = fi->flags;
  creq_post(r->m, r);
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  if (nread_read(req, ino, size, off, fi)) return;
  creq *r = creq_new(OP_READ, req, ino);
  r->n[0] = (double)size;
  r->n[1] = (double)off;
  r->n[2] = fh_of(fi);
  creq_post(r->m, r);
}

static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi) {
  creq *r = creq_new(OP_WRITE, req, ino);
  /* The request buffer is reused once this returns: copy. */
  r->data = malloc(size ? size : 1);
  memcpy(r->data, buf, size);
  r->len = size;
  r->n[0] = (double)size;
  r->n[1] = (double)off;
  r->n[2] = fh_of(fi);
  creq_post(r->m, r);
}

static void ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  if (fi && nread_registered(((cmount *)fuse_req_userdata(req))->ns, fi->fh)) {
    fuse_reply_err(req, 0); /* a read-only handle of an unchanged file: nothing to flush */
    return;
  }
  creq *r = creq_new(OP_FLUSH, req, ino);
  r->n[2] = fh_of(fi);
  creq_post(r->m, r);
}

static void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  int native = nopen_release(((cmount *)fuse_req_userdata(req))->ns, fi->fh);
  if (native == 1) { /* opened natively (nopen.c) */
    fuse_reply_err(req, 0);
    return;
  }
  if (!native) nread_release(((cmount *)fuse_req_userdata(req))->ns, fi->fh);
  creq *r = creq_new(OP_RELEASE, req, ino);
  r->n[0] = fi->flags;
  r->n[2] = fh_of(fi);
  creq_post(r->m, r);
}

static void ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  creq *r = creq_new(OP_FSYNC, req, ino);
  r->n[0] = datasync;
  r->n[2] = fh_of(fi);
  creq_post(r->m, r);
}

static void ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  creq *r = creq_new(OP_OPENDIR, req, ino);
  r->n[0] = fi->flags;
  creq_post(r->m, r);
}

static void readdir_common(int op, fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  creq *r = creq_new(op, req, ino);
  r->n[0] = (double)size;
  r->n[1] = (double)off;
  r->n[2] = fh_of(fi);
  creq_post(r->m, r);
}

static void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  readdir_common(OP_READDIR, req, ino, size, off, fi);
}

static void ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  readdir_common(OP_READDIRPLUS, req, ino, size, off, fi);
}

static void ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  creq *r = creq_new(OP_RELEASEDIR, req, ino);
  r->n[2] = fh_of(fi);
  creq_post(r->m, r);
}

static void ll_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  (void)ino;
  (void)datasync;
  (void)fi;
  fuse_reply_err(req, 0);
}

static void ll_statfs(fuse_req_t req, fuse_ino_t ino) {
  (void)ino;
  /* The store has no meaningful capacity: large, fixed figures. */
  struct statvfs st;
  memset(&st, 0, sizeof st);
  st.f_bsize = 4096;
  st.f_frsize = 4096;
  st.f_blocks = st.f_bfree = st.f_bavail = 0x7fffffff;
  st.f_files = st.f_ffree = st.f_favail = 0x7fffffff;
  st.f_namemax = 255;
  fuse_reply_statfs(req, &st);
}

static void ll_access(fuse_req_t req, fuse_ino_t ino, int mask) {
  creq *r = creq_new(OP_ACCESS, req, ino);
  r->n[0] = mask;
  creq_post(r->m, r);
}

static void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi) {
  if (refuse_non_utf8(req, name, EILSEQ)) return;
  creq *r = creq_new(OP_CREATE, req, parent);
  r->s1 = dupstr(name);
  r->n[0] = mode;
  r->n[1] = fi->flags;
  creq_post(r->m, r);
}

/* fallocate: n0 mode, n1 offset, n2 fh, n3 length. */
static void ll_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                         struct fuse_file_info *fi) {
  creq *r = creq_new(OP_FALLOCATE, req, ino);
  r->n[0] = mode;
  r->n[1] = (double)offset;
  r->n[2] = fh_of(fi);
  r->n[3] = (double)length;
  creq_post(r->m, r);
}

/*
 * Extended attributes: s1 the name; setxattr's value as data, n0 its flags; n0 the caller's buffer
 * size for get/list.
 */
static void ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags) {
  if (refuse_non_utf8(req, name, EILSEQ)) return;
  creq *r = creq_new(OP_SETXATTR, req, ino);
  r->s1 = dupstr(name);
  r->n[0] = flags;
  r->data = malloc(size ? size : 1);
  if (size) memcpy(r->data, value, size);
  r->len = size;
  creq_post(r->m, r);
}

static void ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
  if (refuse_non_utf8(req, name, ENODATA)) return;
  /* The kernel asks for security.capability before every write (file_remove_privs: libfuse 3.14
     has no FUSE_CAP_HANDLE_KILLPRIV_V2 to stop it). While no entry carries it, answer here. */
  cmount *m = fuse_req_userdata(req);
  /* security.selinux: what `ls -l` asks of every entry it lists; under the same flag (no entry has either). */
  if (__atomic_load_n(&m->caps_absent, __ATOMIC_ACQUIRE) &&
      (strcmp(name, "security.capability") == 0 || strcmp(name, "security.selinux") == 0)) {
    fuse_reply_err(req, ENODATA);
    return;
  }
  creq *r = creq_new(OP_GETXATTR, req, ino);
  r->s1 = dupstr(name);
  r->n[0] = (double)size;
  creq_post(r->m, r);
}

static void ll_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  creq *r = creq_new(OP_LISTXATTR, req, ino);
  r->n[0] = (double)size;
  creq_post(r->m, r);
}

static void ll_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name) {
  if (refuse_non_utf8(req, name, ENODATA)) return;
  creq *r = creq_new(OP_REMOVEXATTR, req, ino);
  r->s1 = dupstr(name);
  creq_post(r->m, r);
}

const struct fuse_lowlevel_ops ll_ops = {
  .setxattr = ll_setxattr,
  .getxattr = ll_getxattr,
  .listxattr = ll_listxattr,
  .removexattr = ll_removexattr,
  .init = ll_init,
  .lookup = ll_lookup,
  .forget = ll_forget,
  .forget_multi = ll_forget_multi,
  .getattr = ll_getattr,
  .setattr = ll_setattr,
  .readlink = ll_readlink,
  .mknod = ll_mknod,
  .mkdir = ll_mkdir,
  .unlink = ll_unlink,
  .rmdir = ll_rmdir,
  .symlink = ll_symlink,
  .rename = ll_rename,
  .link = ll_link,
  .open = ll_open,
  .read = ll_read,
  .write = ll_write,
  .flush = ll_flush,
  .release = ll_release,
  .fsync = ll_fsync,
  .opendir = ll_opendir,
  .readdir = ll_readdir,
  .readdirplus = ll_readdirplus,
  .releasedir = ll_releasedir,
  .fsyncdir = ll_fsyncdir,
  .statfs = ll_statfs,
  .access = ll_access,
  .create = ll_create,
  .fallocate = ll_fallocate,
};
