#!/usr/bin/env bash
# Benchmark peers: installs the Debian packages the reference workloads need (s3fs, rclone, fio)
# when they are missing, plus FUSE itself. Idempotent: does nothing when everything is present.
# Usage: bash scripts/bench-setup.sh   (exit 0 even if apt is unavailable: peers are then skipped)
set -uo pipefail

need=()
for pkg in libfuse2 fuse s3fs rclone fio; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "bench-setup: apt-get not found; missing peers (${need[*]}) will be skipped" >&2
  exit 0
fi
echo "bench-setup: installing Debian packages: ${need[*]}" >&2
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! $SUDO apt-get update -qq >/dev/null 2>&1; then
  echo "bench-setup: apt-get update failed; missing peers will be skipped" >&2
  exit 0
fi
if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1; then
  echo "bench-setup: apt-get install failed for some of: ${need[*]}; missing peers will be skipped" >&2
fi
exit 0
