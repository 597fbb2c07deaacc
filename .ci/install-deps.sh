#!/usr/bin/env bash
# Installs pmpd's build and test dependencies on Debian 12 (all from Debian's archive).
set -euo pipefail
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential cmake git python3 pkg-config clang \
  libgtest-dev libbenchmark-dev nlohmann-json3-dev libcli11-dev libcpp-httplib-dev libfmt-dev libicu-dev libomp-14-dev \
  >/dev/null
