/*
 * nfetch: range GETs of runs of chunks on native threads (libcurl), verified and cached as they
 * arrive (nfetch.c). Built without libcurl's headers (CAIRN_NO_CURL) it exports nothing.
 */
#ifndef CAIRN_NFETCH_H
#define CAIRN_NFETCH_H

#include <node_api.h>

/* Adds nfetchStart and nfetchRun to the exports (after ncache_define: it needs the BLAKE3 self-test). */
void nfetch_define(napi_env env, napi_value exports);

#endif
