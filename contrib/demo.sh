#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install packages, build skiff, start a
# loopback fixture registry standing in for Docker Hub, then `skiff run alpine echo hello`.
# (No public registry is reachable here; the fixture registry serves a busybox-based
# `library/alpine` as a docker.io mirror.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash contrib/install-deps.sh >/dev/null
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/skiff-target}"
cargo build --release -p skiff -p containerd-shim-skiff-v1 -p skiff-tests --bins
SKIFF_FIXTURE_REGISTRY_BIN="$CARGO_TARGET_DIR/release/skiff-fixture-registry" \
    bash contrib/fixture-registry.sh start 5000 >/dev/null
skiff="$CARGO_TARGET_DIR/release/skiff --data-root ${SKIFF_DATA_ROOT:-/var/lib/skiff} --registry-mirror http://127.0.0.1:5000"
$skiff run --rm alpine echo hello
