#!/usr/bin/env bash
# One-shot set-up on a fresh Debian machine: system packages (FUSE, Ceph RGW), npm packages, build.
# Idempotent: skips what is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

# Installs the Debian packages named that are missing (apt-get update first), with sudo unless root.
apt_need() {
  local pkg need=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
  done
  [ ${#need[@]} -gt 0 ] || return 0
  echo "setup: installing Debian packages: ${need[*]}"
  local SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

apt_need libfuse2 fuse libfuse3-dev pkg-config librust-blake3-dev libcurl4-openssl-dev  # BLAKE3 C sources (native/blake3.sh) and libcurl (native/nfetch.c) for the addon

# Real programs the workload bench and test/programs run inside mounts (bench/workloads.ts).
apt_need git sqlite3 rsync tar make python3 python3-venv

# Ceph RGW for the S3 suites (scripts/ceph.sh install: ~30 s once; skipped with CAIRN_CEPH=0).
[ "${CAIRN_CEPH:-1}" = 0 ] || bash scripts/ceph.sh install

# Containers (test/containers, docs/CONTAINERS.md): podman with runc, and busybox-static for the
# root filesystem of test containers (no image registry needed). Never the `fuse3` package (it
# removes `fuse`, whose fusermount the mounts use); --no-install-recommends keeps fuse-overlayfs
# (which pulls fuse3) out.
[ "${CAIRN_CONTAINERS:-1}" = 0 ] || apt_need podman runc busybox-static  # CAIRN_CONTAINERS=0 skips

# npm ci only when the lockfile changed since the last install (better-sqlite3 builds from source).
stamp=node_modules/.cairn-lock-stamp
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: npm ci"
  npm ci --no-fund --no-audit 2>&1 | grep -v 'Unknown user config' || true
  [ -d node_modules/better-sqlite3 ] || { echo "setup: npm ci failed" >&2; exit 1; }
  echo "$want" > "$stamp"
fi

# The native FUSE binding (libfuse3 low-level; npm's own node-gyp, offline against the Node
# headers here). A failed build is not fatal: mounts then use fuse-native and say so.
node_mod=native/build/Release/cairn_fuse.node
if [ ! -f "$node_mod" ] || [ -n "$(find native -maxdepth 1 -type f \( -name '*.[ch]' -o -name '*.gyp' -o -name '*.sh' \) -newer "$node_mod")" ]; then
  echo "setup: build native FUSE binding"
  node_prefix=$(dirname "$(dirname "$(command -v node)")")
  [ -f "$node_prefix/include/node/node_api.h" ] && export npm_config_nodedir="$node_prefix"  # no header download
  npm run --silent build:native >/dev/null 2>native/build.log || echo "setup: native FUSE binding not built (see native/build.log); mounts use fuse-native" >&2
fi

echo "setup: build"
rm -rf dist  # no stale output of deleted sources
npm run --silent build

# `cairn` on PATH (a wrapper in /usr/local/bin, or $CAIRN_BIN_DIR, that survives rebuilds)
bash scripts/link-bin.sh
