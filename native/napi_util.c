/*
 * napi_util: the Node-API conversions the addon's exports share (see napi_util.h).
 */
#include "napi_util.h"

#include <stdlib.h>

double nu_num(napi_env env, napi_value v) {
  double d = 0;
  napi_get_value_double(env, v, &d);
  return d;
}

char *nu_str(napi_env env, napi_value v) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  napi_get_value_string_utf8(env, v, s, len + 1, &len);
  return s;
}

int nu_buf(napi_env env, napi_value v, void **d, size_t *len) {
  *d = NULL;
  *len = 0;
  if (napi_get_buffer_info(env, v, d, len) == napi_ok) return 1;
  *d = NULL;
  *len = 0;
  return 0;
}

int nu_f64(napi_env env, napi_value v, double **d, size_t *n) {
  napi_typedarray_type tt;
  void *p = NULL;
  size_t k = 0;
  *d = NULL;
  *n = 0;
  if (napi_get_typedarray_info(env, v, &tt, &k, &p, NULL, NULL) != napi_ok || tt != napi_float64_array) return 0;
  *d = p;
  *n = k;
  return 1;
}

void *nu_external(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok) return NULL;
  return p;
}

double nu_opt(napi_env env, napi_value obj, const char *key, double dflt) {
  bool has = false;
  napi_value v;
  if (napi_has_named_property(env, obj, key, &has) != napi_ok || !has) return dflt;
  napi_get_named_property(env, obj, key, &v);
  return nu_num(env, v);
}

uint32_t nu_len(napi_env env, napi_value arr) {
  uint32_t n = 0;
  napi_get_array_length(env, arr, &n);
  return n;
}

double nu_num_at(napi_env env, napi_value arr, uint32_t i) {
  napi_value v;
  return napi_get_element(env, arr, i, &v) == napi_ok ? nu_num(env, v) : 0;
}

char *nu_str_at(napi_env env, napi_value arr, uint32_t i) {
  napi_value v;
  return napi_get_element(env, arr, i, &v) == napi_ok ? nu_str(env, v) : NULL;
}

napi_value nu_bool(napi_env env, int b) {
  napi_value v;
  napi_get_boolean(env, b != 0, &v);
  return v;
}

void nu_set_num(napi_env env, napi_value obj, const char *key, double v) {
  napi_value x;
  napi_create_double(env, v, &x);
  napi_set_named_property(env, obj, key, x);
}

void nu_set_figures(napi_env env, napi_value obj, const char *const *keys, const uint64_t *v, int n) {
  for (int i = 0; i < n; i++) nu_set_num(env, obj, keys[i], (double)v[i]);
}
