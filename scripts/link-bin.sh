#!/usr/bin/env bash
# Puts `cairn` on PATH: a small wrapper script BINDIR/cairn that runs this checkout's build with node.
# Usage: bash scripts/link-bin.sh [BINDIR]   (default $CAIRN_BIN_DIR, else /usr/local/bin)
# A wrapper rather than a symlink to dist/src/cli/main.js: a rebuild recreates dist/ (and may drop the
# executable bit), the wrapper keeps working. Idempotent; never replaces a `cairn` it did not write.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bindir=${1:-${CAIRN_BIN_DIR:-/usr/local/bin}}
target="$bindir/cairn"
marker="written by scripts/link-bin.sh of cairn"
body="#!/bin/sh
# $marker: runs the build of $repo
exec node \"$repo/dist/src/cli/main.js\" \"\$@\""

if [ -e "$target" ] && ! grep -qF "$marker" "$target" 2>/dev/null; then
  echo "setup: $target exists and was not written by scripts/link-bin.sh; left alone" >&2
  echo "setup: run cairn as 'node $repo/dist/src/cli/main.js', or pass another BINDIR" >&2
  exit 0
fi
if [ ! -f "$target" ] || [ "$(cat "$target")" != "$body" ]; then
  SUDO=""
  if [ ! -w "$bindir" ] && [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  printf '%s\n' "$body" | $SUDO tee "$target" >/dev/null
  $SUDO chmod 755 "$target"
  echo "setup: $target runs this checkout's cairn"
fi
case ":$PATH:" in
  *":$bindir:"*) ;;
  *) echo "setup: $bindir is not on PATH; add it (export PATH=\"$bindir:\$PATH\")" >&2 ;;
esac
