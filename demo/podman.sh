#!/usr/bin/env bash
# Two busybox containers share a Cairn volume through `cairn plugin` under podman, with no image
# registry and no network in the containers: the first writes and commits through
# /data/.cairn-control, the second (a later container) reads what the first committed, writes
# its own file and exits without committing (the plugin's final commit at the last Unmount
# publishes it); the host then reads both files from the store.
# Needs root, podman, runc and busybox-static (scripts/setup.sh installs them) and a build (dist/).
# Leaves nothing behind: its containers, volume, image, plugin and temp dir go on exit.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CAIRN=(node "$ROOT/dist/src/cli/main.js")
BUSYBOX=$(command -v busybox || echo /bin/busybox)
WORK=$(mktemp -d /tmp/cairn-podman-demo-XXXXXX)
export CAIRN_HOME="$WORK/home" CAIRN_STORE="file://$WORK/store" CONTAINERS_CONF="$WORK/containers.conf"
VOL="demo-$$"
IMAGE="localhost/cairn-demo-busybox:$$"
PODMAN=(podman --runtime /usr/sbin/runc)
RUN=(run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 -v "$VOL:/data" "$IMAGE")
PLUGIN_PID=""

cleanup() {
  "${PODMAN[@]}" volume rm -f "$VOL" >/dev/null 2>&1 || true
  [ -n "$PLUGIN_PID" ] && kill "$PLUGIN_PID" 2>/dev/null && wait "$PLUGIN_PID" 2>/dev/null || true
  for m in "$CAIRN_HOME"/plugin/mounts/*/*; do [ -d "$m" ] && fusermount -uz "$m" 2>/dev/null || true; done
  "${PODMAN[@]}" rmi -f "$IMAGE" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
printf '[engine.volume_plugins]\ncairn = "%s"\n' "$WORK/cairn.sock" > "$CONTAINERS_CONF"

step() { printf '\n== %s\n' "$*"; }

step "a busybox image from a directory (no registry)"
mkdir -p "$WORK/rootfs/bin" "$WORK/rootfs/data" "$WORK/rootfs/tmp"
cp "$BUSYBOX" "$WORK/rootfs/bin/busybox"
for a in $("$BUSYBOX" --list); do [ "$a" = busybox ] || ln -s busybox "$WORK/rootfs/bin/$a"; done
tar -C "$WORK/rootfs" -c . | "${PODMAN[@]}" import -q - "$IMAGE" >/dev/null

step "cairn plugin, named in containers.conf"
"${CAIRN[@]}" plugin --socket "$WORK/cairn.sock" --state-dir "$CAIRN_HOME/plugin" 2>"$WORK/plugin.log" &
PLUGIN_PID=$!
for _ in $(seq 100); do [ -S "$WORK/cairn.sock" ] && break; sleep 0.1; done
"${PODMAN[@]}" volume create --driver cairn "$VOL"

step "container 1 writes /data/first.txt and commits through /data/.cairn-control"
"${PODMAN[@]}" "${RUN[@]}" sh -c \
  'echo "written by container 1" > /data/first.txt; exec 3<>/data/.cairn-control; echo commit >&3; head -n1 <&3' \
  | tee "$WORK/reply"
grep -q '"ok":true' "$WORK/reply"

step "container 2 reads it, writes /data/second.txt and exits without committing"
out=$("${PODMAN[@]}" "${RUN[@]}" sh -c 'cat /data/first.txt; echo "written by container 2" > /data/second.txt')
echo "$out"
[ "$out" = "written by container 1" ]

step "the host reads both from the store"
first=$("${CAIRN[@]}" volume get "$VOL" /first.txt -)
second=$("${CAIRN[@]}" volume get "$VOL" /second.txt -)
echo "$first"; echo "$second"
[ "$first" = "written by container 1" ] && [ "$second" = "written by container 2" ]
echo
echo "podman demo complete: two containers shared volume $VOL"
