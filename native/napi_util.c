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
