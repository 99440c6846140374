/*
 * napi_util: the Node-API boilerplate the addon's exports share, on the JavaScript thread:
 * fetching arguments, reading numbers, strings, Buffers, Float64Arrays and Externals, making
 * booleans, setting figures on a stats object, and the entries of an export table. What it throws
 * is a JavaScript exception whose message starts "cairn_fuse: ".
 */
#ifndef CAIRN_NAPI_UTIL_H
#define CAIRN_NAPI_UTIL_H

#include <node_api.h>
#include <stddef.h>
#include <stdint.h>

/* Declares argc and argv[n] and fetches the arguments: returns NULL (a TypeError thrown) when fewer than n. */
#define NU_ARGS(n)                                                                   \
  size_t argc = n;                                                                   \
  napi_value argv[n];                                                                \
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < n) { \
    napi_throw_type_error(env, NULL, "cairn_fuse: too few arguments");               \
    return NULL;                                                                     \
  }

/* Returns NULL (an Error thrown) when a Node-API call fails. */
#define NU_CHECK(call)                                             \
  do {                                                             \
    if ((call) != napi_ok) {                                       \
      napi_throw_error(env, NULL, "cairn_fuse: " #call " failed"); \
      return NULL;                                                 \
    }                                                              \
  } while (0)

/* An entry of an export table: the function fn, exported as name. */
#define NU_FN(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_enumerable, NULL}
/* Defines the entries of an export table (an array) on exports. */
#define NU_DEFINE(env, exports, props) napi_define_properties(env, exports, sizeof props / sizeof props[0], props)

/* A number (0 when v is not one). */
double nu_num(napi_env env, napi_value v);
/* A string as a malloc'd UTF-8 copy; NULL when v is not a string. */
char *nu_str(napi_env env, napi_value v);
/* 1 and a Buffer's bytes in *d, *len; 0 (*d NULL, *len 0) when v is not one. */
int nu_buf(napi_env env, napi_value v, void **d, size_t *len);
/* 1 and a Float64Array's elements in *d, *n; 0 (*d NULL, *n 0) when v is not one. */
int nu_f64(napi_env env, napi_value v, double **d, size_t *n);
/* The pointer an External holds; NULL when v is not one (nothing thrown). */
void *nu_external(napi_env env, napi_value v);
/* obj[key] as a number when obj has that property, else dflt. */
double nu_opt(napi_env env, napi_value obj, const char *key, double dflt);
/* The length of an array (0 when v is not one). */
uint32_t nu_len(napi_env env, napi_value arr);
/* Element i of an array: a number (as nu_num), a string (as nu_str). */
double nu_num_at(napi_env env, napi_value arr, uint32_t i);
char *nu_str_at(napi_env env, napi_value arr, uint32_t i);
/* A JavaScript boolean. */
napi_value nu_bool(napi_env env, int b);
/* Sets obj[key] to the number v. */
void nu_set_num(napi_env env, napi_value obj, const char *key, double v);
/* Sets obj[keys[i]] to the number v[i] for i < n: a stats object's figures. */
void nu_set_figures(napi_env env, napi_value obj, const char *const *keys, const uint64_t *v, int n);

#endif
