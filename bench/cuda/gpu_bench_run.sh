#!/bin/bash
# One GPU-machine call that checks and measures the CUDA kernels (bench/results/cuda_h200.md): the CUDA tests
# (the prefill tests once more with each sm_90a prefill kernel forced, and the mma.sync prefill kernel timed
# beside them) and the Python tests on CUDA tensors, bench_decode_cuda and bench_prefill_cuda, then
# peer_decode.py and peer_prefill.py (FlashInfer's JIT compiles run while the tests do) and
# prefill_interleaved.py (ours and FlashInfer alternately in one process, in the same power state), then
# compute-sanitizer memcheck and racecheck (synccheck too on the warp-specialized prefill kernel) on the
# kernels' tests. Stage first on
# the development machine with bench/cuda/gpu_bench_stage.sh, then run through the device tool with carry
# [".gpu/h200"]: bash bench/cuda/gpu_bench_run.sh. Everything is packed into $OUT/all.tgz (at most 8 files come
# back); the summary lines and both tables are printed. On a cold machine the whole call took 320-343 s (run 60),
# `prefill` 190-322 s (FlashInfer's fa3 JIT compile sets it), `check` 132 s (bench/results/cuda_h200.md).
# `bash gpu_bench_run.sh prefill`: the prefill kernels' part alone (no decode tests, benchmark or peers);
# `... check`: that without the peers either (prefill tests, sanitizers and our benchmark: about 4 minutes);
# `... access [NAME=VALUE ...]`: the decode benchmark, its peers and the access-pattern lab (bin/access_gpu, built
# by the stage script from bench/results/raw/cuda_access_pattern.cu); nothing else (run 59: 283 s with four
# settings' tests and A/B). Each setting (an environment variable, e.g. PAGEDATTN_DECODE_PREFETCH=0) runs the decode
# tests, then the benchmark is alternated over the default and every setting in two rounds and ab_table.py prints
# their ratios, then memcheck and racecheck run on the decode tests under each.
set -u
scope=${1:-all}
settings=("${@:2}")
cd .gpu/h200
for f in bin/*.gz python/pagedattn/*.gz; do [ -e "$f" ] && gunzip -f "$f"; done
o=/tmp/o; mkdir -p $o /tmp/fi_ready
save() { tar czf $OUT/all.tgz -C $o .; }  # after each part too: a call cut short still brings back what it did
export LD_LIBRARY_PATH=$PWD/lib:${LD_LIBRARY_PATH:-} PYTHONUNBUFFERED=1 FLASHINFER_WORKSPACE_BASE=/tmp/fiws \
  FLASHINFER_CUDA_ARCH_LIST=9.0a MAX_JOBS=4
export CUDA_HOME=${CUDA_HOME:-$(dirname "$(dirname "$(which nvcc)")")}
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site whl/*.whl > /dev/null 2>&1
export PYTHONPATH=/tmp/site:$PWD/python
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,memory.total --format=csv; date -u; } | tee $o/device.log
P=tree/bench/peers
w1=; w2=
if [ "$scope" = all ] || [ "$scope" = access ]; then
  python3 $P/flashinfer_warmup.py 128 > $o/fi128.log 2>&1 & w1=$!
  python3 $P/flashinfer_warmup.py 64 > $o/fi64.log 2>&1 & w2=$!
fi
# The decode part: our benchmark (and its A/B over settings), the peers in the same call, then (`access`) the
# access pattern with no math.
decode_and_access() {
  timeout 90 bin/bench_decode_cuda --csv $o/decode_ours.csv > $o/decode_bench.log 2>&1; echo "decode bench rc=$?"
  if [ ${#settings[@]} -gt 0 ]; then  # `access` with settings: their tests, then the A/B table
    for v in "${settings[@]}"; do
      env "$v" timeout 200 bin/test_cuda_attention > "$o/test_$v.log" 2>&1
      echo "test_cuda_attention ($v) rc=$? $(grep -E '^\[  PASSED|^\[  FAILED  \] [0-9]+' "$o/test_$v.log" | tr '\n' ' ')"
    done
    for round in 1 2; do
      for v in default "${settings[@]}"; do
        env $([ "$v" = default ] || echo "$v") timeout 90 bin/bench_decode_cuda > "$o/decode_${v}_r$round.log" 2>&1
        echo "decode bench ($v), round $round, rc=$?"
      done
    done
    python3 tree/bench/cuda/ab_table.py $o/decode_*_r[12].log --baseline default | tee $o/ab_table.md
    save
  fi
  wait $w1 $w2; tail -n1 $o/fi128.log $o/fi64.log
  timeout 200 python3 $P/peer_decode.py $o/decode_ours.csv --csv $o/decode_peers.csv > $o/decode_peers.log 2>&1
  echo "decode peers rc=$?"; tail -16 $o/decode_peers.log
  if [ "$scope" = access ]; then
    timeout 120 bin/access_gpu > $o/access.log 2>&1; echo "access lab rc=$?"; cat $o/access.log
  fi
  save
}
if [ "$scope" = access ]; then
  decode_and_access
  F_MEM='Dtypes/*:CudaDecode.Ragged*:CudaDecode.SharedPrefixBlocks:CudaGraph.*'
  for v in "${settings[@]}"; do  # each setting's kernels under the sanitizers, after the timings
    env "$v" timeout 150 compute-sanitizer --tool memcheck --error-exitcode 9 bin/test_cuda_attention \
      --gtest_filter="$F_MEM" > "$o/memcheck_$v.log" 2>&1 &
    env "$v" timeout 150 compute-sanitizer --tool racecheck --error-exitcode 9 bin/test_cuda_attention \
      --gtest_filter="$F_MEM" > "$o/racecheck_$v.log" 2>&1 &
  done
  wait
  for f in $o/memcheck_*.log $o/racecheck_*.log; do
    [ -e "$f" ] && echo "$(basename "$f"): $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|^\[  PASSED|^\[  FAILED  \] [0-9]+' "$f" | tr '\n' ' ')"
  done
  save
  exit 0
fi
if [ "$scope" != check ]; then
  timeout 500 python3 $P/flashinfer_prefill_warmup.py fa2 /tmp/fi_ready > $o/fi_fa2.log 2>&1 & w3=$!
  timeout 500 python3 $P/flashinfer_prefill_warmup.py fa3 /tmp/fi_ready > $o/fi_fa3.log 2>&1 & w4=$!
fi
# The warp-specialized sm_90a kernel (long rows) forced on every prefill test first: if it hangs, everything
# after runs with the N = 64 wgmma kernel instead.
ws_variants="2"
for v in $ws_variants; do
  PAGEDATTN_PREFILL_WGMMA=$v timeout 90 bin/test_prefill_cuda > $o/test_prefill_cuda_ws$v.log 2>&1; rc=$?
  echo "test_prefill_cuda (variant $v forced) rc=$rc $(grep -E '^\[  PASSED|^\[  FAILED  \] [0-9]+' $o/test_prefill_cuda_ws$v.log | tr '\n' ' ')"
  if [ $rc = 124 ]; then ws_variants=""; export PAGEDATTN_PREFILL_WGMMA=1; echo "hang: the rest runs with variant 1"; break; fi
done
tests=""; [ "$scope" = all ] && tests="test_split_planner test_kv_cache_cuda test_cuda_attention test_prefill_cuda"
for t in $tests; do
  timeout 200 bin/$t > $o/$t.log 2>&1; echo "$t rc=$? $(grep -E '^\[  PASSED|^\[  FAILED  \] [0-9]+' $o/$t.log | tr '\n' ' ')"
done
# The decode tests with each build of the decode kernel forced (the default picks by grid size).
if [ "$scope" = all ]; then
  for c in 1 2; do
    PAGEDATTN_DECODE_CTAS_PER_SM=$c timeout 200 bin/test_cuda_attention > $o/test_cuda_attention_ctas$c.log 2>&1
    echo "test_cuda_attention (decode build for $c CTA/SM forced) rc=$? $(grep -E '^\[  PASSED|^\[  FAILED  \] [0-9]+' $o/test_cuda_attention_ctas$c.log | tr '\n' ' ')"
  done
fi
timeout 60 bin/test_wgmma > $o/test_wgmma.log 2>&1; echo "test_wgmma rc=$? $(tail -n1 $o/test_wgmma.log)"
if [ "$scope" = all ]; then  # the Python package (built for this machine's Python) on CPU and CUDA tensors
  timeout 240 python3 -m pytest -q -rs -p no:cacheprovider tree/python/tests > $o/pytest.log 2>&1
  echo "pytest rc=$? $(tail -n1 $o/pytest.log)"; grep -E '^(FAILED|ERROR|SKIPPED)' $o/pytest.log | head -20
fi
# The N = 64 wgmma kernel (short rows) forced on every prefill test.
PAGEDATTN_PREFILL_WGMMA=1 timeout 200 bin/test_prefill_cuda > $o/test_prefill_cuda_n64.log 2>&1
echo "test_prefill_cuda (N = 64 forced) rc=$? $(grep -E '^\[  PASSED|^\[  FAILED  \] [0-9]+' $o/test_prefill_cuda_n64.log | tr '\n' ' ')"
timeout 90 bin/bench_prefill_cuda --csv $o/prefill_ours.csv > $o/prefill_bench.log 2>&1; echo "prefill bench rc=$?"
grep -E '^[0-9]+ +[0-9]+ |mixed \(one call\) |two separate' $o/prefill_bench.log
# The mma.sync prefill kernel (what sm_80 runs) in the same run, for the before/after ratio.
[ "$scope" = all ] && { PAGEDATTN_PREFILL_WGMMA=0 timeout 90 bin/bench_prefill_cuda > $o/prefill_bench_mma_sync.log 2>&1; echo "prefill bench (mma.sync kernel) rc=$?"; }
for v in $ws_variants 1; do
  PAGEDATTN_PREFILL_WGMMA=$v timeout 60 bin/bench_prefill_cuda --csv $o/prefill_ours_v$v.csv > $o/prefill_bench_v$v.log 2>&1
  echo "prefill bench (variant $v forced) rc=$?"; grep -E '^[0-9]+ +[0-9]+ |mixed \(one call\) |two separate' $o/prefill_bench_v$v.log
done
[ "$scope" = all ] && decode_and_access
if [ "$scope" != check ]; then
  wait $w3 $w4; tail -n1 $o/fi_fa2.log $o/fi_fa3.log
  timeout 150 python3 $P/peer_prefill.py $o/prefill_ours.csv --ready /tmp/fi_ready --md $o/prefill_table.md > $o/prefill_peers.log 2>&1
  echo "prefill peers rc=$?"; cat $o/prefill_table.md 2>/dev/null || tail -20 $o/prefill_peers.log
  # The clock and power beside it: the board's power cap is what the interleaving is for.
  nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,clocks_event_reasons.active --format=csv -lms 100 \
    > $o/prefill_interleaved_power.csv 2>&1 & smi=$!
  timeout 200 python3 $P/prefill_interleaved.py --rounds 30 > $o/prefill_interleaved.log 2>&1
  echo "prefill interleaved rc=$?"; kill $smi; tail -n 7 $o/prefill_interleaved.log
fi
# Sanitizers (after the timings), on the tests of every dtype, the error paths, the graph replays and the
# ragged and mixed batches (the 16k/32k-token cases would take minutes under them).
sanitize() {  # tool binary filter [log suffix]
  timeout 100 compute-sanitizer --tool "$1" --error-exitcode 9 "bin/$2" --gtest_filter="$3" > "$o/$1_$2${4:-}.log" 2>&1
  echo "$1 $2${4:-} rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|^\[  PASSED|^\[  FAILED  \] [0-9]+' "$o/$1_$2${4:-}.log" | tr '\n' ' ')"
}
# All runs in parallel (the GPU has room for them; each is mostly host-side instrumentation), printed in order after.
F_DEC_MEM='Dtypes/*:CudaDecode.Ragged*:CudaDecode.SharedPrefixBlocks:CudaDecode.ManySequences*:CudaErrors.*:CudaGraph.*:CudaWriteKv.*'
F_DEC_RACE='Dtypes/CudaDecodeByDtype.EdgeCases/*:CudaDecode.Ragged*:CudaErrors.BadBlockIdRaisesAtOnceInCheckedMode:CudaGraph.*'
F_PRE_MEM='Dtypes/*:CudaPrefillErrors.*:CudaPrefill.AllGroupSizes:CudaPrefill.CapturedMixedStepReplays'
F_PRE_RACE='Dtypes/CudaPrefillByDtype.EdgeCases/*:Dtypes/CudaPrefillByDtype.ChunkBoundariesInsideAndAtBlocks/bfloat16:CudaPrefill.CapturedMixedStepReplays'
if [ "$scope" = all ]; then
  sanitize memcheck test_cuda_attention "$F_DEC_MEM" > $o/s1.txt &
  sanitize racecheck test_cuda_attention "$F_DEC_RACE" > $o/s2.txt &
  # Small test grids take the deep (1 CTA/SM) decode build: the same runs with the other forced.
  PAGEDATTN_DECODE_CTAS_PER_SM=2 sanitize memcheck test_cuda_attention "$F_DEC_MEM" _ctas2 > $o/s1b.txt &
  PAGEDATTN_DECODE_CTAS_PER_SM=2 sanitize racecheck test_cuda_attention "$F_DEC_RACE" _ctas2 > $o/s2b.txt &
fi
sanitize memcheck test_prefill_cuda "$F_PRE_MEM" > $o/s3.txt &
sanitize racecheck test_prefill_cuda "$F_PRE_RACE" > $o/s4.txt &
# The same two prefill runs with the N = 64 wgmma kernel forced.
PAGEDATTN_PREFILL_WGMMA=1 sanitize memcheck test_prefill_cuda "$F_PRE_MEM" _n64 > $o/s5.txt &
PAGEDATTN_PREFILL_WGMMA=1 sanitize racecheck test_prefill_cuda "$F_PRE_RACE" _n64 > $o/s6.txt &
# The warp-specialized kernel's mbarriers and named barriers: memcheck, racecheck and synccheck.
if [ -n "$ws_variants" ]; then
  PAGEDATTN_PREFILL_WGMMA=2 sanitize memcheck test_prefill_cuda "$F_PRE_MEM" _ws > $o/s7.txt &
  PAGEDATTN_PREFILL_WGMMA=2 sanitize racecheck test_prefill_cuda "$F_PRE_RACE" _ws > $o/s8.txt &
  PAGEDATTN_PREFILL_WGMMA=2 sanitize synccheck test_prefill_cuda "$F_PRE_RACE" _ws > $o/s9.txt &
fi
wait
cat $o/s[1-9]*.txt 2>/dev/null
save
