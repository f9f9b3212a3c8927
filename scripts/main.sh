#!/usr/bin/env bash
# Sets everything up and runs the main job: text generation from the default model (SmolLM2-135M-Instruct)
# through the engine. Arguments, if any, replace the default ones of `pagedattn generate`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
scripts/build.sh
if [ $# -eq 0 ]; then set -- --chat "What is paged attention?"; fi
exec build/apps/pagedattn generate "$@"
