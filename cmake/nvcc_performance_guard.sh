#!/usr/bin/env bash
# CUDA compiler launcher of PAGEDATTN_WERROR builds: runs the compile and fails it when ptxas reports that it
# serialized a kernel's wgmma instructions (advisory C7511, printed as "info", so -Werror does not catch it).
# Such a build is correct but slow: one extra live value in the warp-specialized prefill kernel did it, and the
# kernel ran 45% slower (bench/results/cuda_h200.md, run 58).
log=$(mktemp) || exit 1
trap 'rm -f "$log"' EXIT
"$@" 2>"$log"
status=$?
cat "$log" >&2
if [ "$status" -eq 0 ] && grep -q 'C7511' "$log"; then
  echo "error: ptxas serialized wgmma.mma_async (C7511, above): the kernel would run far slower" >&2
  exit 1
fi
exit "$status"
