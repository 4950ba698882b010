#!/usr/bin/env bash
# Installs every Debian package skiff needs to build, run and test (Debian 12).
# Used by .ci/run and contrib/demo.sh; safe to run again.
set -euo pipefail
sudo=""
if [ "$(id -u)" != 0 ]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update
$sudo apt-get install -y --no-install-recommends \
    ca-certificates gcc libc6-dev pkg-config \
    libseccomp-dev protobuf-compiler \
    docker-registry skopeo umoci busybox-static apache2-utils zstd jq tini openssl \
    iproute2 iptables
