/*
 * cairn_fuse: a libfuse3 low-level (inode) binding for Node, in C against Node-API. This file is
 * the module: its export table (the whole interface JavaScript sees, src/fuse/lowlevel-addon.ts)
 * and the mount context's small exports (setCapsAbsent, attrBump, dispatchStats); ll.h lists
 * the files that do the rest.
 *
 * Threads: a fixed pool of worker threads reads requests from /dev/fuse (non-blocking fd, polled
 * together with an eventfd that tells them to stop) and hands each request to JavaScript through
 * one thread-safe function. JavaScript answers later, on its own thread, with one of the reply*
 * exports (fuse_reply_* writes the answer to /dev/fuse: a copy into the waiting request, it never
 * waits on the file system). A notifier thread runs the kernel cache invalidations
 * (fuse_lowlevel_notify_inval_entry / _inode), which may wait on inode locks held by a process that
 * waits on a request: they never run on a worker or on the JavaScript thread.
 *
 * Invariants:
 * - every request that reaches JavaScript carries an External (struct creq); a reply* call
 *   answers it once (later calls on the same request throw); forget needs no answer and is
 *   answered here (fuse_reply_none) before JavaScript hears of it;
 * - statfs, fsyncdir and init are answered here;
 * - unmount detaches the mount, stops and joins every thread, and destroys the session only once
 *   no request is waiting for a JavaScript answer (or a grace period has passed: later answers are
 *   then dropped).
 */
#define _GNU_SOURCE
#include "ll.h"
#include "nfetch.h"

#include <malloc.h>

cmount *ll_mount_arg(napi_env env, napi_value v) {
  cmount *m = nu_external(env, v);
  if (!m) napi_throw_type_error(env, NULL, "cairn_fuse: not a mount");
  return m;
}

nstore *cairn_nstore(napi_env env, napi_value ctx) {
  cmount *m = nu_external(env, ctx);
  return m ? m->ns : NULL;
}

/* setCapsAbsent(ctx, absent): whether getxattr of security.capability may be answered ENODATA natively. */
static napi_value js_set_caps_absent(napi_env env, napi_callback_info info) {
  NU_ARGS(2);
  cmount *m = ll_mount_arg(env, argv[0]);
  if (!m) return NULL;
  bool absent = false;
  NU_CHECK(napi_get_value_bool(env, argv[1], &absent));
  __atomic_store_n(&m->caps_absent, absent ? 1 : 0, __ATOMIC_RELEASE);
  return NULL;
}

/* attrBump(ctx): a change made outside any request (reload, commit): no native GETATTR answers from before it. */
static napi_value js_attr_bump(napi_env env, napi_callback_info info) {
  NU_ARGS(1);
  cmount *m = ll_mount_arg(env, argv[0]);
  if (!m) return NULL;
  pthread_mutex_lock(&m->lock);
  if (m->na) nattr_bump(m->na);
  pthread_mutex_unlock(&m->lock);
  return NULL;
}

/*
 * inoRelease(ctx, ino) -> boolean: whether JavaScript may drop inode `ino` (no native lookup of it is
 * held by the kernel; it is answered with no longer), or must keep it (nattr.h, "Lookup counts").
 */
static napi_value js_ino_release(napi_env env, napi_callback_info info) {
  NU_ARGS(2);
  cmount *m = ll_mount_arg(env, argv[0]);
  if (!m) return NULL;
  pthread_mutex_lock(&m->lock);
  bool ok = !m->na || nattr_release(m->na, (uint64_t)nu_num(env, argv[1]));
  pthread_mutex_unlock(&m->lock);
  napi_value out;
  NU_CHECK(napi_get_boolean(env, ok, &out));
  return out;
}

/*
 * dispatchStats(ctx) -> { wakeups, idleWakeups, attrHits, attrMisses, attrKept, attrBumps,
 * lookupHits, lookupMisses, namesKept, inodesHeld }: workers woken with a request to read and with
 * none; GETATTRs and LOOKUPs answered natively (nattr.c) and not.
 */
static napi_value js_dispatch_stats(napi_env env, napi_callback_info info) {
  NU_ARGS(1);
  cmount *m = ll_mount_arg(env, argv[0]);
  if (!m) return NULL;
  napi_value out;
  NU_CHECK(napi_create_object(env, &out));
  uint64_t v[2 + NATTR_STATS] = {__atomic_load_n(&m->wakeups, __ATOMIC_RELAXED),
                                 __atomic_load_n(&m->idle_wakeups, __ATOMIC_RELAXED)};
  pthread_mutex_lock(&m->lock);
  if (m->na) nattr_stats(m->na, v + 2);
  pthread_mutex_unlock(&m->lock);
  static const char *keys[2 + NATTR_STATS] = {"wakeups",    "idleWakeups",  "attrHits",  "attrMisses", "attrKept",
                                              "attrBumps",  "lookupHits",   "lookupMisses", "namesKept", "inodesHeld"};
  nu_set_figures(env, out, keys, v, 2 + NATTR_STATS);
  return out;
}

/*
 * mallocTune(mmapThreshold, trimThreshold) -> boolean: glibc's malloc keeps freed memory up to these
 * sizes instead of handing it back to the kernel (mallopt M_MMAP_THRESHOLD, M_TRIM_THRESHOLD; both
 * fixed, which also ends glibc's own adjustment). Cold reads allocate a fetch body or a chunk
 * buffer for every byte they bring; memory handed back and taken again costs a page fault and a
 * zeroed page per 4 KiB (on a VM, a fault in the hypervisor too). Process-wide: src/util/addon.ts
 * calls it for a process that mounts or fetches natively.
 */
static napi_value js_malloc_tune(napi_env env, napi_callback_info info) {
  NU_ARGS(2);
  double mmap_at = nu_num(env, argv[0]), trim_at = nu_num(env, argv[1]);
  bool ok = mmap_at >= 0 && mmap_at <= (double)INT32_MAX && trim_at >= 0 && trim_at <= (double)INT32_MAX &&
            mallopt(M_MMAP_THRESHOLD, (int)mmap_at) == 1 && mallopt(M_TRIM_THRESHOLD, (int)trim_at) == 1;
  napi_value out;
  NU_CHECK(napi_get_boolean(env, ok, &out));
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
    NU_FN("attrStage", js_attr_stage),
    NU_FN("attrTouch", js_attr_touch),
    NU_FN("nameStage", js_name_stage),
    NU_FN("inoRelease", js_ino_release),
    NU_FN("replyErr", js_reply_err),
    NU_FN("replyEntry", js_reply_entry),
    NU_FN("replyCreate", js_reply_create),
    NU_FN("replyAttr", js_reply_attr),
    NU_FN("replyOpen", js_reply_open),
    NU_FN("replyBuf", js_reply_buf),
    NU_FN("replyWrite", js_reply_write),
    NU_FN("replyReadlink", js_reply_readlink),
    NU_FN("replyDir", js_reply_dir),
    NU_FN("replyXattr", js_reply_xattr),
    NU_FN("mallocTune", js_malloc_tune),
  };
  NU_DEFINE(env, exports, props);
  nread_define(env, exports);
  nfetch_define(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

