#!/usr/bin/env bash
# Stages into .gpu/h200 (ignored by git) what bench/cuda/gpu_bench_run.sh needs on the GPU machine: the CUDA
# tests and both benchmarks built here for sm_90a (that machine has nvcc and torch but none of our -dev
# dependencies), the shared libraries it lacks, and the FlashInfer wheels (its kernels JIT-compile there).
# Then, through the device tool, with carry [".gpu/h200"]: bash bench/cuda/gpu_bench_run.sh
# The stage stays under the device tool's 64 MiB (about 30 MiB: seven gzipped binaries, the wheels, the libraries).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=/usr/local/cuda/bin:$PATH
targets="test_cuda_attention test_prefill_cuda test_wgmma test_split_planner test_kv_cache_cuda bench_decode_cuda bench_prefill_cuda"
cmake -S . -B build-sm90 -G Ninja -DCMAKE_CUDA_ARCHITECTURES=90a-real -DPAGEDATTN_BUILD_BENCH=ON >/dev/null
# shellcheck disable=SC2086  # the targets are words
cmake --build build-sm90 --target $targets
stage=.gpu/h200
rm -rf "$stage/bin" "$stage/lib" && mkdir -p "$stage/bin" "$stage/lib" "$stage/whl"
for t in $targets; do cp "$(find build-sm90/tests build-sm90/bench -type f -name "$t" | head -n1)" "$stage/bin/"; done
# Every shared library outside glibc/libstdc++ that the binaries need.
for f in "$stage"/bin/*; do ldd "$f"; done | awk '/=> \// {print $3}' | sort -u |
  grep -vE '/(libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s)\.so' | xargs -I{} cp -L {} "$stage/lib/"
# Compressed (the device code of every kernel build makes each binary ~13 MB); gpu_bench_run.sh unpacks them.
gzip -f "$stage"/bin/*
ln -sfn ../.. "$stage/tree"
if ! ls "$stage"/whl/flashinfer_python-*.whl > /dev/null 2>&1; then
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 \
    -d "$stage/whl" flashinfer-python==0.6.8.post1 apache-tvm-ffi==0.1.12
fi
du -sh "$stage"
