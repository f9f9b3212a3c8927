#!/usr/bin/env bash
# Stages into .gpu/h200 (ignored by git) what bench/cuda/gpu_bench_run.sh needs on the GPU machine: the CUDA
# tests, both benchmarks and the Python package (for that machine's Python 3.12) built here for sm_90a (it has
# nvcc, torch and pytest but none of our -dev dependencies), the shared libraries it lacks, and the wheels of
# FlashInfer (its kernels JIT-compile there) and ml_dtypes (the Python tests' bfloat16).
# Then, through the device tool, with carry [".gpu/h200"]: bash bench/cuda/gpu_bench_run.sh
# The stage stays under the device tool's 64 MiB (about 30 MiB: eight gzipped binaries, the wheels, the libraries).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=/usr/local/cuda/bin:$PATH
targets="test_cuda_attention test_prefill_cuda test_wgmma test_split_planner test_kv_cache_cuda bench_decode_cuda bench_prefill_cuda"
py312=${PY312:-/root/.pyenv/versions/3.12.1/bin/python3.12}
[ -x .venv312/bin/python ] || { "$py312" -m venv .venv312 && .venv312/bin/pip install -q nanobind==3.1.0 numpy; }
cmake -S . -B build-sm90 -G Ninja -DCMAKE_CUDA_ARCHITECTURES=90a-real -DPAGEDATTN_BUILD_BENCH=ON \
  -DPAGEDATTN_PYTHON=ON -DPython_EXECUTABLE="$PWD/.venv312/bin/python" >/dev/null
# shellcheck disable=SC2086  # the targets are words
cmake --build build-sm90 --target $targets _pagedattn _pagedattn_stub
stage=.gpu/h200
rm -rf "$stage/bin" "$stage/lib" "$stage/python" && mkdir -p "$stage/bin" "$stage/lib" "$stage/whl" "$stage/python"
for t in $targets; do cp "$(find build-sm90/tests build-sm90/bench -type f -name "$t" | head -n1)" "$stage/bin/"; done
# The decode access-pattern lab (bench/results/raw/cuda_access_pattern.cu; not part of the build).
nvcc -O3 -std=c++20 -arch=sm_90a -I src bench/results/raw/cuda_access_pattern.cu -o "$stage/bin/access_gpu"
cp -r build-sm90/python/pagedattn "$stage/python/"
# Every shared library outside glibc/libstdc++ that the binaries need.
for f in "$stage"/bin/* "$stage"/python/pagedattn/*.so; do ldd "$f"; done | awk '/=> \// {print $3}' | sort -u |
  grep -vE '/(libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s)\.so' | xargs -I{} cp -L {} "$stage/lib/"
# Compressed (the device code of every kernel build makes each binary ~13 MB); gpu_bench_run.sh unpacks them.
gzip -f "$stage"/bin/* "$stage"/python/pagedattn/*.so
ln -sfn ../.. "$stage/tree"
wheels="flashinfer-python==0.6.8.post1 apache-tvm-ffi==0.1.12 ml_dtypes==0.6.0"
if [ "$(find "$stage/whl" -name '*.whl' | wc -l)" -lt 3 ]; then
  # shellcheck disable=SC2086  # the wheels are words
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 \
    -d "$stage/whl" $wheels
fi
du -sh "$stage"
