#!/usr/bin/env bash
# A single-node Ceph RADOS Gateway (a real distributed S3 store) for tests and the bench, on a data
# directory: one monitor, one bluestore OSD on a sparse file (no loop device), no manager, radosgw
# (beast frontend) on 127.0.0.1 at a free port, pools of size 1, one S3 user with fixed keys.
# No systemd: daemons run with -f in the background, their pids in DATA_DIR/run/*.pid.
#
# Usage:
#   scripts/ceph.sh install          install the Debian packages if missing (idempotent; sudo unless root)
#   scripts/ceph.sh up DATA_DIR      bootstrap (first time) or restart the cluster; prints `env` when up
#   scripts/ceph.sh down DATA_DIR    stop the daemons this script started there (safe to call twice)
#   scripts/ceph.sh env DATA_DIR     print CAIRN_CEPH_ENDPOINT, AWS_ACCESS_KEY_ID, … as shell assignments
#   scripts/ceph.sh purge DATA_DIR   down, then remove DATA_DIR
#   scripts/ceph.sh acquire DATA_DIR PID   record PID as a user of the cluster, then `up`
#   scripts/ceph.sh release DATA_DIR PID   forget PID (and users that died); `down` when none is left
#     (acquire/release let several test processes share one cluster; see test/helpers/ceph.ts)
#
# Invariants: `up` is idempotent (a running cluster is left alone) and serialised per DATA_DIR (flock),
# every wait is bounded (on timeout: a clear message, the daemon logs' tail, exit 1, daemons stopped;
# a restart that fails rebuilds the cluster once: a test cluster holds nothing worth keeping);
# `down` signals only pids from its own pid files whose command line is still the daemon it started.
# The S3 keys are the in-repo s3rver harness's (S3RVER/S3RVER) so both can share one process's environment.
set -euo pipefail

ACCESS_KEY=${CAIRN_CEPH_ACCESS_KEY:-S3RVER}
SECRET_KEY=${CAIRN_CEPH_SECRET_KEY:-S3RVER}
OSD_SIZE=${CAIRN_CEPH_OSD_SIZE:-20G}   # sparse: only what is written takes disk space
WAIT=${CAIRN_CEPH_WAIT:-90}             # seconds, per wait
PKGS=(ceph-mon ceph-osd radosgw ceph-common)

die() { echo "ceph.sh: $*" >&2; exit 1; }
log() { echo "ceph.sh: $*" >&2; }

install() {
  local need=() pkg
  for pkg in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
  done
  [ ${#need[@]} -eq 0 ] && return 0
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "installing Debian packages: ${need[*]}"
  # Package lists fetched in the last hour (e.g. by scripts/setup.sh just before) are fresh enough.
  find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -60 2>/dev/null | grep -q . || $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

free_port() {
  node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

# The daemons' pid files and what their command line must start with.
exe_of() { case "$1" in mon) echo ceph-mon ;; osd) echo ceph-osd ;; radosgw) echo radosgw ;; esac; }

# Pid of daemon $1 if it is running and is the process we started, else nothing.
live_pid() {
  local f="$DIR/run/$1.pid" pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  [ -r "/proc/$pid/cmdline" ] || return 0
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "$(exe_of "$1") .*-c $DIR/ceph.conf" && echo "$pid"
  return 0
}

tail_logs() {
  local f
  for f in "$DIR"/log/*.log "$DIR"/log/*.out; do
    [ -s "$f" ] || continue
    echo "---- tail $f" >&2
    tail -n 25 "$f" >&2
  done
}

# wait_for WHAT CMD…: runs CMD until it succeeds, at most $WAIT seconds, and fails (1) early when a
# daemon started here has exited. The reason is in $WHY.
WHY=""
wait_for() {
  local what=$1; shift
  local deadline=$((SECONDS + WAIT)) name
  until "$@" >/dev/null 2>&1; do
    for name in mon osd radosgw; do
      if [ -f "$DIR/run/$name.pid" ] && [ -z "$(live_pid "$name")" ]; then
        WHY="$name exited while waiting for $what"
        return 1
      fi
    done
    if [ $SECONDS -ge $deadline ]; then
      WHY="timed out after ${WAIT}s waiting for $what"
      return 1
    fi
    sleep 0.5
  done
}

# Prints why and the logs' tail, stops what this script started, exits 1.
fail() {
  log "$WHY"
  tail_logs
  down
  die "Ceph did not come up in $DIR (logs above; raise CAIRN_CEPH_WAIT if the machine is slow)"
}

# start NAME ARGS…: runs a daemon in the foreground mode (-f) in the background, keeps its pid.
start() {
  local name=$1; shift
  [ -n "$(live_pid "$name")" ] && return 0
  "$@" -f >> "$DIR/log/$name.out" 2>&1 9>&- &  # 9: the flock of `up`, not for daemons to keep
  echo $! > "$DIR/run/$name.pid"
  disown $!  # its end is ours to notice (live_pid), not bash's to report
}

CEPH() { timeout 20 ceph -c "$DIR/ceph.conf" --connect-timeout 10 "$@"; }

rgw_port() { cat "$DIR/rgw.port"; }
# radosgw answers an anonymous GET / (ListBuckets) with 200 once it serves requests (no curl on a bare Debian).
rgw_up() {
  node -e "require('http').get(process.argv[1], (r) => process.exit(r.statusCode === 200 ? 0 : 1))
    .on('error', () => process.exit(1))" "http://127.0.0.1:$(rgw_port)/"
}
osd_up() { CEPH osd dump 2>/dev/null | grep -q '^osd.0 up'; }

write_conf() {
  local fsid=$1 monport=$2
  cat > "$DIR/ceph.conf" <<EOF
# Written by scripts/ceph.sh: a single-node test cluster. Everything lives under $DIR.
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$monport
public addr = 127.0.0.1
ms bind msgr1 = false
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
mon cluster log file = $DIR/log/cluster.log
keyring = $DIR/keyring
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 2
mon data avail crit = 1
osd crush chooseleaf type = 0
# A radosgw that had to be killed leaves its watches behind; until they time out, the next
# radosgw's metadata writes (CreateBucket) wait for it in 10 s steps. 10 s instead of 30 s.
osd client watch timeout = 10
[mon]
mon data = $DIR/mon/ceph-\$id
[osd]
osd data = $DIR/osd/ceph-\$id
osd objectstore = bluestore
bluestore block path = $DIR/osd/ceph-\$id/block.file
bluestore block create = true
bluestore block size = $(numfmt --from=iec "$OSD_SIZE")
# Fast shutdown (the default) exits without unmounting the store; here a restart right after it
# once found an OSD map missing ("failed to load OSD map for epoch N, got 0 bytes").
osd fast shutdown = false
osd memory target = 939524096
bluestore cache autotune = false
bluestore cache size = 134217728
osd op num shards = 2
osd op num threads per shard = 2
[client.rgw.a]
rgw data = $DIR/rgw
rgw dns name = 127.0.0.1
rgw thread pool size = 64
EOF
}

bootstrap() {
  log "bootstrapping a new cluster in $DIR"
  local fsid monport
  fsid=$(cat /proc/sys/kernel/random/uuid)
  monport=$(free_port)
  mkdir -p "$DIR"/{run,log,mon/ceph-a,osd/ceph-0,rgw}
  write_conf "$fsid" "$monport"
  # Every entity's key in one keyring, imported by the monitor at mkfs: no `ceph auth` round trips later.
  ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$DIR/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' \
    --cap mgr 'allow *' >/dev/null
  ceph-authtool "$DIR/keyring" --gen-key -n osd.0 --cap mon 'allow profile osd' --cap osd 'allow *' \
    --cap mgr 'allow profile osd' >/dev/null
  ceph-authtool "$DIR/keyring" --gen-key -n client.rgw.a --cap mon 'allow rw' --cap osd 'allow rwx' \
    --cap mgr 'allow rw' >/dev/null
  monmaptool --create --clobber --fsid "$fsid" --add a "v2:127.0.0.1:$monport" "$DIR/monmap" >/dev/null
  ceph-mon -c "$DIR/ceph.conf" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/keyring" >> "$DIR/log/mkfs.out" 2>&1 \
    || { tail_logs; die "ceph-mon --mkfs failed"; }
  start mon ceph-mon -c "$DIR/ceph.conf" -i a
  wait_for "the monitor" CEPH mon stat || return 1
  local uuid; uuid=$(cat /proc/sys/kernel/random/uuid)
  CEPH osd new "$uuid" 0 >/dev/null || { WHY="ceph osd new failed"; return 1; }
  ceph-osd -c "$DIR/ceph.conf" -i 0 --mkfs --osd-uuid "$uuid" >> "$DIR/log/mkfs.out" 2>&1 \
    || { WHY="ceph-osd --mkfs failed"; return 1; }
  touch "$DIR/bootstrapped"
}

LOCKED=""
lock() {
  [ -n "$LOCKED" ] && return 0
  exec 9>"$DIR/.lock"
  flock -w "$((WAIT * 3))" 9 || die "another scripts/ceph.sh is busy with $DIR"
  LOCKED=1
}

# Drops users whose process is gone; prints how many are left.
prune_users() {
  mkdir -p "$DIR/users"
  local f n=0
  for f in "$DIR"/users/*; do
    [ -e "$f" ] || continue
    if kill -0 "$(basename "$f")" 2>/dev/null; then n=$((n + 1)); else rm -f "$f"; fi
  done
  echo "$n"
}

# Starts the monitor, the OSD and radosgw (those not running) and waits for each; 1 on failure.
start_all() {
  mkdir -p "$DIR/run" "$DIR/log"
  # A cluster that lives across many test runs: logs start over once past 64 MiB.
  find "$DIR/log" -type f -size +64M -exec truncate -s 0 {} + 2>/dev/null || true
  start mon ceph-mon -c "$DIR/ceph.conf" -i a
  wait_for "the monitor" CEPH mon stat || return 1
  start osd ceph-osd -c "$DIR/ceph.conf" -i 0
  wait_for "the OSD to be up" osd_up || return 1
  if [ -z "$(live_pid radosgw)" ]; then
    free_port > "$DIR/rgw.port"
    # tcp_nodelay: without it a small response (a HEAD, a 4 KiB GET) waits ~40 ms for the
    # client's delayed ACK before its last segment leaves (Nagle): 4 KiB GETs took 52-56 ms, 8-10
    # with it (scripts/ceph.sh's own cluster, rawget A/B; docs/STORE.md "Ceph RGW").
    start radosgw radosgw -c "$DIR/ceph.conf" -n client.rgw.a \
      --rgw-frontends "beast endpoint=127.0.0.1:$(rgw_port) tcp_nodelay=1"
  fi
  wait_for "radosgw on 127.0.0.1:$(rgw_port)" rgw_up
}

up() {
  lock
  command -v radosgw >/dev/null || install
  if [ -f "$DIR/bootstrapped" ] && [ -n "$(live_pid radosgw)" ] && rgw_up; then
    env_out
    return 0
  fi
  if [ -f "$DIR/bootstrapped" ]; then
    # The settings of this version of the script, with the cluster's own fsid and monitor port.
    write_conf "$(sed -n 's/^fsid = //p' "$DIR/ceph.conf")" \
      "$(sed -n 's/^mon host = v2:127.0.0.1://p' "$DIR/ceph.conf")"
    if ! start_all; then
      # A test cluster holds nothing worth keeping: rebuild it rather than fail.
      log "restart failed ($WHY); rebuilding the cluster in $DIR"
      down
      rm -f "$DIR/bootstrapped"
    fi
  fi
  if [ ! -f "$DIR/bootstrapped" ]; then
    rm -rf "${DIR:?}"/{run,log,mon,osd,rgw,ceph.conf,monmap,rgw.port,user}
    bootstrap || fail
    start_all || fail
  fi
  if [ ! -f "$DIR/user" ]; then
    timeout 60 radosgw-admin -c "$DIR/ceph.conf" -n client.rgw.a user create --uid=cairn \
      --display-name="Cairn tests" --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >> "$DIR/log/user.out" 2>&1 \
      || { tail_logs; down; die "radosgw-admin user create failed"; }
    touch "$DIR/user"
  fi
  env_out
}

# Stops radosgw and the OSD together, then the monitor (the OSD tells it that it goes down).
# radosgw sometimes hangs in its shutdown (it arms a 120 s alarm) and holds no state: 5 s, then KILL.
down() {
  stop_daemons radosgw osd
  stop_daemons mon
}

# Whether pid $1 runs (a zombie nobody reaped yet does not).
alive() {
  local state
  state=$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

grace_of() { case "$1" in radosgw) echo 5 ;; *) echo 20 ;; esac; }

stop_daemons() {
  local name pid start=$SECONDS; local -A names=()
  for name in "$@"; do
    pid=$(live_pid "$name")
    if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; names[$pid]=$name; fi
  done
  for pid in "${!names[@]}"; do
    name=${names[$pid]}
    while alive "$pid" && [ $((SECONDS - start)) -lt "$(grace_of "$name")" ]; do sleep 0.1; done
    if alive "$pid"; then
      [ "$name" = radosgw ] || log "$name (pid $pid) did not stop on TERM within $(grace_of "$name") s: KILL"
      kill -KILL "$pid" 2>/dev/null || true
      for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
    fi
  done
  for name in "$@"; do rm -f "$DIR/run/$name.pid"; done
}

env_out() {
  [ -f "$DIR/rgw.port" ] || die "no cluster in $DIR (run: scripts/ceph.sh up $DIR)"
  echo "CAIRN_CEPH_ENDPOINT=http://127.0.0.1:$(rgw_port)"
  echo "AWS_ACCESS_KEY_ID=$ACCESS_KEY"
  echo "AWS_SECRET_ACCESS_KEY=$SECRET_KEY"
  echo "AWS_REGION=us-east-1"
}

cmd=${1:-}
case "$cmd" in
  install) install ;;
  up|down|env|purge|acquire|release)
    [ -n "${2:-}" ] || die "usage: scripts/ceph.sh $cmd DATA_DIR"
    case "$cmd" in acquire|release) [[ "${3:-}" =~ ^[0-9]+$ ]] || die "usage: scripts/ceph.sh $cmd DATA_DIR PID" ;; esac
    case "$cmd" in up|acquire) mkdir -p "$2" ;; esac
    [ -d "$2" ] || { [ "$cmd" = env ] && die "no cluster in $2"; exit 0; }
    DIR=$(cd "$2" && pwd)
    case "$cmd" in
      up) up ;;
      down) down ;;
      env) env_out ;;
      purge) down; rm -rf "$DIR" ;;
      acquire) lock; prune_users >/dev/null; touch "$DIR/users/$3"; up ;;
      release) lock; rm -f "$DIR/users/$3"; if [ "$(prune_users)" -eq 0 ]; then down; fi ;;
    esac
    ;;
  *) die "usage: scripts/ceph.sh install | up|down|env|purge DATA_DIR | acquire|release DATA_DIR PID" ;;
esac
