#!/bin/bash
# One full device call for the CUDA varlen/prefill path (issue 7): tests, compute-sanitizer (memcheck and
# racecheck), bench_prefill_cuda (+ variant builds) and its peers, all logs under $OUT. The binaries are
# built on the development machine (nvcc 13, sm_90a) and staged with this tree:
#   git ls-files -co --exclude-standard | tar -cf - -T - | tar -xf - -C /work/main/.gpu/prefill
#   cp build-sm90/{tests/cuda/test_prefill_cuda,tests/cuda/test_cuda_attention,bench/cuda/bench_prefill_cuda} \
#      /work/main/.gpu/prefill/bin/     (build-sm90: -DCMAKE_CUDA_ARCHITECTURES=90a-real)
#   mkdir -p /work/main/.gpu/prefill/lib && cp -L /lib/x86_64-linux-gnu/{libhwy.so.1,libgomp.so.1} /work/main/.gpu/prefill/lib/
#      (the GPU machine lacks them; `ldd bin/test_prefill_cuda` lists what else a newer tree may need)
# and run from the lead's checkout with carry [".gpu/prefill", ".gpu/lib", ".gpu/whl"]:
#   bash .gpu/prefill/scripts/gpu_prefill_run.sh
# .gpu/lib holds libfmt.so.9 and libcudart.so.13, .gpu/whl the FlashInfer wheels (see bench/peers).
set -u
G=.gpu/prefill
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" /tmp/fi_ready
export LD_LIBRARY_PATH=$PWD/.gpu/lib:$PWD/.gpu/prefill/lib:${LD_LIBRARY_PATH:-} PYTHONUNBUFFERED=1 FLASHINFER_WORKSPACE_BASE=/tmp/fiws \
  FLASHINFER_CUDA_ARCH_LIST=9.0a MAX_JOBS=6
export CUDA_HOME=${CUDA_HOME:-$(dirname "$(dirname "$(which nvcc)")")}
# At most 8 files come back from $OUT: test_prefill.log test_decode.log memcheck.log racecheck.log bench.log
# ours.csv peers.log table.md.
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu --format=csv; date -u; } \
  | tee "$OUT/bench.log"

# FlashInfer: install the wheels and JIT-compile both prefill backends while the tests run.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl \
  && export PYTHONPATH=/tmp/site
timeout 400 python3 $G/bench/peers/flashinfer_prefill_warmup.py fa2 /tmp/fi_ready > /tmp/fi_warmup_fa2.log 2>&1 &
W1=$!
timeout 400 python3 $G/bench/peers/flashinfer_prefill_warmup.py fa3 /tmp/fi_ready > /tmp/fi_warmup_fa3.log 2>&1 &
W2=$!

summary() { grep -E "^\[  (PASSED|FAILED|SKIPPED) |tests? ran|FAILED  " "$1" | tail -${2:-20}; }
timeout 180 $G/bin/test_prefill_cuda > "$OUT/test_prefill.log" 2>&1; echo "test_prefill_cuda rc=$?"
summary "$OUT/test_prefill.log" 40
timeout 150 $G/bin/test_cuda_attention > "$OUT/test_decode.log" 2>&1; echo "test_cuda_attention rc=$?"
summary "$OUT/test_decode.log"
# Optional variant builds of the tests (bin/test_prefill_cuda_<name>): a variant can become the default.
for t in $G/bin/test_prefill_cuda_*; do
  [ -x "$t" ] || continue
  echo "== tests of variant ${t##*_cuda_}" | tee -a "$OUT/test_prefill.log"
  timeout 120 "$t" --gtest_brief=1 >> "$OUT/test_prefill.log" 2>&1; echo "rc=$?"; tail -n 2 "$OUT/test_prefill.log"
done

# Sanitizers: every prefill test but the 16k prompts (memcheck), the small-problem ones (racecheck).
timeout 150 compute-sanitizer --tool memcheck --error-exitcode 9 $G/bin/test_prefill_cuda \
  --gtest_filter='-CudaPrefill.LongPromptsUpTo16k' > "$OUT/memcheck.log" 2>&1
echo "memcheck rc=$?"; grep -E "ERROR SUMMARY|tests? ran|PASSED|FAILED" "$OUT/memcheck.log" | tail -4
RFILTER='Dtypes/*:CudaPrefill.HeadDimsAndBlockSizes:CudaPrefill.ExplicitScales*:CudaPrefill.CapturedMixedStepReplays'
timeout 150 compute-sanitizer --tool racecheck --error-exitcode 9 $G/bin/test_prefill_cuda --gtest_filter="$RFILTER" \
  > "$OUT/racecheck.log" 2>&1; echo "racecheck rc=$?"
grep -E "RACECHECK SUMMARY|ERROR SUMMARY|tests? ran|PASSED|FAILED" "$OUT/racecheck.log" | tail -4

$G/bin/bench_prefill_cuda --csv "$OUT/ours.csv" 2>&1 | tee -a "$OUT/bench.log"
# Optional variant builds (bin/bench_prefill_cuda_<name>, PAGEDATTN_TUNE_PREFILL_* macros), ours only.
for b in $G/bin/bench_prefill_cuda_*; do
  [ -x "$b" ] || continue
  echo "== variant ${b##*_cuda_}" | tee -a "$OUT/bench.log"
  timeout 60 "$b" 2>&1 | grep -vE "^device|^B  " | tee -a "$OUT/bench.log"
done
wait $W1 $W2
cat /tmp/fi_warmup_*.log > "$OUT/peers.log"
tail -n 3 /tmp/fi_warmup_*.log
timeout 180 python3 $G/bench/peers/peer_prefill.py "$OUT/ours.csv" --ready /tmp/fi_ready --md "$OUT/table.md" \
  >> "$OUT/peers.log" 2>&1; echo "peers rc=$?"
cat "$OUT/table.md" 2>/dev/null || tail -20 "$OUT/peers.log"
