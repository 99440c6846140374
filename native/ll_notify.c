/*
 * ll_notify: kernel cache invalidations. invalidate() queues a job (entries by parent and name,
 * inodes) on the JavaScript thread; the notifier thread runs it (fuse_lowlevel_notify_inval_entry
 * / _inode) and posts OP_NOTIFY_DONE with the count of failures, which calls the job's callback.
 * An invalidation may wait on inode locks held by a process that waits on a request: it never
 * runs on a worker or on the JavaScript thread. After unmount (or the kernel's end) jobs are
 * only completed, not run.
 */
#define _GNU_SOURCE
#include "ll.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void *ll_notifier_main(void *arg) {
  cmount *m = arg;
  for (;;) {
    pthread_mutex_lock(&m->lock);
    while (!m->jobs_head && !m->notifier_stop) pthread_cond_wait(&m->jobs, &m->lock);
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
    creq *r = creq_new(OP_NOTIFY_DONE, NULL, 0);
    r->done = j->done;
    r->n[0] = failed;
    creq_post(m, r);
    free(j->parents);
    free(j->names);
    free(j->inodes);
    free(j);
  }
  return NULL;
}

/* invalidate(ctx, parents: number[], names: string[], inodes: number[], done(failed)) */
napi_value js_invalidate(napi_env env, napi_callback_info info) {
  NU_ARGS(5);
  cmount *m = ll_mount_arg(env, argv[0]);
  if (!m) return NULL;
  uint32_t ne = nu_len(env, argv[1]), ni = nu_len(env, argv[3]);
  notify_job *j = calloc(1, sizeof *j);
  j->n_entries = ne;
  j->n_inodes = ni;
  j->parents = calloc(ne + 1, sizeof(uint64_t));
  j->names = calloc(ne + 1, sizeof(char *));
  j->inodes = calloc(ni + 1, sizeof(uint64_t));
  for (uint32_t i = 0; i < ne; i++) {
    j->parents[i] = (uint64_t)nu_num_at(env, argv[1], i);
    j->names[i] = nu_str_at(env, argv[2], i);
  }
  for (uint32_t i = 0; i < ni; i++) j->inodes[i] = (uint64_t)nu_num_at(env, argv[3], i);
  NU_CHECK(napi_create_reference(env, argv[4], 1, &j->done));
  pthread_mutex_lock(&m->lock);
  if (m->jobs_tail) m->jobs_tail->next = j; else m->jobs_head = j;
  m->jobs_tail = j;
  pthread_cond_signal(&m->jobs);
  pthread_mutex_unlock(&m->lock);
  return NULL;
}
