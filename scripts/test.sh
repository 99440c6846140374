#!/usr/bin/env bash
# The full test suite: set-up, strict type-check of the whole tree (the build), then every test.
# Usage: npm test [-- test-file-filter]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
filter="${1:-}"
mapfile -t files < <(find dist/test -name '*.test.js' | sort | grep -- "$filter")
echo "test: ${#files[@]} test files"
node --test --test-concurrency=2 --test-timeout=600000 "${files[@]}"
# Mounts use the native FUSE binding when it loads: run the conformance, visibility and
# staleness suites again with the fallback binding, so both stay correct.
if [ -z "$filter" ] && [ -f native/build/Release/cairn_fuse.node ]; then
  echo "test: FUSE suites again with CAIRN_FUSE_BINDING=fuse-native"
  CAIRN_FUSE_BINDING=fuse-native node --test --test-concurrency=2 --test-timeout=600000 \
    dist/test/fuse/{conformance,real,staleness,mount,daemon}.test.js
fi
