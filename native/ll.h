/*
 * ll: the shared internals of the libfuse3 low-level binding (cairn_fuse.node): the request codes
 * JavaScript sees (src/fuse/lowlevel-addon.ts mirrors them), the mount (cmount) and a request on
 * its way to JavaScript (creq), and what the binding's files call of each other. Not an interface:
 * JavaScript sees the exports listed in cairn_fuse.c.
 *
 * Files: cairn_fuse.c (the module: its export table, the mount context's small exports),
 * ll_ops.c (the libfuse request table: what each request carries, what is answered natively),
 * ll_post.c (a request's life: handed to JavaScript through the thread-safe function, counted
 * outstanding until answered, answered EIO when dropped), ll_reply.c (the reply* exports: answers written back to /dev/fuse),
 * ll_mount.c (mount and unmount: the session, its worker threads, their shutdown),
 * ll_notify.c (the notifier thread: kernel cache invalidations). Native reads: nread.h; native
 * GETATTRs and LOOKUPs: nattr.h; Node-API conversions: napi_util.h.
 */
#ifndef CAIRN_LL_H
#define CAIRN_LL_H

#define FUSE_USE_VERSION 34
#include <fuse_lowlevel.h>
#include <node_api.h>
#include <pthread.h>
#include <stdint.h>

#include "napi_util.h"
#include "nattr.h"
#include "nread.h"

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
  int outstanding;  /* requests waiting for a JavaScript answer (atomic; waiters on cond are told when it reaches 0) */
  napi_threadsafe_function tsfn;
  pthread_mutex_t lock;
  pthread_cond_t cond; /* live_workers fell, or outstanding reached 0 */
  pthread_cond_t jobs; /* the notifier's: a job queued, or notifier_stop (not cond: answers would wake it) */
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

#define NTOUCHED 4

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
  nname *names;       /* names its answer (a LOOKUP's) leaves for native LOOKUPs (nattr.h) */
  /* The inodes a change of the namespace changed besides ino and ino2 (attrTouch; nattr.h); -1: more than NTOUCHED. */
  uint64_t touched[NTOUCHED];
  int ntouched;
} creq;

/* ll_post.c: requests -> JavaScript. */
/* A request of code `op` (req NULL: a notice that needs no answer) on inode `ino`. */
creq *creq_new(int op, fuse_req_t req, fuse_ino_t ino);
void creq_free(creq *r);
/* Hands r to JavaScript (answers EIO here when JavaScript is gone); counts it outstanding until answered. */
void creq_post(cmount *m, creq *r);
/*
 * Answering r, which stops counting as outstanding either way: creq_begin_reply returns 1 with
 * m->lock held and nattr's bookkeeping done when the session still exists (write the answer, then
 * creq_end_reply releases the lock and wakes unmount), else 0 (creq_drop_reply: the answer is dropped).
 */
int creq_begin_reply(creq *r);
void creq_end_reply(creq *r);
void creq_drop_reply(creq *r);
/* Answers r with expr (a fuse_reply_* call) unless the session is gone. */
#define REPLY(r, expr)             \
  do {                             \
    if (creq_begin_reply(r)) {     \
      (expr);                      \
      creq_end_reply(r);           \
    } else {                       \
      creq_drop_reply(r);          \
    }                              \
  } while (0)
/* The thread-safe function's call: r as the handler's arguments (on the JavaScript thread). */
void creq_call_js(napi_env env, napi_value fn, void *context, void *data);

/* ll_ops.c: the request table a session is made with. */
extern const struct fuse_lowlevel_ops ll_ops;

/* ll_notify.c: the notifier thread (started by ll_mount.c, stopped by notifier_stop). */
void *ll_notifier_main(void *arg);

/* cairn_fuse.c: the mount of a context (the External mount returned); NULL (a TypeError thrown) when v is not one. */
cmount *ll_mount_arg(napi_env env, napi_value v);

/* The exports (cairn_fuse.c lists them): ll_mount.c, ll_notify.c, ll_reply.c. */
napi_value js_mount(napi_env env, napi_callback_info info);
napi_value js_unmount(napi_env env, napi_callback_info info);
napi_value js_invalidate(napi_env env, napi_callback_info info);
napi_value js_attr_stage(napi_env env, napi_callback_info info);
napi_value js_attr_touch(napi_env env, napi_callback_info info);
napi_value js_name_stage(napi_env env, napi_callback_info info);
napi_value js_reply_err(napi_env env, napi_callback_info info);
napi_value js_reply_entry(napi_env env, napi_callback_info info);
napi_value js_reply_create(napi_env env, napi_callback_info info);
napi_value js_reply_attr(napi_env env, napi_callback_info info);
napi_value js_reply_open(napi_env env, napi_callback_info info);
napi_value js_reply_buf(napi_env env, napi_callback_info info);
napi_value js_reply_write(napi_env env, napi_callback_info info);
napi_value js_reply_readlink(napi_env env, napi_callback_info info);
napi_value js_reply_dir(napi_env env, napi_callback_info info);
napi_value js_reply_xattr(napi_env env, napi_callback_info info);

#endif
