#!/usr/bin/env bash
# Stages everything the GPU machine needs for scripts/gpu_check.sh into .gpu/check (ignored by git):
# the CUDA test binaries built here for sm_90a, the Python package built for the GPU machine's Python 3.12,
# the shared libraries that machine lacks (fmt, hwy, gomp, xxhash, pcre2, cudart), and the Python
# tests. The GPU machine has nvcc, torch and pytest but none of our -dev dependencies, so we build here.
# Then, through the device tool: run with carry [".gpu/check"] the command `bash .gpu/check/gpu_check.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
py312=${PY312:-/root/.pyenv/versions/3.12.1/bin/python3.12}
[ -x .venv312/bin/python ] || { "$py312" -m venv .venv312 && .venv312/bin/pip install -q nanobind==3.1.0 numpy; }
cmake -S . -B build-sm90 -G Ninja -DCMAKE_CUDA_ARCHITECTURES=90a-real -DPAGEDATTN_PYTHON=ON \
  -DPAGEDATTN_BUILD_BENCH=OFF -DPAGEDATTN_BUILD_APPS=OFF -DPython_EXECUTABLE="$PWD/.venv312/bin/python" >/dev/null
cmake --build build-sm90 --target test_cuda_attention test_prefill_cuda test_kv_cache_cuda _pagedattn _pagedattn_stub
stage=.gpu/check
rm -rf "$stage" && mkdir -p "$stage/bin" "$stage/lib" "$stage/python"
cp build-sm90/tests/cuda/test_cuda_attention build-sm90/tests/cuda/test_prefill_cuda \
   build-sm90/tests/kv/test_kv_cache_cuda "$stage/bin/"
cp -r build-sm90/python/pagedattn "$stage/python/"
cp -r python/tests "$stage/python/tests"
cp README.md "$stage/"
# Every shared library outside glibc/libstdc++ that the binaries need.
for f in "$stage"/bin/* "$stage"/python/pagedattn/*.so; do ldd "$f"; done | awk '/=> \// {print $3}' | sort -u |
  grep -vE '/(libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s)\.so' | xargs -I{} cp -L {} "$stage/lib/"
cp scripts/gpu_check.sh "$stage/"
du -sh "$stage"
