#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine (as root) for building, testing and running pagedattn.
# Idempotent: packages already present are skipped by apt/pip, the model is unpacked once.
#   scripts/bootstrap.sh            system packages + Python venv (.venv) + default model
#   PAGEDATTN_NO_MODEL=1 ...        skip the model download (kernel-only work)
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(
  build-essential cmake ninja-build pkg-config git unzip
  libhwy-dev libomp-dev
  libgtest-dev libgmock-dev librapidcheck-dev libbenchmark-dev
  libfmt-dev libspdlog-dev libcli11-dev nlohmann-json3-dev libcpp-httplib-dev
  libxxhash-dev libpcre2-dev
  python3 python3-dev python3-venv
)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "bootstrap: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# One venv for the build's Python pieces (nanobind, scikit-build-core) and the test oracles.
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r scripts/requirements.txt

if [ -z "${PAGEDATTN_NO_MODEL:-}" ]; then
  scripts/fetch_model.sh
fi
