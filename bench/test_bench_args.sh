#!/usr/bin/env bash
# The benchmark programs' bad arguments: each exits non-zero with the usage or a message naming the argument
# on stderr, before any timing. Arguments are checked before a GPU is looked for, so this runs anywhere.
#   test_bench_args.sh <bench_kernel_compute> [<bench_decode_cuda> <bench_prefill_cuda>]
set -u
compute=$1 decode=${2:-} prefill=${3:-}
failures=0
fail() { echo "FAILED: $*" >&2; failures=$((failures + 1)); }

# expect <binary> <code> <stderr pattern> -- args...
expect() {
  local bin=$1 code=$2 pattern=$3
  shift 4
  local err rc
  err=$("$bin" "$@" 2>&1 > /dev/null)
  rc=$?
  [ "$rc" -eq "$code" ] || fail "$(basename "$bin") $* exited $rc, expected $code"
  grep -qE -- "$pattern" <<< "$err" || fail "$(basename "$bin") $*: stderr lacks /$pattern/: $err"
}

expect "$compute" 2 "usage: bench_kernel_compute" -- --context 0
expect "$compute" 2 "usage: bench_kernel_compute" -- --batches -3
expect "$compute" 2 "usage: bench_kernel_compute" -- --dtype f64
expect "$compute" 2 "usage: bench_kernel_compute" -- --context
expect "$compute" 2 "usage: bench_kernel_compute" -- --bogus
"$compute" --help | grep -q "usage: bench_kernel_compute" || fail "--help prints no usage on stdout"
if [ -n "$decode" ]; then
  expect "$decode" 1 "--shape 4,1024,32,5,128,16: expected B,ctx,Hq,Hkv,D,bs" -- --shape 4,1024,32,5,128,16
  expect "$decode" 1 "--shape 4,1024,32,8: expected" -- --shape 4,1024,32,8
  expect "$decode" 1 "--shape 0,1024,32,8,128,16: expected" -- --shape 0,1024,32,8,128,16
  expect "$decode" 1 "usage: bench_decode_cuda" -- --bogus
  expect "$decode" 1 "--layout diagonal: expected shuffled, sorted or in-order" -- --layout diagonal
fi
if [ -n "$prefill" ]; then
  expect "$prefill" 1 "--placements 0: expected >= 1" -- --placements 0
  expect "$prefill" 1 "usage: bench_prefill_cuda" -- --bogus
fi
[ "$failures" -eq 0 ] && echo "all bench argument checks passed"
exit $((failures > 0))
