#!/usr/bin/env bash
# Sets everything up and runs every test: the optimized build (CUDA compiled where nvcc exists; CUDA
# tests skip without a GPU) under ctest, the Python package (pip install .) under pytest, then the CPU tests again
# under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"
jobs=$(nproc)

phase() { echo "== [$((SECONDS - start)) s] $*" >&2; }

phase "build + ctest (optimized)"
scripts/build.sh
ctest --test-dir build --output-on-failure -j "$jobs"

phase "pip install . + pytest"
# The package as users get it (CPU-only here: the CUDA code was compiled above already; the CPU kernels for this
# machine's instruction set only, the other Highway targets were compiled and tested above too).
.venv/bin/python -m pip install -q --no-build-isolation . -C cmake.define.PAGEDATTN_CUDA=OFF \
  -C cmake.define.PAGEDATTN_SIMD_NATIVE_ONLY=ON
.venv/bin/python -m pytest -q python/tests

phase "ctest under ASan + UBSan (CPU)"
# Every CPU test but the EngineGeneration cases (the same generations repeated across engine configurations:
# 6 minutes under the sanitizers; the engine's code runs there in EngineTest, Scheduler and Llama tests) and
# the Python oracles of the model's numbers (2 minutes; the reader, dequantizer and forward they drive run
# there in the GGUF, WeightMatrix and Llama tests). -O1 -g1 without NDEBUG: asserts stay on, line tables are all
# the sanitizers' reports need, and the build takes 6 minutes on 2 cores instead of 10 at -O2 -g.
cmake -S . -B build-asan -G Ninja -DPAGEDATTN_WERROR=ON -DPAGEDATTN_SANITIZE=ON -DPAGEDATTN_CUDA=OFF -DPAGEDATTN_SIMD_NATIVE_ONLY=ON \
  -DPAGEDATTN_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
  -DPython3_EXECUTABLE="$PWD/.venv/bin/python"
cmake --build build-asan -j "$jobs"
phase "built under ASan + UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs" -LE 'cuda|oracle' -E '^EngineGeneration\.'

echo "== all tests passed in $((SECONDS - start)) s" >&2
