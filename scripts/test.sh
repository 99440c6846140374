#!/usr/bin/env bash
# The full test suite: set-up, strict type-check of the whole tree (the build), then every test.
# Usage: npm test [-- test-file-filter]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
filter="${1:-}"
mapfile -t files < <(find dist/test -name '*.test.js' | sort | grep -- "$filter")
echo "test: ${#files[@]} test files"
exec node --test --test-concurrency=2 --test-timeout=600000 "${files[@]}"
