/*
 * ll_post: requests handed to JavaScript. A worker thread (or the notifier) makes a creq and posts
 * it through the mount's one thread-safe function; on the JavaScript thread creq_call_js calls
 * the handler with the request's numbers and strings and an External that carries it.
 *
 * Invariants: a request that needs an answer is counted outstanding from its post until it is
 * answered (ll_reply.c, through creq_begin_reply/creq_end_reply here, which do nattr's
 * bookkeeping first and drop the answer once the session is destroyed), answered here with EIO
 * when JavaScript is gone, or answered EIO when its External is collected unanswered
 * (finalize_req); notices (req NULL: forget, exited, notify done, read ahead) are freed once
 * JavaScript has heard of them.
 */
#define _GNU_SOURCE
#include "ll.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>

creq *creq_new(int op, fuse_req_t req, fuse_ino_t ino) {
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

void creq_free(creq *r) {
  for (nattr_item *i = r->attrs, *n; i; i = n) n = i->next, free(i);
  nattr_names_free(&r->names);
  free(r->s1);
  free(r->s2);
  free(r->data);
  free(r);
}

void creq_post(cmount *m, creq *r) {
  /* No lock: the only reader that cares (unmount's drain) runs after the workers, which post, are joined. */
  if (r->req) __atomic_add_fetch(&m->outstanding, 1, __ATOMIC_ACQ_REL);
  r->m = m;
  if (napi_call_threadsafe_function(m->tsfn, r, napi_tsfn_nonblocking) != napi_ok) {
    /* JavaScript is gone (shutting down): answer here. */
    if (r->req) {
      fuse_reply_err(r->req, EIO);
      pthread_mutex_lock(&m->lock);
      creq_end_reply(r);
    }
    creq_free(r);
  }
}

/* What answering `r` may have changed (nattr.h): nothing, some inodes' attributes (its inode's, or those
 * a change of the namespace named: `inodes`), or anything. */
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
    case OP_CREATE: case OP_MKNOD: case OP_MKDIR: case OP_SYMLINK: case OP_LINK: case OP_UNLINK: case OP_RMDIR:
    case OP_RENAME:
      return r->ntouched > 0 ? NATTR_INODE : NATTR_ALL; /* the inodes JavaScript named, with the request's own */
    default:
      return NATTR_ALL;
  }
}

/* The inodes a change of scope NATTR_INODE changed: the request's (a namespace change's directories), those named. */
static int inodes(const creq *r, uint64_t out[NTOUCHED + 2]) {
  int n = 0;
  out[n++] = r->ino;
  if (r->ino2) out[n++] = r->ino2;
  for (int i = 0; i < r->ntouched; i++) out[n++] = r->touched[i];
  return n;
}

int creq_begin_reply(creq *r) {
  pthread_mutex_lock(&r->m->lock);
  int ok = !r->m->destroyed;
  if (!ok) pthread_mutex_unlock(&r->m->lock);
  else {
    uint64_t inos[NTOUCHED + 2];
    nattr_settle(r->m->na, r->gen, op_scope(r), inos, inodes(r, inos), &r->attrs, &r->names); /* before the kernel has the answer */
  }
  return ok; /* lock held when ok: creq_end_reply releases it (destroy cannot run in between) */
}

void creq_end_reply(creq *r) {
  /* Only unmount's drain waits on it, for 0: a broadcast per answer would be a futex call for nothing. */
  if (__atomic_sub_fetch(&r->m->outstanding, 1, __ATOMIC_ACQ_REL) == 0) pthread_cond_broadcast(&r->m->cond);
  pthread_mutex_unlock(&r->m->lock);
}

void creq_drop_reply(creq *r) {
  pthread_mutex_lock(&r->m->lock);
  __atomic_sub_fetch(&r->m->outstanding, 1, __ATOMIC_ACQ_REL);
  pthread_mutex_unlock(&r->m->lock);
}

static void finalize_req(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  creq *r = data;
  if (!r->replied && r->req) {
    /* A request JavaScript dropped without answering: answer EIO rather than hang the caller. */
    REPLY(r, fuse_reply_err(r->req, EIO));
  }
  creq_free(r);
}

static void free_data(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

void creq_call_js(napi_env env, napi_value fn, void *context, void *data) {
  (void)context;
  creq *r = data;
  if (env == NULL) {
    if (r->req) fuse_reply_err(r->req, EIO);
    creq_free(r);
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
    creq_free(r);
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
  if (!r->req) creq_free(r);
}
