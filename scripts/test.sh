#!/usr/bin/env bash
# The full test suite: set-up, strict type-check of the whole tree (the build), the lint
# (scripts/lint.sh: a finding fails the run before any test starts), then every test.
# The S3 suites run against s3rver (in-repo harness) and against a real Ceph RGW, brought up here
# once for the whole run (scripts/ceph.sh) and stopped on exit whatever happens; CAIRN_CEPH=0 skips Ceph.
# Every test's temporary files (volumes, mounts, stores, homes) go under one directory made for the
# run ($TMPDIR for the tests), removed on exit with any mount a failed test left in it
# (CAIRN_KEEP_TMP=1 keeps it, to look at after a failure).
# Usage: npm test [-- test-file-filter]   (CAIRN_LINT=0 skips the lint, e.g. while iterating on a test)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[ "${CAIRN_LINT:-1}" = 0 ] || bash scripts/lint.sh
filter="${1:-}"
mapfile -t files < <(find dist/test -name '*.test.js' | sort | grep -- "$filter")
if [ ${#files[@]} = 0 ]; then  # node --test given no file would run every *.js it finds, fixtures too
  echo "test: no test file under dist/test matches '$filter'" >&2
  exit 2
fi
echo "test: ${#files[@]} test files"

ceph_dir=""
run_tmp=$(mktemp -d "${TMPDIR:-/tmp}/cairn-test.XXXXXX")
chmod 1777 "$run_tmp"  # as /tmp: tests that drop to another user (setpriv, podman) make files here too
cleanup() {
  [ -z "$ceph_dir" ] || bash scripts/ceph.sh release "$ceph_dir" $$ || true
  if [ "${CAIRN_KEEP_TMP:-0}" = 1 ]; then echo "test: kept $run_tmp"; return; fi
  # Mounts a failed test left (deepest first), then the files; never across into a mount still there.
  awk -v p="$run_tmp/" 'index($2, p) == 1 { print $2 }' /proc/mounts | sort -r | while IFS= read -r m; do
    umount -l "$m" 2>/dev/null || fusermount -uz "$m" 2>/dev/null || true
  done
  rm -rf --one-file-system "$run_tmp" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "${CAIRN_CEPH:-1}" != 0 ] && [ -z "${CAIRN_CEPH_ENDPOINT:-}" ]; then  # an endpoint given is used as is
  # The same directory as test/helpers/ceph.ts uses for files run by hand: one cluster, shared and
  # reference-counted by pid (acquire/release), so concurrent runs never stop each other's cluster.
  ceph_dir="${CAIRN_CEPH_DIR:-${TMPDIR:-/tmp}/cairn-ceph-harness}"
  start=$SECONDS
  ceph_env=$(bash scripts/ceph.sh acquire "$ceph_dir" $$)
  while IFS= read -r line; do export "${line?}"; done <<< "$ceph_env"
  echo "test: Ceph RGW at $CAIRN_CEPH_ENDPOINT (up in $((SECONDS - start)) s)"
fi
export TMPDIR="$run_tmp"
node --test --test-concurrency=2 --test-timeout=600000 "${files[@]}"
# Mounts use the native FUSE binding when it loads: run the conformance (real.test), visibility, staleness,
# control-file, limits and fsx suites again with the fallback binding, so both stay correct.
if [ -z "$filter" ] && [ -f native/build/Release/cairn_fuse.node ]; then
  echo "test: FUSE suites again with CAIRN_FUSE_BINDING=fuse-native"
  CAIRN_FUSE_BINDING=fuse-native node --test --test-concurrency=2 --test-timeout=600000 \
    dist/test/fuse/{real,staleness,mount,control-file,limits,fsx}.test.js
  # and with the kernel's writeback cache (an opt-in mode of the native binding: src/fuse/writeback.ts)
  echo "test: FUSE suites again with CAIRN_FUSE_WRITEBACK=1"
  CAIRN_FUSE_WRITEBACK=1 node --test --test-concurrency=2 --test-timeout=600000 \
    dist/test/fuse/{real,staleness,mount,control-file,fsx}.test.js
fi
