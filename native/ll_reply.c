/*
 * ll_reply: the reply* exports (and attrStage), on the JavaScript thread: JavaScript answers a
 * request (the External ll_post.c gave it) and the answer is written to /dev/fuse (fuse_reply_*:
 * a copy into the waiting request, never a wait on the file system).
 *
 * Invariants: a request is answered once (take: a second answer throws); the answer is written
 * under the mount's lock after nattr's bookkeeping (creq_begin_reply, ll_post.c) and only while
 * the session exists (after unmount destroyed it, the answer is dropped); either way it stops
 * counting as outstanding.
 */
#define _GNU_SOURCE
#include "ll.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Numbers per entry of replyDir's list. */
#define DIR_STRIDE 10

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

/* NU_ARGS(n), then r: the request of argv[0], taken for answering (returns NULL when it cannot be). */
#define REQ_ARGS(n)                  \
  NU_ARGS(n);                        \
  creq *r = take(env, argv[0]);      \
  if (!r) return NULL

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
napi_value js_reply_xattr(napi_env env, napi_callback_info info) {
  REQ_ARGS(2);
  size_t n = (size_t)nu_num(env, argv[1]);
  REPLY(r, fuse_reply_xattr(r->req, n));
  return NULL;
}

/* replyErr(req, errno) */
napi_value js_reply_err(napi_env env, napi_callback_info info) {
  REQ_ARGS(2);
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
napi_value js_reply_entry(napi_env env, napi_callback_info info) {
  REQ_ARGS(10);
  struct fuse_entry_param e;
  entry_from(env, argv, &e);
  nattr_push(&r->attrs, e.ino, &e.attr, e.attr_timeout);
  REPLY(r, fuse_reply_entry(r->req, &e));
  return NULL;
}

/* replyCreate(req, ino, mode, nlink, uid, gid, size, mtimeMs, attrTimeout, entryTimeout, fh, keepCache, directIo) */
napi_value js_reply_create(napi_env env, napi_callback_info info) {
  REQ_ARGS(13);
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
napi_value js_reply_attr(napi_env env, napi_callback_info info) {
  REQ_ARGS(9);
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
napi_value js_attr_stage(napi_env env, napi_callback_info info) {
  NU_ARGS(9);
  creq *r = req_arg(env, argv[0]);
  if (!r) return NULL;
  if (r->replied) return NULL; /* answered already (a time limit): nothing to leave */
  struct stat st;
  attr_from(env, argv + 1, &st);
  nattr_push(&r->attrs, st.st_ino, &st, nu_num(env, argv[8]));
  return NULL;
}

/*
 * nameStage(req, parent, name, ino, entryTimeout): a name of directory `parent` a LOOKUP's answer
 * leaves for native LOOKUPs (nattr.h, "Names"), with the attributes staged for `ino` (attrStage).
 */
napi_value js_name_stage(napi_env env, napi_callback_info info) {
  NU_ARGS(5);
  creq *r = req_arg(env, argv[0]);
  if (!r || r->replied || r->op != OP_LOOKUP) return NULL;
  char name[1024];
  size_t len = 0;
  if (napi_get_value_string_utf8(env, argv[2], name, sizeof name, &len) != napi_ok || len + 1 >= sizeof name) return NULL;
  nattr_name_push(&r->names, (uint64_t)nu_num(env, argv[1]), name, (uint64_t)nu_num(env, argv[3]), nu_num(env, argv[4]));
  return NULL;
}

/*
 * attrTouch(req, ino): an inode whose attributes `req`'s answer (a change of the namespace) changed
 * besides the request's own; a request that names none changed anything's (nattr.h).
 */
napi_value js_attr_touch(napi_env env, napi_callback_info info) {
  NU_ARGS(2);
  creq *r = req_arg(env, argv[0]);
  if (!r || r->replied || r->ntouched < 0) return NULL;
  double ino = nu_num(env, argv[1]);
  if (!(ino > 0) || r->ntouched == NTOUCHED) r->ntouched = -1; /* unknown scope: anything */
  else r->touched[r->ntouched++] = (uint64_t)ino;
  return NULL;
}

/* replyOpen(req, fh, keepCache, directIo) */
napi_value js_reply_open(napi_env env, napi_callback_info info) {
  REQ_ARGS(4);
  struct fuse_file_info fi;
  memset(&fi, 0, sizeof fi);
  fi.fh = (uint64_t)nu_num(env, argv[1]);
  fi.keep_cache = nu_num(env, argv[2]) != 0;
  fi.direct_io = nu_num(env, argv[3]) != 0;
  REPLY(r, fuse_reply_open(r->req, &fi));
  return NULL;
}

/* replyBuf(req, buffer, length) */
napi_value js_reply_buf(napi_env env, napi_callback_info info) {
  REQ_ARGS(3);
  void *data = NULL;
  size_t len = 0;
  nu_buf(env, argv[1], &data, &len); /* null or undefined: nothing */
  size_t want = (size_t)nu_num(env, argv[2]);
  if (want < len) len = want;
  REPLY(r, fuse_reply_buf(r->req, data, len));
  return NULL;
}

/* replyWrite(req, count) */
napi_value js_reply_write(napi_env env, napi_callback_info info) {
  REQ_ARGS(2);
  size_t n = (size_t)nu_num(env, argv[1]);
  REPLY(r, fuse_reply_write(r->req, n));
  return NULL;
}

/* replyReadlink(req, target) */
napi_value js_reply_readlink(napi_env env, napi_callback_info info) {
  REQ_ARGS(2);
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
napi_value js_reply_dir(napi_env env, napi_callback_info info) {
  REQ_ARGS(10);
  bool plus = false;
  napi_get_value_bool(env, argv[1], &plus);
  size_t size = (size_t)nu_num(env, argv[2]);
  double first = nu_num(env, argv[3]);
  uint32_t count = nu_len(env, argv[4]);
  size_t nlen = 0;
  double *nums = NULL;
  nu_f64(env, argv[5], &nums, &nlen);
  /* argv[6], argv[7] (uid, gid): unused, the entries carry their own. */
  double at = nu_num(env, argv[8]), et = nu_num(env, argv[9]);
  if (nlen < (size_t)count * DIR_STRIDE) count = (uint32_t)(nlen / DIR_STRIDE);
  /* Names first, outside the lock (a JS call may run a GC finalizer that takes it). */
  char **names = calloc(count + 1, sizeof(char *));
  for (uint32_t i = 0; i < count; i++) {
    names[i] = nu_str_at(env, argv[4], i);
    if (!names[i]) names[i] = strdup("?");
  }
  char *buf = malloc(size ? size : 1);
  size_t used = 0;
  uint32_t packed = 0;
  if (creq_begin_reply(r)) {
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
    creq_end_reply(r);
  } else {
    creq_drop_reply(r);
  }
  for (uint32_t i = 0; i < count; i++) free(names[i]);
  free(names);
  free(buf);
  napi_value out;
  napi_create_uint32(env, packed, &out);
  return out;
}
