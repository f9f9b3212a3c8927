#!/usr/bin/env bash
# Configures and builds pagedattn into build/ (CUDA compiled where nvcc exists). Extra args go to cmake.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x /usr/local/cuda/bin/nvcc ]; then export PATH="/usr/local/cuda/bin:$PATH"; fi
cmake -S . -B build -G Ninja -DPAGEDATTN_WERROR=ON -DPython3_EXECUTABLE="$PWD/.venv/bin/python" "$@"
cmake --build build -j "$(nproc)"
