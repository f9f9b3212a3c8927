#!/bin/bash
# One device session for the CUDA decode work: tests, benchmark + peers (one run, one table), sanitizers.
# Binaries are built on the workstation (nvcc here and there is 13.0) and staged, with the peers' wheels,
# in a folder laid out as bin/ (test_cuda_attention, test_split_planner, bench_decode_cuda, optional
# bench_<variant> builds to compare), lib/ (libfmt.so.9, libcudart.so.13), whl/ (flashinfer-python 0.6.8.post1,
# apache-tvm-ffi 0.1.12) and tree/ (this repository). Usage, from that folder: tree/bench/cuda/gpu_session.sh OUT
# [variant...]. Everything lands in OUT; the joined table is the tail of OUT/peers.log.
set -u
out=$1; shift
export LD_LIBRARY_PATH=$PWD/lib:${LD_LIBRARY_PATH:-} PYTHONUNBUFFERED=1 FLASHINFER_WORKSPACE_BASE=/tmp/fiws \
  FLASHINFER_CUDA_ARCH_LIST=9.0a MAX_JOBS=8
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site whl/*.whl > /dev/null 2>&1
export PYTHONPATH=/tmp/site CUDA_HOME=${CUDA_HOME:-$(dirname "$(dirname "$(which nvcc)")")}
# FlashInfer JIT-compiles its decode kernels on first use: do it while the tests run.
python3 tree/bench/peers/flashinfer_warmup.py 128 > /tmp/fi128.log 2>&1 & p1=$!
python3 tree/bench/peers/flashinfer_warmup.py 64 > /tmp/fi64.log 2>&1 & p2=$!
bin/test_split_planner | tail -1
timeout 200 bin/test_cuda_attention > "$out/tests.log" 2>&1; echo "tests rc=$?"
grep -E "^\[  FAILED|PASSED|tests from .* ran" "$out/tests.log"
wait $p1 $p2
timeout 90 bin/bench_decode_cuda --csv "$out/ours.csv" > "$out/bench.log" 2>&1; echo "bench rc=$?"
for v in "$@"; do echo "== $v" >> "$out/variants.log"; timeout 90 "bin/bench_$v" >> "$out/variants.log" 2>&1; done
[ $# -gt 0 ] && grep -E "^==|^reference|^smollm2|^block" "$out/variants.log" | awk '{print $1, $2, $3, $4, $5, $7, $10}'
timeout 200 python3 tree/bench/peers/peer_decode.py "$out/ours.csv" --csv "$out/peers.csv" > "$out/peers.log" 2>&1
echo "peers rc=$?"; tail -15 "$out/peers.log"
timeout 200 compute-sanitizer --tool memcheck bin/test_cuda_attention \
  --gtest_filter='-Dtypes/CudaDecodeByDtype.RandomShapes/float32:CudaDecode.LongContexts32k' > "$out/memcheck.log" 2>&1
echo "memcheck rc=$?"; grep -E "PASSED|FAILED|ERROR SUMMARY|tests from .* ran" "$out/memcheck.log" | tail -3
timeout 150 compute-sanitizer --tool racecheck bin/test_cuda_attention \
  --gtest_filter='Dtypes/CudaDecodeByDtype.BlockSizesAcrossSplits/*:CudaDecode.Groups*:CudaDecode.Ragged*:CudaDecode.Equal*:CudaDecode.Strided*:CudaWriteKv.*:CudaGraph.*:CudaErrors.*' \
  > "$out/racecheck.log" 2>&1
echo "racecheck rc=$?"; grep -E "PASSED|FAILED|RACECHECK SUMMARY|tests from .* ran" "$out/racecheck.log" | tail -3
