#!/usr/bin/env bash
# Start or stop a loopback OCI registry (Debian's docker-registry) holding
# skiff's fixture images, detached from this shell:
#   library/alpine:latest, library/busybox:latest  (busybox rootfs, 1 layer)
#   test/multilayer:latest                         (4 layers: whiteouts, hard links)
#
#   contrib/fixture-registry.sh start [PORT]    # default 5000; prints 127.0.0.1:PORT
#   contrib/fixture-registry.sh stop [PORT]
#   contrib/fixture-registry.sh status [PORT]
#
# Storage, log and pidfile live in /var/tmp/skiff-fixture-registry/PORT
# (override the base with SKIFF_FIXTURE_REGISTRY_DIR). `stop` kills only the
# pid recorded in the pidfile, and only if that process is a docker-registry.
set -euo pipefail

usage() {
    echo "usage: $0 start|stop|status [PORT]" >&2
    exit 2
}

cmd=${1:-}
port=${2:-5000}
[[ $port =~ ^[0-9]+$ ]] || usage
base=${SKIFF_FIXTURE_REGISTRY_DIR:-/var/tmp/skiff-fixture-registry}
dir=$base/$port
pidfile=$dir/registry.pid
repo=$(cd "$(dirname "$0")/.." && pwd)

# Prints the pidfile's pid if it names a live docker-registry (pid files
# survive reboots here, so never trust one blindly).
live_pid() {
    [ -f "$pidfile" ] || return 1
    local pid
    pid=$(cat "$pidfile")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    # A zombie or a reused pid has another (or an empty) command line.
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q docker-registry || return 1
    echo "$pid"
}

case $cmd in
start)
    if pid=$(live_pid); then
        echo "already running: pid $pid on 127.0.0.1:$port" >&2
        echo "127.0.0.1:$port"
        exit 0
    fi
    rm -f "$pidfile"
    mkdir -p "$dir"
    if [ -n "${SKIFF_FIXTURE_REGISTRY_BIN:-}" ]; then
        "$SKIFF_FIXTURE_REGISTRY_BIN" --port "$port" --dir "$dir" --pidfile "$pidfile"
    else
        cargo run --quiet --manifest-path "$repo/Cargo.toml" -p skiff-tests \
            --bin skiff-fixture-registry -- --port "$port" --dir "$dir" --pidfile "$pidfile"
    fi
    ;;
stop)
    if ! pid=$(live_pid); then
        echo "no fixture registry running on port $port" >&2
        rm -f "$pidfile"
        exit 0
    fi
    kill -TERM "$pid"
    for _ in $(seq 100); do
        live_pid >/dev/null || break
        sleep 0.1
    done
    if live_pid >/dev/null; then
        kill -KILL "$pid"
    fi
    rm -f "$pidfile"
    echo "stopped fixture registry pid $pid (port $port)" >&2
    ;;
status)
    if pid=$(live_pid); then
        echo "running: pid $pid on 127.0.0.1:$port (storage $dir/storage)"
    else
        echo "not running on port $port"
        exit 1
    fi
    ;;
*)
    usage
    ;;
esac
