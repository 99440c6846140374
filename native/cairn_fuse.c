/*
 * cairn_fuse: a libfuse3 low-level (inode) binding for Node, in C against Node-API.
 *
 * Threads: a fixed pool of worker threads reads requests from /dev/fuse (non-blocking fd, polled
 * together with an eventfd that tells them to stop) and hands each request to JavaScript through
 * one thread-safe function. JavaScript answers later, on its own thread, with one of the reply_*
 * functions (fuse_reply_* writes the answer to /dev/fuse: a copy into the waiting request, it never
 * waits on the file system). A notifier thread runs the kernel cache invalidations
 * (fuse_lowlevel_notify_inval_entry / _inode), which may wait on inode locks held by a process that
 * waits on a request: they never run on a worker or on the JavaScript thread.
 *
 * Invariants:
 * - every request that reaches JavaScript carries an External (struct creq); a reply_* call
 *   answers it once (later calls on the same request throw); forget needs no answer and is
 *   answered here (fuse_reply_none) before JavaScript hears of it;
 * - statfs, fsyncdir and init are answered here;
 * - unmount detaches the mount, stops and joins every thread, and destroys the session only once
 *   no request is waiting for a JavaScript answer (or a grace period has passed: later answers are
 *   then dropped).
 */
#define FUSE_USE_VERSION 34
#define _GNU_SOURCE
#include <fuse_lowlevel.h>
#include <node_api.h>

#include "nattr.h"
#include "nread.h"
#include "napi_util.h"

#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>

enum {
  OP_LOOKUP = 1, OP_FORGET = 2, OP_GETATTR = 3, OP_SETATTR = 4, OP_READLINK = 5, OP_MKNOD = 6,
  OP_MKDIR = 7, OP_UNLINK = 8, OP_RMDIR = 9, OP_SYMLINK = 10, OP_RENAME = 11, OP_LINK = 12,
  OP_OPEN = 13, OP_READ = 14, OP_WRITE = 15, OP_RELEASE = 17, OP_FSYNC = 18, OP_FLUSH = 19,
  OP_OPENDIR = 20, OP_READDIR = 21, OP_RELEASEDIR = 22, OP_ACCESS = 24, OP_CREATE = 25,
  OP_READDIRPLUS = 26, OP_FALLOCATE = 27, OP_SETXATTR = 28, OP_GETXATTR = 29, OP_LISTXATTR = 30,
  OP_REMOVEXATTR = 31, OP_NOTIFY_DONE = 90, OP_EXITED = 91,
  OP_NREAD_AHEAD = 92 /* nread.h: a natively served reader entered chunk n0 of handle ino */
};

#define MAX_WORKERS 16
#define NARGS 8
/* Numbers per entry of replyDir's list. */
#define DIR_STRIDE 10

typedef struct cmount cmount;

typedef struct notify_job {
  struct notify_job *next;
  size_t n_entries, n_inodes;
  uint64_t *parents;
  char **names;
  uint64_t *inodes;
  napi_ref done;
} notify_job;

struct cmount {
  struct fuse_session *se;
  char *mountpoint;
  int exitfd;
  int nworkers;
  pthread_t workers[MAX_WORKERS];
  int workers_started;
  int live_workers; /* guarded by lock */
  int unmounted;    /* fuse_session_unmount done */
  int ended;        /* the kernel closed the connection (ENODEV) */
  int destroyed;    /* session freed: late answers are dropped */
  int outstanding;  /* requests waiting for a JavaScript answer */
  napi_threadsafe_function tsfn;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  /* notifier */
  pthread_t notifier;
  int notifier_started, notifier_stop;
  notify_job *jobs_head, *jobs_tail;
  /* options */
  unsigned max_write, max_readahead;
  int writeback; /* measurement only: the kernel's writeback cache (docs/SEMANTICS.md: off) */
  nstore *ns;    /* native cached reads (nread.c) */
  nattr *na;     /* attributes the workers answer GETATTR with (nattr.c); freed at destroy, under lock */
  int caps_absent; /* JavaScript said no entry has security.capability (atomic; 0 until it says so) */
  uint64_t wakeups, idle_wakeups; /* workers woken with a request to read / with none (atomic) */
  /* async work */
  napi_async_work work;
  napi_deferred deferred;
  char *error;
  char **argv;
  int argc;
};

typedef struct creq {
  int op;
  fuse_req_t req;
  cmount *m;
  int replied;
  uint64_t ino, ino2;
  double n[NARGS];
  char *s1, *s2;
  char *data;
  size_t len;
  uint32_t pid, uid, gid;
  napi_ref done; /* OP_NOTIFY_DONE */
  uint64_t gen;       /* nattr's generation when a worker received the request */
  nattr_item *attrs;  /* attributes its answer leaves for native GETATTRs (nattr.h) */
} creq;

/* ---------------------------------------------------------------------------------------------- */
/* Requests -> JavaScript                                                                          */

static creq *new_req(int op, fuse_req_t req, fuse_ino_t ino) {
  creq *r = calloc(1, sizeof(creq));
  r->op = op;
  r->req = req;
  r->ino = ino;
  for (int i = 0; i < NARGS; i++) r->n[i] = -1;
  if (req) {
    r->m = fuse_req_userdata(req);
    const struct fuse_ctx *c = fuse_req_ctx(req);
    r->pid = (uint32_t)c->pid;
    r->uid = (uint32_t)c->uid;
    r->gid = (uint32_t)c->gid;
    r->gen = nattr_gen(r->m->na);
  }
  return r;
}

static void free_req(creq *r) {
  for (nattr_item *i = r->attrs, *n; i; i = n) n = i->next, free(i);
  free(r->s1);
  free(r->s2);
  free(r->data);
  free(r);
}

static void post(cmount *m, creq *r) {
  if (r->req) {
    pthread_mutex_lock(&m->lock);
    m->outstanding++;
    pthread_mutex_unlock(&m->lock);
  }
  r->m = m;
  if (napi_call_threadsafe_function(m->tsfn, r, napi_tsfn_nonblocking) != napi_ok) {
    /* JavaScript is gone (shutting down): answer here. */
    if (r->req) {
      fuse_reply_err(r->req, EIO);
      pthread_mutex_lock(&m->lock);
      m->outstanding--;
      pthread_cond_broadcast(&m->cond);
      pthread_mutex_unlock(&m->lock);
    }
    free_req(r);
  }
}

/* What answering `r` may have changed (nattr.h): nothing, its inode's attributes, or anything. */
static int op_scope(const creq *r) {
  switch (r->op) {
    case OP_LOOKUP: case OP_GETATTR: case OP_READLINK: case OP_READ: case OP_OPENDIR: case OP_READDIR:
    case OP_READDIRPLUS: case OP_RELEASEDIR: case OP_GETXATTR: case OP_LISTXATTR: case OP_ACCESS:
      return NATTR_NONE;
    case OP_OPEN: {
      int f = (int)r->n[0];
      return (f & O_ACCMODE) != O_RDONLY || (f & O_TRUNC) ? NATTR_INODE : NATTR_NONE;
    }
    case OP_RELEASE: /* drops a handle; the removal of a hidden file is numbered by JavaScript (attrBump) */
      return NATTR_NONE;
    case OP_WRITE: case OP_SETATTR: case OP_FALLOCATE: case OP_FSYNC: case OP_FLUSH: case OP_SETXATTR:
    case OP_REMOVEXATTR:
      return NATTR_INODE;
    default:
      return NATTR_ALL;
  }
}

/* Before `r`'s answer reaches the kernel (m->lock held, session not destroyed): nattr's bookkeeping. */
static void settle_attrs(creq *r) { nattr_settle(r->m->na, r->gen, op_scope(r), r->ino, &r->attrs); }

static void finalize_req(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  creq *r = data;
  if (!r->replied && r->req) {
    /* A request JavaScript dropped without answering: answer EIO rather than hang the caller. */
    cmount *m = r->m;
    pthread_mutex_lock(&m->lock);
    if (!m->destroyed) settle_attrs(r), fuse_reply_err(r->req, EIO);
    m->outstanding--;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
  }
  free_req(r);
}

static void free_data(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

static void call_js(napi_env env, napi_value fn, void *context, void *data) {
  (void)context;
  creq *r = data;
  if (env == NULL) {
    if (r->req) fuse_reply_err(r->req, EIO);
    free_req(r);
    return;
  }
  napi_value undef, argv[14];
  napi_get_undefined(env, &undef);
  if (r->op == OP_NOTIFY_DONE) {
    napi_value cb;
    napi_get_reference_value(env, r->done, &cb);
    napi_delete_reference(env, r->done);
    napi_create_double(env, r->n[0], &argv[0]);
    napi_call_function(env, undef, cb, 1, argv, NULL);
    free_req(r);
    return;
  }
  napi_create_int32(env, r->op, &argv[0]);
  if (r->req) {
    napi_create_external(env, r, finalize_req, NULL, &argv[1]);
  } else {
    napi_get_null(env, &argv[1]);
  }
  napi_create_double(env, (double)r->ino, &argv[2]);
  napi_create_double(env, (double)r->ino2, &argv[3]);
  for (int i = 0; i < 4; i++) napi_create_double(env, r->n[i], &argv[4 + i]);
  if (r->s1) napi_create_string_utf8(env, r->s1, NAPI_AUTO_LENGTH, &argv[8]); else argv[8] = undef;
  if (r->s2) napi_create_string_utf8(env, r->s2, NAPI_AUTO_LENGTH, &argv[9]); else argv[9] = undef;
  if (r->data) {
    napi_create_external_buffer(env, r->len, r->data, free_data, NULL, &argv[10]);
    r->data = NULL;
  } else if (r->op == OP_SETATTR) {
    /* setattr has more numbers (atimeMs, mtimeMs, uid, gid): an array in the data slot. */
    napi_value arr, v;
    napi_create_array_with_length(env, 4, &arr);
    for (int i = 0; i < 4; i++) {
      napi_create_double(env, r->n[4 + i], &v);
      napi_set_element(env, arr, (uint32_t)i, v);
    }
    argv[10] = arr;
  } else {
    argv[10] = undef;
  }
  napi_create_uint32(env, r->pid, &argv[11]);
  /* The caller's credentials: owner of what it creates. */
  napi_create_uint32(env, r->uid, &argv[12]);
  napi_create_uint32(env, r->gid, &argv[13]);
  napi_call_function(env, undef, fn, 14, argv, NULL);
  if (!r->req) free_req(r);
}

/* ---------------------------------------------------------------------------------------------- */
/* Native cached reads (nread.c): the worker-thread side                                           */

/* Answers a READ from verified resident chunks (1), else 0; tells JavaScript when to load ahead. */
static int nread_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  cmount *m = fuse_req_userdata(req);
  double ahead = -1;
  if (!fi || !nread_serve(m->ns, req, fi->fh, ino, size, off, &ahead)) return 0;
  if (ahead >= 0) {
    creq *r = new_req(OP_NREAD_AHEAD, NULL, (fuse_ino_t)fi->fh);
    r->n[0] = ahead;
    post(m, r);
  }
  return 1;
}

/* The mount of a context (the External mount returned); NULL (a TypeError thrown) when v is not one. */
static cmount *mount_arg(napi_env env, napi_value v) {
  cmount *m = nu_external(env, v);
  if (!m) napi_throw_type_error(env, NULL, "cairn_fuse: not a mount");
  return m;
}

nstore *cairn_nstore(napi_env env, napi_value ctx) {
  cmount *m = nu_external(env, ctx);
  return m ? m->ns : NULL;
}

/* ---------------------------------------------------------------------------------------------- */
/* Low-level operations                                                                            */

static char *dupstr(const char *s) { return s ? strdup(s) : NULL; }

static void ll_init(void *ud, struct fuse_conn_info *conn) {
  cmount *m = ud;
  conn->max_write = m->max_write;
  conn->max_readahead = m->max_readahead;
  conn->max_background = 64;
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
  creq *r = new_req(OP_LOOKUP, req, parent);
  r->s1 = dupstr(name);
  post(r->m, r);
}

static void post_forget(cmount *m, fuse_ino_t ino, uint64_t n) {
  creq *r = new_req(OP_FORGET, NULL, ino);
  r->n[0] = (double)n;
  post(m, r);
}

static void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  cmount *m = fuse_req_userdata(req);
  fuse_reply_none(req);
  post_forget(m, ino, nlookup);
}

static void ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
  cmount *m = fuse_req_userdata(req);
  for (size_t i = 0; i < count; i++) post_forget(m, forgets[i].ino, forgets[i].nlookup);
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
  creq *r = new_req(OP_GETATTR, req, ino);
  r->n[0] = fh_of(fi);
  post(r->m, r);
}

/* Whole milliseconds, cut toward the past in integers: a double sum would round 35.999999999 s to 36 s. */
static double ts_ms(const struct timespec *t) {
  return (double)((int64_t)t->tv_sec * 1000 + (int64_t)(t->tv_nsec / 1000000));
}

static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi) {
  creq *r = new_req(OP_SETATTR, req, ino);
  r->n[0] = to_set;
  r->n[1] = attr->st_mode;
  r->n[2] = (double)attr->st_size;
  r->n[3] = fh_of(fi);
  r->n[4] = ts_ms(&attr->st_atim);
  r->n[5] = ts_ms(&attr->st_mtim);
  r->n[6] = attr->st_uid;
  r->n[7] = attr->st_gid;
  post(r->m, r);
}

static void ll_readlink(fuse_req_t req, fuse_ino_t ino) {
  post(fuse_req_userdata(req), new_req(OP_READLINK, req, ino));
}

static void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) {
  creq *r = new_req(OP_MKNOD, req, parent);
  r->s1 = dupstr(name);
  r->n[0] = mode;
  r->n[1] = (double)rdev;
  post(r->m, r);
}

static void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
  creq *r = new_req(OP_MKDIR, req, parent);
  r->s1 = dupstr(name);
  r->n[0] = mode;
  post(r->m, r);
}

static void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) {
  creq *r = new_req(OP_UNLINK, req, parent);
  r->s1 = dupstr(name);
  post(r->m, r);
}

static void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) {
  creq *r = new_req(OP_RMDIR, req, parent);
  r->s1 = dupstr(name);
  post(r->m, r);
}

static void ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name) {
  creq *r = new_req(OP_SYMLINK, req, parent);
  r->s1 = dupstr(name);
  r->s2 = dupstr(link);
  post(r->m, r);
}

static void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname,
                      unsigned int flags) {
  creq *r = new_req(OP_RENAME, req, parent);
  r->s1 = dupstr(name);
  r->ino2 = newparent;
  r->s2 = dupstr(newname);
  r->n[0] = flags;
  post(r->m, r);
}

static void ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) {
  creq *r = new_req(OP_LINK, req, ino);
  r->ino2 = newparent;
  r->s1 = dupstr(newname);
  post(r->m, r);
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
  creq *r = new_req(OP_OPEN, req, ino);
  r->n[0] = fi->flags;
  post(r->m, r);
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  if (nread_read(req, ino, size, off, fi)) return;
  creq *r = new_req(OP_READ, req, ino);
  r->n[0] = (double)size;
  r->n[1] = (double)off;
  r->n[2] = fh_of(fi);
  post(r->m, r);
}

static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi) {
  creq *r = new_req(OP_WRITE, req, ino);
  /* The request buffer is reused once this returns: copy. */
  r->data = malloc(size ? size : 1);
  memcpy(r->data, buf, size);
  r->len = size;
  r->n[0] = (double)size;
  r->n[1] = (double)off;
  r->n[2] = fh_of(fi);
  post(r->m, r);
}

static void ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  if (fi && nread_registered(((cmount *)fuse_req_userdata(req))->ns, fi->fh)) {
    fuse_reply_err(req, 0); /* a read-only handle of an unchanged file: nothing to flush */
    return;
  }
  creq *r = new_req(OP_FLUSH, req, ino);
  r->n[2] = fh_of(fi);
  post(r->m, r);
}

static void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  int native = nopen_release(((cmount *)fuse_req_userdata(req))->ns, fi->fh);
  if (native == 1) { /* opened natively (nopen.c) */
    fuse_reply_err(req, 0);
    return;
  }
  if (!native) nread_release(((cmount *)fuse_req_userdata(req))->ns, fi->fh);
  creq *r = new_req(OP_RELEASE, req, ino);
  r->n[0] = fi->flags;
  r->n[2] = fh_of(fi);
  post(r->m, r);
}

static void ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  creq *r = new_req(OP_FSYNC, req, ino);
  r->n[0] = datasync;
  r->n[2] = fh_of(fi);
  post(r->m, r);
}

static void ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  creq *r = new_req(OP_OPENDIR, req, ino);
  r->n[0] = fi->flags;
  post(r->m, r);
}

static void readdir_common(int op, fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  creq *r = new_req(op, req, ino);
  r->n[0] = (double)size;
  r->n[1] = (double)off;
  r->n[2] = fh_of(fi);
  post(r->m, r);
}

static void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  readdir_common(OP_READDIR, req, ino, size, off, fi);
}

static void ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  readdir_common(OP_READDIRPLUS, req, ino, size, off, fi);
}

static void ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  creq *r = new_req(OP_RELEASEDIR, req, ino);
  r->n[2] = fh_of(fi);
  post(r->m, r);
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
  creq *r = new_req(OP_ACCESS, req, ino);
  r->n[0] = mask;
  post(r->m, r);
}

static void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi) {
  creq *r = new_req(OP_CREATE, req, parent);
  r->s1 = dupstr(name);
  r->n[0] = mode;
  r->n[1] = fi->flags;
  post(r->m, r);
}

/* fallocate: n0 mode, n1 offset, n2 fh, n3 length. */
static void ll_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                         struct fuse_file_info *fi) {
  creq *r = new_req(OP_FALLOCATE, req, ino);
  r->n[0] = mode;
  r->n[1] = (double)offset;
  r->n[2] = fh_of(fi);
  r->n[3] = (double)length;
  post(r->m, r);
}

/* Extended attributes: s1 the name; setxattr's value as data, n0 its flags; n0 the caller's buffer size for get/list. */
static void ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags) {
  creq *r = new_req(OP_SETXATTR, req, ino);
  r->s1 = dupstr(name);
  r->n[0] = flags;
  r->data = malloc(size ? size : 1);
  if (size) memcpy(r->data, value, size);
  r->len = size;
  post(r->m, r);
}

static void ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
  /* The kernel asks for security.capability before every write (file_remove_privs: libfuse 3.14
     has no FUSE_CAP_HANDLE_KILLPRIV_V2 to stop it). While no entry carries it, answer here. */
  cmount *m = fuse_req_userdata(req);
  /* security.selinux: what `ls -l` asks of every entry it lists; under the same flag (no entry has either). */
  if (__atomic_load_n(&m->caps_absent, __ATOMIC_ACQUIRE) &&
      (strcmp(name, "security.capability") == 0 || strcmp(name, "security.selinux") == 0)) {
    fuse_reply_err(req, ENODATA);
    return;
  }
  creq *r = new_req(OP_GETXATTR, req, ino);
  r->s1 = dupstr(name);
  r->n[0] = (double)size;
  post(r->m, r);
}

static void ll_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  creq *r = new_req(OP_LISTXATTR, req, ino);
  r->n[0] = (double)size;
  post(r->m, r);
}

static void ll_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name) {
  creq *r = new_req(OP_REMOVEXATTR, req, ino);
  r->s1 = dupstr(name);
  post(r->m, r);
}

static const struct fuse_lowlevel_ops ll_ops = {
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

/* ---------------------------------------------------------------------------------------------- */
/* Threads                                                                                         */

/*
 * A worker waits in its own epoll set: the /dev/fuse fd with EPOLLEXCLUSIVE (a request wakes one
 * idle worker, not all of them: with poll(2) every request woke every worker, and all but one
 * found nothing to read — ~2.5 wasted wake-ups per request with 4 workers, each a context switch
 * on a busy 2-core host) and the exit eventfd without it (it wakes them all to stop).
 */
static void *worker_main(void *arg) {
  cmount *m = arg;
  struct fuse_buf buf;
  memset(&buf, 0, sizeof buf);
  int fd = fuse_session_fd(m->se);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event req_ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data = {.u32 = 0}};
  struct epoll_event exit_ev = {.events = EPOLLIN, .data = {.u32 = 1}};
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &req_ev) != 0 || epoll_ctl(ep, EPOLL_CTL_ADD, m->exitfd, &exit_ev) != 0) {
    fuse_session_exit(m->se);
  }
  while (!fuse_session_exited(m->se)) {
    struct epoll_event got[2];
    int n = epoll_wait(ep, got, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    int stop = 0, ready = 0;
    for (int i = 0; i < n; i++) {
      if (got[i].data.u32 == 1) stop = 1;
      else if (got[i].events & (EPOLLERR | EPOLLHUP)) stop = 2;
      else ready = 1;
    }
    if (stop == 2) fuse_session_exit(m->se);
    if (stop) break;
    if (!ready) continue;
    int res = fuse_session_receive_buf(m->se, &buf);
    __atomic_add_fetch(res == -EAGAIN ? &m->idle_wakeups : &m->wakeups, 1, __ATOMIC_RELAXED);
    if (res == -EAGAIN || res == -EINTR) continue;
    if (res <= 0) {
      if (res < 0) fuse_session_exit(m->se);
      break;
    }
    fuse_session_process_buf(m->se, &buf);
  }
  if (ep >= 0) close(ep);
  free(buf.mem);
  pthread_mutex_lock(&m->lock);
  int last = --m->live_workers == 0;
  int tell = last && fuse_session_exited(m->se) && !m->unmounted;
  if (fuse_session_exited(m->se)) m->ended = 1;
  pthread_cond_broadcast(&m->cond);
  pthread_mutex_unlock(&m->lock);
  if (tell) {
    /* The kernel ended the connection (unmounted from outside): tell JavaScript. */
    creq *r = new_req(OP_EXITED, NULL, 0);
    post(m, r);
  }
  return NULL;
}

static void *notifier_main(void *arg) {
  cmount *m = arg;
  for (;;) {
    pthread_mutex_lock(&m->lock);
    while (!m->jobs_head && !m->notifier_stop) pthread_cond_wait(&m->cond, &m->lock);
    notify_job *j = m->jobs_head;
    if (!j) {
      pthread_mutex_unlock(&m->lock);
      break;
    }
    m->jobs_head = j->next;
    if (!m->jobs_head) m->jobs_tail = NULL;
    int live = !m->ended && !m->unmounted;
    pthread_mutex_unlock(&m->lock);
    int failed = 0;
    for (size_t i = 0; i < j->n_entries; i++) {
      if (live) {
        int e = fuse_lowlevel_notify_inval_entry(m->se, j->parents[i], j->names[i], strlen(j->names[i]));
        if (e != 0 && e != -ENOENT) failed++;
      }
      free(j->names[i]);
    }
    for (size_t i = 0; live && i < j->n_inodes; i++) {
      int e = fuse_lowlevel_notify_inval_inode(m->se, j->inodes[i], 0, 0);
      if (e != 0 && e != -ENOENT) failed++;
    }
    creq *r = new_req(OP_NOTIFY_DONE, NULL, 0);
    r->done = j->done;
    r->n[0] = failed;
    post(m, r);
    free(j->parents);
    free(j->names);
    free(j->inodes);
    free(j);
  }
  return NULL;
}

/* ---------------------------------------------------------------------------------------------- */
/* Node-API helpers                                                                                */

/* The request of an External; NULL (a TypeError thrown) when v is not one. */
static creq *req_arg(napi_env env, napi_value v) {
  creq *r = nu_external(env, v);
  if (!r) napi_throw_type_error(env, NULL, "cairn_fuse: not a request");
  return r;
}

/* Takes the request out of its External for answering; throws when it was answered already. */
static creq *take(napi_env env, napi_value v) {
  creq *r = req_arg(env, v);
  if (!r) return NULL;
  if (r->replied) {
    napi_throw_error(env, NULL, "cairn_fuse: request answered twice");
    return NULL;
  }
  r->replied = 1;
  return r;
}

/* Ends a request's life on our side: the answer was sent (or dropped after destroy). */
static int begin_reply(creq *r) {
  pthread_mutex_lock(&r->m->lock);
  int ok = !r->m->destroyed;
  if (!ok) pthread_mutex_unlock(&r->m->lock);
  else settle_attrs(r);
  return ok; /* lock held when ok: end_reply releases it (destroy cannot run in between) */
}

static void end_reply(creq *r) {
  r->m->outstanding--;
  pthread_cond_broadcast(&r->m->cond);
  pthread_mutex_unlock(&r->m->lock);
}

static void drop_reply(creq *r) {
  pthread_mutex_lock(&r->m->lock);
  r->m->outstanding--;
  pthread_mutex_unlock(&r->m->lock);
}

#define REPLY(r, expr)          \
  do {                          \
    if (begin_reply(r)) {       \
      (expr);                   \
      end_reply(r);             \
    } else {                    \
      drop_reply(r);            \
    }                           \
  } while (0)

/* Milliseconds since the epoch as a timespec. */
static struct timespec ms_ts(double ms) {
  /* floor, not truncation: -2 ms is -1 s + 998 ms. */
  time_t sec = (time_t)floor(ms / 1e3);
  long nsec = (long)((ms - (double)sec * 1e3) * 1e6);
  if (nsec < 0) nsec = 0;
  if (nsec > 999999999) nsec = 999999999;
  struct timespec t = {.tv_sec = sec, .tv_nsec = nsec};
  return t;
}

/*
 * attr from (ino, mode, nlink, uid, gid, size, times) at argv[0..6]; times is mtimeMs, or a
 * Float64Array [mtimeMs, atimeMs, ctimeMs, rdev].
 */
static void attr_from(napi_env env, napi_value *argv, struct stat *st) {
  memset(st, 0, sizeof *st);
  st->st_ino = (ino_t)nu_num(env, argv[0]);
  st->st_mode = (mode_t)nu_num(env, argv[1]);
  st->st_nlink = (nlink_t)nu_num(env, argv[2]);
  st->st_uid = (uid_t)nu_num(env, argv[3]);
  st->st_gid = (gid_t)nu_num(env, argv[4]);
  st->st_size = (off_t)nu_num(env, argv[5]);
  st->st_blksize = 4096;
  st->st_blocks = (st->st_size + 511) / 512;
  double *t4 = NULL;
  size_t n = 0;
  if (nu_f64(env, argv[6], &t4, &n) && n >= 4) {
    st->st_mtim = ms_ts(t4[0]);
    st->st_atim = ms_ts(t4[1]);
    st->st_ctim = ms_ts(t4[2]);
    st->st_rdev = (dev_t)t4[3];
    return;
  }
  struct timespec t = ms_ts(nu_num(env, argv[6]));
  st->st_atim = st->st_mtim = st->st_ctim = t;
}

/* replyXattr(req, size): the size an attribute value or the name list needs (a query with size 0). */
static napi_value reply_xattr(napi_env env, napi_callback_info info) {
  NU_ARGS(2);
  creq *r = take(env, argv[0]);
  if (!r) return NULL;
  size_t n = (size_t)nu_num(env, argv[1]);
  REPLY(r, fuse_reply_xattr(r->req, n));
  return NULL;
}

/* replyErr(req, errno) */
static napi_value reply_err(napi_env env, napi_callback_info info) {
  NU_ARGS(2);
  creq *r = take(env, argv[0]);
  if (!r) return NULL;
  int e = (int)nu_num(env, argv[1]);
  REPLY(r, fuse_reply_err(r->req, e));
  return NULL;
}

/* The entry of argv[1..9]: ino, mode, nlink, uid, gid, size, mtimeMs, attrTimeout, entryTimeout. */
static void entry_from(napi_env env, napi_value *argv, struct fuse_entry_param *e) {
  memset(e, 0, sizeof *e);
  e->ino = (fuse_ino_t)nu_num(env, argv[1]);
  attr_from(env, argv + 1, &e->attr);
  e->attr_timeout = nu_num(env, argv[8]);
  e->entry_timeout = nu_num(env, argv[9]);
}

/* replyEntry(req, ino, mode, nlink, uid, gid, size, mtimeMs, attrTimeout, entryTimeout) */
static napi_value reply_entry(napi_env env, napi_callback_info info) {
  NU_ARGS(10);
  creq *r = take(env, argv[0]);
  if (!r) return NULL;
  struct fuse_entry_param e;
  entry_from(env, argv, &e);
  nattr_push(&r->attrs, e.ino, &e.attr, e.attr_timeout);
  REPLY(r, fuse_reply_entry(r->req, &e));
  return NULL;
}

/* replyCreate(req, ino, mode, nlink, uid, gid, size, mtimeMs, attrTimeout, entryTimeout, fh, keepCache, directIo) */
static napi_value reply_create(napi_env env, napi_callback_info info) {
  NU_ARGS(13);
  creq *r = take(env, argv[0]);
  if (!r) return NULL;
  struct fuse_entry_param e;
  entry_from(env, argv, &e);
  struct fuse_file_info fi;
  memset(&fi, 0, sizeof fi);
  fi.fh = (uint64_t)nu_num(env, argv[10]);
  fi.keep_cache = nu_num(env, argv[11]) != 0;
  fi.direct_io = nu_num(env, argv[12]) != 0;
  nattr_push(&r->attrs, e.ino, &e.attr, e.attr_timeout);
  REPLY(r, fuse_reply_create(r->req, &e, &fi));
  return NULL;
}

/* replyAttr(req, ino, mode, nlink, uid, gid, size, mtimeMs, attrTimeout) */
static napi_value reply_attr(napi_env env, napi_callback_info info) {
  NU_ARGS(9);
  creq *r = take(env, argv[0]);
  if (!r) return NULL;
  struct stat st;
  attr_from(env, argv + 1, &st);
  double t = nu_num(env, argv[8]);
  nattr_push(&r->attrs, st.st_ino, &st, t);
  REPLY(r, fuse_reply_attr(r->req, &st, t));
  return NULL;
}

/*
 * attrStage(req, ino, mode, nlink, uid, gid, size, times, attrTimeout): attributes `req`'s answer
 * leaves for native GETATTRs besides its own (nattr.h), e.g. a create's parent directory.
 */
static napi_value attr_stage(napi_env env, napi_callback_info info) {
  NU_ARGS(9);
  creq *r = req_arg(env, argv[0]);
  if (!r) return NULL;
  if (r->replied) return NULL; /* answered already (a time limit): nothing to leave */
  struct stat st;
  attr_from(env, argv + 1, &st);
  nattr_push(&r->attrs, st.st_ino, &st, nu_num(env, argv[8]));
  return NULL;
}

/* replyOpen(req, fh, keepCache, directIo) */
static napi_value reply_open(napi_env env, napi_callback_info info) {
  NU_ARGS(4);
  creq *r = take(env, argv[0]);
  if (!r) return NULL;
  struct fuse_file_info fi;
  memset(&fi, 0, sizeof fi);
  fi.fh = (uint64_t)nu_num(env, argv[1]);
  fi.keep_cache = nu_num(env, argv[2]) != 0;
  fi.direct_io = nu_num(env, argv[3]) != 0;
  REPLY(r, fuse_reply_open(r->req, &fi));
  return NULL;
}

/* replyBuf(req, buffer, length) */
static napi_value reply_buf(napi_env env, napi_callback_info info) {
  NU_ARGS(3);
  creq *r = take(env, argv[0]);
  if (!r) return NULL;
  void *data = NULL;
  size_t len = 0;
  nu_buf(env, argv[1], &data, &len); /* null or undefined: nothing */
  size_t want = (size_t)nu_num(env, argv[2]);
  if (want < len) len = want;
  REPLY(r, fuse_reply_buf(r->req, data, len));
  return NULL;
}

/* replyWrite(req, count) */
static napi_value reply_write(napi_env env, napi_callback_info info) {
  NU_ARGS(2);
  creq *r = take(env, argv[0]);
  if (!r) return NULL;
  size_t n = (size_t)nu_num(env, argv[1]);
  REPLY(r, fuse_reply_write(r->req, n));
  return NULL;
}

/* replyReadlink(req, target) */
static napi_value reply_readlink(napi_env env, napi_callback_info info) {
  NU_ARGS(2);
  creq *r = take(env, argv[0]);
  if (!r) return NULL;
  char *s = nu_str(env, argv[1]);
  REPLY(r, fuse_reply_readlink(r->req, s ? s : ""));
  free(s);
  return NULL;
}

/*
 * replyDir(req, plus, size, firstOffset, names, nums, uid, gid, attrTimeout, entryTimeout) -> count
 * nums: Float64Array of DIR_STRIDE per entry (ino, mode, nlink, size, mtimeMs, uid, gid, atimeMs,
 * ctimeMs, rdev); uid and gid arguments are unused (entries carry their own). Entry i gets the offset
 * firstOffset + i + 1. Packs as many as fit in size bytes and returns how many it packed (for
 * readdirplus each packed entry other than "." and ".." counts as a lookup).
 */
static napi_value reply_dir(napi_env env, napi_callback_info info) {
  NU_ARGS(10);
  creq *r = take(env, argv[0]);
  if (!r) return NULL;
  bool plus = false;
  napi_get_value_bool(env, argv[1], &plus);
  size_t size = (size_t)nu_num(env, argv[2]);
  double first = nu_num(env, argv[3]);
  uint32_t count = 0;
  napi_get_array_length(env, argv[4], &count);
  size_t nlen = 0;
  double *nums = NULL;
  nu_f64(env, argv[5], &nums, &nlen);
  /* argv[6], argv[7] (uid, gid): unused, the entries carry their own. */
  double at = nu_num(env, argv[8]), et = nu_num(env, argv[9]);
  if (nlen < (size_t)count * DIR_STRIDE) count = (uint32_t)(nlen / DIR_STRIDE);
  /* Names first, outside the lock (a JS call may run a GC finalizer that takes it). */
  char **names = calloc(count + 1, sizeof(char *));
  for (uint32_t i = 0; i < count; i++) {
    napi_value nv;
    napi_get_element(env, argv[4], i, &nv);
    names[i] = nu_str(env, nv);
    if (!names[i]) names[i] = strdup("?");
  }
  char *buf = malloc(size ? size : 1);
  size_t used = 0;
  uint32_t packed = 0;
  if (begin_reply(r)) {
    for (uint32_t i = 0; i < count; i++) {
      const char *name = names[i];
      double *e = nums + (size_t)i * DIR_STRIDE;
      struct fuse_entry_param ep;
      memset(&ep, 0, sizeof ep);
      ep.ino = (fuse_ino_t)e[0];
      ep.attr.st_ino = ep.ino;
      ep.attr.st_mode = (mode_t)e[1];
      ep.attr.st_nlink = (nlink_t)e[2];
      ep.attr.st_uid = (uid_t)e[5];
      ep.attr.st_gid = (gid_t)e[6];
      ep.attr.st_size = (off_t)e[3];
      ep.attr.st_blksize = 4096;
      ep.attr.st_blocks = (ep.attr.st_size + 511) / 512;
      ep.attr.st_mtim = ms_ts(e[4]);
      ep.attr.st_atim = ms_ts(e[7]);
      ep.attr.st_ctim = ms_ts(e[8]);
      ep.attr.st_rdev = (dev_t)e[9];
      int dot = strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
      ep.attr_timeout = at;
      ep.entry_timeout = et;
      off_t next = (off_t)(first + i + 1);
      size_t need;
      if (plus) {
        if (dot) {
          /* The kernel takes no reference for "." and "..": send no entry attributes for them. */
          struct fuse_entry_param d;
          memset(&d, 0, sizeof d);
          d.attr = ep.attr;
          need = fuse_add_direntry_plus(r->req, buf + used, size - used, name, &d, next);
        } else {
          need = fuse_add_direntry_plus(r->req, buf + used, size - used, name, &ep, next);
        }
      } else {
        need = fuse_add_direntry(r->req, buf + used, size - used, name, &ep.attr, next);
      }
      if (need > size - used) break;
      used += need;
      packed++;
    }
    fuse_reply_buf(r->req, buf, used);
    end_reply(r);
  } else {
    drop_reply(r);
  }
  for (uint32_t i = 0; i < count; i++) free(names[i]);
  free(names);
  free(buf);
  napi_value out;
  napi_create_uint32(env, packed, &out);
  return out;
}

/* ---------------------------------------------------------------------------------------------- */
/* Mount / unmount                                                                                 */

static void mount_execute(napi_env env, void *data) {
  (void)env;
  cmount *m = data;
  struct fuse_args args = FUSE_ARGS_INIT(m->argc, m->argv);
  m->se = fuse_session_new(&args, &ll_ops, sizeof ll_ops, m);
  if (!m->se) {
    m->error = strdup("fuse_session_new failed (bad mount options?)");
    return;
  }
  if (fuse_session_mount(m->se, m->mountpoint) != 0) {
    char msg[512];
    snprintf(msg, sizeof msg, "fuse_session_mount failed at %s (see the log for libfuse's reason)", m->mountpoint);
    m->error = strdup(msg);
    fuse_session_destroy(m->se);
    m->se = NULL;
    return;
  }
  int fd = fuse_session_fd(m->se);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  m->exitfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  m->live_workers = m->nworkers;
  for (int i = 0; i < m->nworkers; i++) {
    pthread_create(&m->workers[i], NULL, worker_main, m);
  }
  m->workers_started = 1;
  pthread_create(&m->notifier, NULL, notifier_main, m);
  m->notifier_started = 1;
}

static void mount_complete(napi_env env, napi_status status, void *data) {
  cmount *m = data;
  napi_delete_async_work(env, m->work);
  m->work = NULL;
  if (status != napi_ok || m->error) {
    napi_value msg, err;
    napi_create_string_utf8(env, m->error ? m->error : "mount failed", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &err);
    napi_reject_deferred(env, m->deferred, err);
    napi_release_threadsafe_function(m->tsfn, napi_tsfn_abort);
    return; /* m leaks deliberately: tiny, and the External may still point at it */
  }
  napi_value ok;
  napi_get_undefined(env, &ok);
  napi_resolve_deferred(env, m->deferred, ok);
}

static void finalize_mount(napi_env env, void *data, void *hint) {
  (void)env;
  (void)data;
  (void)hint;
  /* The mount struct outlives its External on purpose (threads may still report); never freed. */
}

/* mount(mountpoint, args: string[], handler, { workers, maxWrite, maxReadahead }) -> [ctx, Promise] */
static napi_value js_mount(napi_env env, napi_callback_info info) {
  NU_ARGS(4);
  cmount *m = calloc(1, sizeof(cmount));
  pthread_mutex_init(&m->lock, NULL);
  pthread_cond_init(&m->cond, NULL);
  m->exitfd = -1;
  m->mountpoint = nu_str(env, argv[0]);
  uint32_t n = 0;
  napi_get_array_length(env, argv[1], &n);
  m->argc = (int)n + 1;
  m->argv = calloc(n + 2, sizeof(char *));
  m->argv[0] = strdup("cairn");
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    napi_get_element(env, argv[1], i, &v);
    m->argv[i + 1] = nu_str(env, v);
  }
  napi_value opt;
  bool has;
  m->nworkers = 4;
  m->max_write = 1 << 20;
  m->max_readahead = 1 << 20;
  napi_has_named_property(env, argv[3], "workers", &has);
  if (has) {
    napi_get_named_property(env, argv[3], "workers", &opt);
    m->nworkers = (int)nu_num(env, opt);
  }
  if (m->nworkers < 1) m->nworkers = 1;
  if (m->nworkers > MAX_WORKERS) m->nworkers = MAX_WORKERS;
  napi_has_named_property(env, argv[3], "maxWrite", &has);
  if (has) {
    napi_get_named_property(env, argv[3], "maxWrite", &opt);
    m->max_write = (unsigned)nu_num(env, opt);
  }
  napi_has_named_property(env, argv[3], "writeback", &has);
  if (has) {
    napi_get_named_property(env, argv[3], "writeback", &opt);
    m->writeback = nu_num(env, opt) != 0;
  }
  /* nreadBytes: the budget of native cached reads (nread.c; 0: off). */
  size_t nread_bytes = 0;
  napi_has_named_property(env, argv[3], "nreadBytes", &has);
  if (has) {
    napi_get_named_property(env, argv[3], "nreadBytes", &opt);
    nread_bytes = (size_t)nu_num(env, opt);
  }
  m->ns = nread_new(nread_bytes);
  m->na = nattr_new();
  napi_has_named_property(env, argv[3], "maxReadahead", &has);
  if (has) {
    napi_get_named_property(env, argv[3], "maxReadahead", &opt);
    m->max_readahead = (unsigned)nu_num(env, opt);
  }
  napi_value name;
  napi_create_string_utf8(env, "cairn_fuse", NAPI_AUTO_LENGTH, &name);
  NU_CHECK(napi_create_threadsafe_function(env, argv[2], NULL, name, 0, 1, NULL, NULL, NULL, call_js, &m->tsfn));
  napi_value promise, ext, out;
  NU_CHECK(napi_create_promise(env, &m->deferred, &promise));
  NU_CHECK(napi_create_async_work(env, NULL, name, mount_execute, mount_complete, m, &m->work));
  NU_CHECK(napi_queue_async_work(env, m->work));
  NU_CHECK(napi_create_external(env, m, finalize_mount, NULL, &ext));
  NU_CHECK(napi_create_array_with_length(env, 2, &out));
  napi_set_element(env, out, 0, ext);
  napi_set_element(env, out, 1, promise);
  return out;
}

static void unmount_execute(napi_env env, void *data) {
  (void)env;
  cmount *m = data;
  pthread_mutex_lock(&m->lock);
  int ended = m->ended;
  pthread_mutex_unlock(&m->lock);
  /* Detach the mount (lazily, as libfuse does); no-op when the kernel already ended it. */
  if (!ended) fuse_session_unmount(m->se);
  pthread_mutex_lock(&m->lock);
  m->unmounted = 1;
  /* With nobody using it, the kernel ends the connection at once; give the workers a moment. */
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_nsec += 300 * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  while (m->live_workers > 0) {
    if (pthread_cond_timedwait(&m->cond, &m->lock, &until) == ETIMEDOUT) break;
  }
  pthread_mutex_unlock(&m->lock);
  uint64_t one = 1;
  if (write(m->exitfd, &one, sizeof one) < 0) { /* the workers also stop on ENODEV */ }
  for (int i = 0; i < m->nworkers; i++) pthread_join(m->workers[i], NULL);
  pthread_mutex_lock(&m->lock);
  m->notifier_stop = 1;
  pthread_cond_broadcast(&m->cond);
  pthread_mutex_unlock(&m->lock);
  pthread_join(m->notifier, NULL);
  /* Wait (bounded) for the answers JavaScript still owes, then free the session (closes /dev/fuse). */
  pthread_mutex_lock(&m->lock);
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 5;
  while (m->outstanding > 0) {
    if (pthread_cond_timedwait(&m->cond, &m->lock, &until) == ETIMEDOUT) break;
  }
  m->destroyed = 1;
  nattr_free(m->na);
  m->na = NULL;
  pthread_mutex_unlock(&m->lock);
  nread_free(m->ns); /* every worker has stopped: no reply holds chunk bytes */
  fuse_session_destroy(m->se);
  close(m->exitfd);
}

static void unmount_complete(napi_env env, napi_status status, void *data) {
  (void)status;
  cmount *m = data;
  napi_delete_async_work(env, m->work);
  m->work = NULL;
  napi_release_threadsafe_function(m->tsfn, napi_tsfn_release);
  napi_value ok;
  napi_get_undefined(env, &ok);
  napi_resolve_deferred(env, m->deferred, ok);
}

/* unmount(ctx) -> Promise; once only. */
static napi_value js_unmount(napi_env env, napi_callback_info info) {
  NU_ARGS(1);
  cmount *m = mount_arg(env, argv[0]);
  if (!m) return NULL;
  if (!m->se || m->work || m->destroyed) {
    napi_throw_error(env, NULL, "cairn_fuse: not mounted");
    return NULL;
  }
  napi_value promise, name;
  NU_CHECK(napi_create_promise(env, &m->deferred, &promise));
  napi_create_string_utf8(env, "cairn_fuse_unmount", NAPI_AUTO_LENGTH, &name);
  NU_CHECK(napi_create_async_work(env, NULL, name, unmount_execute, unmount_complete, m, &m->work));
  NU_CHECK(napi_queue_async_work(env, m->work));
  return promise;
}

/* invalidate(ctx, parents: number[], names: string[], inodes: number[], done(failed)) */
static napi_value js_invalidate(napi_env env, napi_callback_info info) {
  NU_ARGS(5);
  cmount *m = mount_arg(env, argv[0]);
  if (!m) return NULL;
  uint32_t ne = 0, ni = 0;
  napi_get_array_length(env, argv[1], &ne);
  napi_get_array_length(env, argv[3], &ni);
  notify_job *j = calloc(1, sizeof *j);
  j->n_entries = ne;
  j->n_inodes = ni;
  j->parents = calloc(ne + 1, sizeof(uint64_t));
  j->names = calloc(ne + 1, sizeof(char *));
  j->inodes = calloc(ni + 1, sizeof(uint64_t));
  for (uint32_t i = 0; i < ne; i++) {
    napi_value v;
    napi_get_element(env, argv[1], i, &v);
    j->parents[i] = (uint64_t)nu_num(env, v);
    napi_get_element(env, argv[2], i, &v);
    j->names[i] = nu_str(env, v);
  }
  for (uint32_t i = 0; i < ni; i++) {
    napi_value v;
    napi_get_element(env, argv[3], i, &v);
    j->inodes[i] = (uint64_t)nu_num(env, v);
  }
  NU_CHECK(napi_create_reference(env, argv[4], 1, &j->done));
  pthread_mutex_lock(&m->lock);
  if (m->jobs_tail) m->jobs_tail->next = j; else m->jobs_head = j;
  m->jobs_tail = j;
  pthread_cond_broadcast(&m->cond);
  pthread_mutex_unlock(&m->lock);
  return NULL;
}

/* setCapsAbsent(ctx, absent): whether getxattr of security.capability may be answered ENODATA natively. */
static napi_value js_set_caps_absent(napi_env env, napi_callback_info info) {
  NU_ARGS(2);
  cmount *m = mount_arg(env, argv[0]);
  if (!m) return NULL;
  bool absent = false;
  NU_CHECK(napi_get_value_bool(env, argv[1], &absent));
  __atomic_store_n(&m->caps_absent, absent ? 1 : 0, __ATOMIC_RELEASE);
  return NULL;
}

/* attrBump(ctx): a change made outside any request (reload, commit): no native GETATTR answers from before it. */
static napi_value js_attr_bump(napi_env env, napi_callback_info info) {
  NU_ARGS(1);
  cmount *m = mount_arg(env, argv[0]);
  if (!m) return NULL;
  pthread_mutex_lock(&m->lock);
  if (m->na) nattr_bump(m->na);
  pthread_mutex_unlock(&m->lock);
  return NULL;
}

/*
 * dispatchStats(ctx) -> { wakeups, idleWakeups, attrHits, attrMisses, attrKept, attrBumps }: workers
 * woken with a request to read and with none; GETATTRs answered natively (nattr.c) and not.
 */
static napi_value js_dispatch_stats(napi_env env, napi_callback_info info) {
  NU_ARGS(1);
  cmount *m = mount_arg(env, argv[0]);
  if (!m) return NULL;
  napi_value out;
  NU_CHECK(napi_create_object(env, &out));
  nu_set_num(env, out, "wakeups", (double)__atomic_load_n(&m->wakeups, __ATOMIC_RELAXED));
  nu_set_num(env, out, "idleWakeups", (double)__atomic_load_n(&m->idle_wakeups, __ATOMIC_RELAXED));
  uint64_t a[4] = {0, 0, 0, 0};
  pthread_mutex_lock(&m->lock);
  if (m->na) nattr_stats(m->na, a);
  pthread_mutex_unlock(&m->lock);
  const char *names[4] = {"attrHits", "attrMisses", "attrKept", "attrBumps"};
  for (int i = 0; i < 4; i++) nu_set_num(env, out, names[i], (double)a[i]);
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    NU_FN("mount", js_mount),
    NU_FN("unmount", js_unmount),
    NU_FN("invalidate", js_invalidate),
    NU_FN("setCapsAbsent", js_set_caps_absent),
    NU_FN("dispatchStats", js_dispatch_stats),
    NU_FN("attrBump", js_attr_bump),
    NU_FN("attrStage", attr_stage),
    NU_FN("replyErr", reply_err),
    NU_FN("replyEntry", reply_entry),
    NU_FN("replyCreate", reply_create),
    NU_FN("replyAttr", reply_attr),
    NU_FN("replyOpen", reply_open),
    NU_FN("replyBuf", reply_buf),
    NU_FN("replyWrite", reply_write),
    NU_FN("replyReadlink", reply_readlink),
    NU_FN("replyDir", reply_dir),
    NU_FN("replyXattr", reply_xattr),
  };
  NU_DEFINE(env, exports, props);
  nread_define(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
