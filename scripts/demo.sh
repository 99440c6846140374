#!/usr/bin/env bash
# The main job: set-up (Debian packages, npm ci, build), then the demonstration on the embedded
# default store (~/.cairn or $CAIRN_HOME). Needs root (mount namespaces, FUSE).
set -euo pipefail
cd "$(dirname "$0")/.."
# The demonstration needs neither Ceph RGW nor podman (the tests do): skip installing them here.
CAIRN_CEPH="${CAIRN_CEPH:-0}" CAIRN_CONTAINERS="${CAIRN_CONTAINERS:-0}" bash scripts/setup.sh
exec node dist/demo/main.js "$@"
