#!/usr/bin/env bash
# The main job: set-up (Debian packages, npm ci, build), then the demonstration on the embedded
# default store (~/.cairn or $CAIRN_HOME). Needs root (mount namespaces, FUSE).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node dist/demo/main.js "$@"
