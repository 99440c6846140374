/*
 * nfetch: the cold read's range GETs received on native threads with libcurl, each chunk of a run
 * verified (BLAKE3) as its bytes arrive and written to the host cache, the body handed to
 * JavaScript without a copy (src/chunks/nativefetch.ts; docs/CHUNKS.md, "Native fetches").
 *
 * JavaScript signs each GET (src/store/s3get.ts) and calls
 *   nfetchRun(url, headers: string[], length, names: Buffer(32 n), offsets: Float64Array(n + 1),
 *             cacheDir | null, stream, allow200, connectMs, idleMs, caFile | null) -> [id, ArrayBuffer]
 * where chunk i is body bytes [offsets[i], offsets[i + 1]) named names[32 i, 32 i + 32) and the
 * ArrayBuffer is the body (`length` bytes) that a fetch thread fills (n may be 0: a plain range
 * GET, whose bytes JavaScript checks itself — partial-chunk blocks). What happens comes back
 * through the thread-safe function given to nfetchStart: onEvent(id, kind, i, detail):
 *   NF_CHUNK i   chunk i's bytes are in the body and gave its name;
 *   NF_BAD i     chunk i's bytes did not give its name (never handed over);
 *   NF_CACHED i  chunk i's cache write is over (detail 1 written, 0 failed: the cache is an optimisation);
 *   NF_END       the job is over: detail undefined when the body arrived whole, else why not (an HTTP
 *                status other than 206 — or 200 when allow200 —, curl's error, nothing heard for
 *                idleMs — checked by curl's progress callback, at least once a second —, a short body).
 *
 * Invariants:
 * - a chunk is handed over only after the BLAKE3 of its bytes, as they are in the body JavaScript
 *   sees, equalled its name; nothing writes those bytes afterwards (the thread only appends);
 * - a chunk is written to the cache only once verified, atomically (ncache_write: temp + rename);
 * - every chunk of a queued run is expected by the mounts' native reads (nread_expect) until it was
 *   offered to them, found damaged, or the GET ended without it (nread_settle, exactly once each);
 * - the body is freed once both JavaScript's ArrayBuffer was collected and the thread is done with
 *   it (a reference count of two); the process may exit with jobs in flight;
 * - NF_THREADS fetch threads, each with its own curl handle (and so its own kept-alive connection);
 *   more jobs queue; the thread-safe function keeps the event loop alive only while a job is open;
 * - no proxy from the environment (as Node's http, which the JavaScript reads use); TLS is
 *   verified with the system's CA certificates and those of caFile (JavaScript passes
 *   $NODE_EXTRA_CA_CERTS); a failure is an NF_END error: JavaScript then fetches the run itself,
 *   and stops using native fetches for that store.
 */
#define _GNU_SOURCE
#include "nfetch.h"
#include "ncache.h"
#include "napi_util.h"
#include "nread.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { NF_CHUNK = 0, NF_BAD = 1, NF_CACHED = 2, NF_END = 3 };
#define NF_THREADS 8

#ifndef CAIRN_NO_CURL
#include <curl/curl.h>

typedef struct nf_job {
  struct nf_job *next;
  double id;
  char *url;
  struct curl_slist *headers;
  char *cache_dir;
  char *ca_file; /* CAs trusted besides the system's (JavaScript's $NODE_EXTRA_CA_CERTS), or NULL */
  uint8_t *body;
  size_t length, received;
  size_t n, verified; /* chunks; chunks checked so far */
  uint8_t *names;     /* 32 n */
  double *offs;       /* n + 1 */
  uint8_t *good;      /* n: verified (not stream: handed over at the end) */
  int stream, allow200, status_ok, refs;
  long connect_ms, idle_ms;
  uint64_t heard_ns; /* when the last byte (or the request) was */
} nf_job;

typedef struct {
  double id;
  int kind, i;
  int detail;   /* NF_CACHED: 1 written */
  char *error;  /* NF_END: malloc'd, or NULL */
} nf_event;

static struct {
  pthread_mutex_t lock;
  pthread_cond_t wake;
  nf_job *head, *tail;
  int threads, stopping;
  napi_env env; /* the one environment the pool serves */
  napi_threadsafe_function tsfn;
  double next_id;
  size_t open; /* jobs not yet ended (JavaScript thread only) */
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static void job_unref(nf_job *j) {
  if (__atomic_sub_fetch(&j->refs, 1, __ATOMIC_ACQ_REL) > 0) return;
  free(j->url);
  curl_slist_free_all(j->headers);
  free(j->cache_dir);
  free(j->ca_file);
  free(j->body);
  free(j->names);
  free(j->offs);
  free(j->good);
  free(j);
}

/* Chunks [from, n) of j will not be offered: READs waiting for them go to JavaScript (nread_settle). */
static void settle_rest(nf_job *j, size_t from) {
  for (size_t i = from; i < j->n; i++) nread_settle(j->names + 32 * i);
}

static void post(nf_job *j, int kind, size_t i, int detail, const char *error) {
  nf_event *e = calloc(1, sizeof *e);
  if (!e) return;
  e->id = j->id;
  e->kind = kind;
  e->i = (int)i;
  e->detail = detail;
  e->error = error ? strdup(error) : NULL;
  if (napi_call_threadsafe_function(pool.tsfn, e, napi_tsfn_blocking) != napi_ok) {
    free(e->error);
    free(e);
  }
}

/* Checks every chunk whose bytes are all in: hands it over (or names it bad), then caches it. */
static void progress(nf_job *j) {
  while (j->verified < j->n && (size_t)j->offs[j->verified + 1] <= j->received) {
    size_t i = j->verified++;
    size_t at = (size_t)j->offs[i], len = (size_t)j->offs[i + 1] - at;
    uint8_t d[32];
    ncache_digest(j->body + at, len, d);
    if (memcmp(d, j->names + 32 * i, 32) != 0) {
      nread_settle(j->names + 32 * i);
      post(j, NF_BAD, i, 0, NULL);
      continue;
    }
    j->good[i] = 1;
    nread_offer(j->names + 32 * i, j->body + at, len); /* mounts' native reads take it from here */
    nread_settle(j->names + 32 * i);                   /* and READs waiting for it find it there */
    if (j->stream) post(j, NF_CHUNK, i, 0, NULL);
    if (j->cache_dir) post(j, NF_CACHED, i, ncache_write(j->cache_dir, j->names + 32 * i, "", NULL, 0, j->body + at, len) == 0, NULL);
  }
}

static uint64_t mono_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* Gives up when nothing was heard for the store's idle limit (curl calls this at least once a second). */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
  nf_job *j = ud;
  return __atomic_load_n(&pool.stopping, __ATOMIC_ACQUIRE) || mono_ns() - j->heard_ns > (uint64_t)j->idle_ms * 1000000ull;
}

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud) {
  nf_job *j = ud;
  size_t len = size * nmemb;
  j->heard_ns = mono_ns();
  if (__atomic_load_n(&pool.stopping, __ATOMIC_ACQUIRE) || !j->status_ok) return 0;
  size_t take = len < j->length - j->received ? len : j->length - j->received;
  memcpy(j->body + j->received, p, take);
  j->received += take;
  progress(j);
  return take; /* more than asked for (a server that ignored the range's end): stop there */
}

/* Called when the headers are in: only 206 (or 200 when the range starts at 0) is a body to take. */
static size_t on_header(char *p, size_t size, size_t nmemb, void *ud) {
  nf_job *j = ud;
  j->heard_ns = mono_ns(); /* a server slow to send the body is timed from its headers */
  if (nmemb * size >= 5 && memcmp(p, "HTTP/", 5) == 0) {
    int code = 0;
    const char *sp = memchr(p, ' ', size * nmemb);
    if (sp) code = atoi(sp + 1);
    j->status_ok = code == 206 || (code == 200 && j->allow200);
  }
  return size * nmemb;
}

static void run_job(CURL *h, nf_job *j) {
  char err[CURL_ERROR_SIZE] = "";
  curl_easy_reset(h);
  curl_easy_setopt(h, CURLOPT_URL, j->url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, j->headers);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROXY, "");
  if (j->ca_file) curl_easy_setopt(h, CURLOPT_CAINFO, j->ca_file); /* the CA path (/etc/ssl/certs) stays */
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, j->connect_ms);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, j);
  curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 512L * 1024);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, j);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, j);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
  j->heard_ns = mono_ns();
  CURLcode rc = curl_easy_perform(h);
  long code = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  char why[CURL_ERROR_SIZE + 64] = "";
  if (rc == CURLE_ABORTED_BY_CALLBACK && !__atomic_load_n(&pool.stopping, __ATOMIC_ACQUIRE)) {
    snprintf(err, sizeof err, "nothing heard for %ld ms", j->idle_ms); /* on_progress gave up */
  }
  if (!j->status_ok && code == 0) snprintf(why, sizeof why, "%s", err[0] ? err : curl_easy_strerror(rc)); /* no answer: TLS, connect */
  else if (!j->status_ok) snprintf(why, sizeof why, "HTTP %ld", code);
  else if (j->received < j->length)
    snprintf(why, sizeof why, "%zu of %zu bytes: %s", j->received, j->length, err[0] ? err : curl_easy_strerror(rc));
  settle_rest(j, j->verified);
  if (!why[0] && !j->stream)
    for (size_t i = 0; i < j->n; i++)
      if (j->good[i]) post(j, NF_CHUNK, i, 0, NULL);
  post(j, NF_END, 0, 0, why[0] ? why : NULL);
}

static void *fetch_thread(void *arg) {
  CURL *h = curl_easy_init();
  for (;;) {
    pthread_mutex_lock(&pool.lock);
    while (!pool.head && !pool.stopping) pthread_cond_wait(&pool.wake, &pool.lock);
    nf_job *j = pool.stopping ? NULL : pool.head; /* at exit, queued jobs are left (and their memory) */
    if (j) {
      pool.head = j->next;
      if (!pool.head) pool.tail = NULL;
    }
    pthread_mutex_unlock(&pool.lock);
    if (!j) break;
    if (h) run_job(h, j);
    else {
      settle_rest(j, 0);
      post(j, NF_END, 0, 0, "curl_easy_init failed");
    }
    job_unref(j);
  }
  if (h) curl_easy_cleanup(h);
  return NULL;
}

static void call_js(napi_env env, napi_value fn, void *context, void *data) {
  nf_event *e = data;
  if (env && fn) {
    napi_value args[4], undef;
    napi_get_undefined(env, &undef);
    napi_create_double(env, e->id, &args[0]);
    napi_create_int32(env, e->kind, &args[1]);
    napi_create_int32(env, e->i, &args[2]);
    if (e->kind == NF_END) {
      if (e->error) napi_create_string_utf8(env, e->error, NAPI_AUTO_LENGTH, &args[3]);
      else args[3] = undef;
      if (pool.open > 0 && --pool.open == 0) napi_unref_threadsafe_function(env, pool.tsfn);
    } else
      napi_create_int32(env, e->detail, &args[3]);
    napi_call_function(env, undef, fn, 4, args, NULL);
  }
  free(e->error);
  free(e);
}

static void stop_pool(void *arg) {
  pthread_mutex_lock(&pool.lock);
  pool.stopping = 1;
  pthread_cond_broadcast(&pool.wake);
  pthread_mutex_unlock(&pool.lock);
  napi_release_threadsafe_function(pool.tsfn, napi_tsfn_abort);
}

/* nfetchStart(onEvent) -> true when this environment has the pool (the first to ask), else false. */
static napi_value js_start(napi_env env, napi_callback_info info) {
  NU_ARGS(1);
  if (pool.env) return nu_bool(env, pool.env == env && !pool.stopping);
  if (!ncache_blake3_ok() || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return nu_bool(env, 0);
  napi_value name;
  NU_CHECK(napi_create_string_utf8(env, "cairn-nfetch", NAPI_AUTO_LENGTH, &name));
  NU_CHECK(napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, NULL, NULL, NULL, call_js, &pool.tsfn));
  NU_CHECK(napi_unref_threadsafe_function(env, pool.tsfn));
  pool.env = env;
  napi_add_env_cleanup_hook(env, stop_pool, NULL);
  return nu_bool(env, 1);
}

/* The body's ArrayBuffer was collected (V8 counts its bytes as external memory itself). */
static void body_gone(napi_env env, void *data, void *hint) { job_unref(hint); }

/* nfetchRun(...) -> [id, body]: see the header. Throws on bad arguments. */
static napi_value js_run(napi_env env, napi_callback_info info) {
  NU_ARGS(11);
  if (pool.env != env || pool.stopping) {
    napi_throw_error(env, NULL, "cairn_fuse: nfetchRun before nfetchStart");
    return NULL;
  }
  double *offs = NULL;
  void *names = NULL;
  size_t noffs = 0, nlen = 0;
  double length = nu_num(env, argv[2]);
  uint32_t nh = nu_len(env, argv[1]);
  if (!nu_f64(env, argv[4], &offs, &noffs) || noffs < 1 || !nu_buf(env, argv[3], &names, &nlen) || nlen != 32 * (noffs - 1) ||
      length < 1 || length > (double)(1ull << 32) || offs[0] != 0 || offs[noffs - 1] > length) {
    napi_throw_type_error(env, NULL, "cairn_fuse: nfetchRun(url, headers, length, Buffer(32n), Float64Array(n+1), dir, …)");
    return NULL;
  }
  for (size_t i = 0; i + 1 < noffs; i++)
    if (!(offs[i] < offs[i + 1])) {
      napi_throw_type_error(env, NULL, "cairn_fuse: nfetchRun: offsets must increase");
      return NULL;
    }
  nf_job *j = calloc(1, sizeof *j);
  if (!j) return NULL;
  j->refs = 2;
  j->length = (size_t)length;
  j->n = noffs - 1;
  j->url = nu_str(env, argv[0]);
  j->cache_dir = nu_str(env, argv[5]);
  j->ca_file = nu_str(env, argv[10]);
  j->body = malloc(j->length);
  j->names = malloc(nlen + 1); /* n = 0: a plain range GET, the body only */
  j->offs = malloc(noffs * sizeof(double));
  j->good = calloc(j->n + 1, 1);
  bool stream = false, allow200 = false;
  napi_get_value_bool(env, argv[6], &stream);
  napi_get_value_bool(env, argv[7], &allow200);
  j->stream = stream;
  j->allow200 = allow200;
  j->connect_ms = (long)nu_num(env, argv[8]);
  j->idle_ms = (long)nu_num(env, argv[9]);
  int ok = j->url && j->body && j->names && j->offs && j->good;
  for (uint32_t i = 0; ok && i < nh; i++) {
    char *hv = nu_str_at(env, argv[1], i);
    struct curl_slist *l = hv ? curl_slist_append(j->headers, hv) : NULL;
    free(hv);
    if (l) j->headers = l;
    else ok = 0;
  }
  if (!ok) {
    j->refs = 1;
    job_unref(j);
    napi_throw_error(env, NULL, "cairn_fuse: nfetchRun: out of memory or a header is not a string");
    return NULL;
  }
  if (nlen) memcpy(j->names, names, nlen);
  memcpy(j->offs, offs, noffs * sizeof(double));
  j->id = pool.next_id++;
  napi_value out, idv, ab;
  if (napi_create_external_arraybuffer(env, j->body, j->length, body_gone, j, &ab) != napi_ok) {
    j->refs = 1;
    job_unref(j);
    napi_throw_error(env, NULL, "cairn_fuse: nfetchRun: no external ArrayBuffer");
    return NULL;
  }
  pthread_mutex_lock(&pool.lock);
  if (pool.threads < NF_THREADS) {
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &a, fetch_thread, NULL) == 0) pool.threads++;
    pthread_attr_destroy(&a);
  }
  int threads = pool.threads;
  if (threads > 0) {
    for (size_t i = 0; i < j->n; i++) nread_expect(j->names + 32 * i); /* settled by the thread, each once */
    if (pool.tail) pool.tail->next = j;
    else pool.head = j;
    pool.tail = j;
    pthread_cond_signal(&pool.wake);
  }
  pthread_mutex_unlock(&pool.lock);
  if (threads == 0) {
    job_unref(j); /* the thread's share; the ArrayBuffer's finalizer drops the other */
    napi_throw_error(env, NULL, "cairn_fuse: nfetchRun: no fetch thread could start");
    return NULL;
  }
  if (pool.open++ == 0) napi_ref_threadsafe_function(env, pool.tsfn);
  NU_CHECK(napi_create_array_with_length(env, 2, &out));
  NU_CHECK(napi_create_double(env, j->id, &idv));
  napi_set_element(env, out, 0, idv);
  napi_set_element(env, out, 1, ab);
  return out;
}

void nfetch_define(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {NU_FN("nfetchStart", js_start), NU_FN("nfetchRun", js_run)};
  NU_DEFINE(env, exports, props);
}

#else /* built without libcurl's headers: no native fetches (JavaScript fetches everything) */

void nfetch_define(napi_env env, napi_value exports) {}

#endif
