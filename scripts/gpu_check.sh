#!/usr/bin/env bash
# Runs on the GPU machine, from the repository root, over the folder scripts/gpu_stage.sh prepared: every
# CUDA test binary and the Python suite (torch CPU and CUDA cases included). Logs go to $OUT.
set -u
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-/tmp/out}
mkdir -p "$out"
export LD_LIBRARY_PATH=$here/lib:${LD_LIBRARY_PATH:-} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
status=0
for t in "$here"/bin/*; do
  name=$(basename "$t")
  timeout 240 "$t" > "$out/$name.log" 2>&1; rc=$?
  echo "$name rc=$rc: $(grep -E '^\[  PASSED|^\[  FAILED  \] [0-9]+|tests? ran' "$out/$name.log" | tr '\n' ' ')"
  grep -E '^\[  FAILED' "$out/$name.log" | head -20
  [ $rc -eq 0 ] || status=1
done
cd "$here/python" && PYTHONPATH=$here/python timeout 240 python3 -m pytest -q -rs tests > "$out/pytest.log" 2>&1; rc=$?
echo "pytest rc=$rc: $(tail -1 "$out/pytest.log")"
grep -E "^(FAILED|ERROR|SKIPPED)" "$out/pytest.log" | head -20
[ $rc -eq 0 ] || status=1
exit $status
