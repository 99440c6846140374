/*
 * ll_mount: a mount's life. mount() makes the session and mounts it on a thread of libuv's pool,
 * then starts the worker threads (they read requests from /dev/fuse and run ll_ops.c's handlers)
 * and the notifier (ll_notify.c); unmount() detaches the mount, stops and joins every thread, and
 * destroys the session only once no request is waiting for a JavaScript answer (or a grace period
 * has passed: later answers are then dropped). When the kernel ends the connection (unmounted
 * from outside), the last worker tells JavaScript (OP_EXITED).
 */
#define _GNU_SOURCE
#include "ll.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

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
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &req_ev) != 0 ||
      epoll_ctl(ep, EPOLL_CTL_ADD, m->exitfd, &exit_ev) != 0) {
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
    creq *r = creq_new(OP_EXITED, NULL, 0);
    creq_post(m, r);
  }
  return NULL;
}

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
  pthread_create(&m->notifier, NULL, ll_notifier_main, m);
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
napi_value js_mount(napi_env env, napi_callback_info info) {
  NU_ARGS(4);
  cmount *m = calloc(1, sizeof(cmount));
  pthread_mutex_init(&m->lock, NULL);
  pthread_cond_init(&m->cond, NULL);
  pthread_cond_init(&m->jobs, NULL);
  m->exitfd = -1;
  m->mountpoint = nu_str(env, argv[0]);
  uint32_t n = nu_len(env, argv[1]);
  m->argc = (int)n + 1;
  m->argv = calloc(n + 2, sizeof(char *));
  m->argv[0] = strdup("cairn");
  for (uint32_t i = 0; i < n; i++) m->argv[i + 1] = nu_str_at(env, argv[1], i);
  m->nworkers = (int)nu_opt(env, argv[3], "workers", 4);
  if (m->nworkers < 1) m->nworkers = 1;
  if (m->nworkers > MAX_WORKERS) m->nworkers = MAX_WORKERS;
  m->max_write = (unsigned)nu_opt(env, argv[3], "maxWrite", 1 << 20);
  m->writeback = nu_opt(env, argv[3], "writeback", 0) != 0;
  /* nreadBytes: the budget of native cached reads (nread.c; 0: off). */
  m->ns = nread_new((size_t)nu_opt(env, argv[3], "nreadBytes", 0), m->nworkers - 1);
  m->na = nattr_new();
  m->max_readahead = (unsigned)nu_opt(env, argv[3], "maxReadahead", 1 << 20);
  napi_value name;
  napi_create_string_utf8(env, "cairn_fuse", NAPI_AUTO_LENGTH, &name);
  NU_CHECK(napi_create_threadsafe_function(env, argv[2], NULL, name, 0, 1, NULL, NULL, NULL, creq_call_js, &m->tsfn));
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
  nread_stop(m->ns); /* a worker waiting for a fetch's chunk */
  if (write(m->exitfd, &one, sizeof one) < 0) { /* the workers also stop on ENODEV */ }
  for (int i = 0; i < m->nworkers; i++) pthread_join(m->workers[i], NULL);
  pthread_mutex_lock(&m->lock);
  m->notifier_stop = 1;
  pthread_cond_broadcast(&m->jobs);
  pthread_mutex_unlock(&m->lock);
  pthread_join(m->notifier, NULL);
  /* Wait (bounded) for the answers JavaScript still owes, then free the session (closes /dev/fuse). */
  pthread_mutex_lock(&m->lock);
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 5;
  while (__atomic_load_n(&m->outstanding, __ATOMIC_ACQUIRE) > 0) {
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
napi_value js_unmount(napi_env env, napi_callback_info info) {
  NU_ARGS(1);
  cmount *m = ll_mount_arg(env, argv[0]);
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
