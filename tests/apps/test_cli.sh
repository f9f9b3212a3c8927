#!/usr/bin/env bash
# The `pagedattn` CLI end to end: greedy generation of one prompt and of several together, the timing summary
# on stderr, --stats-json, and exit code 2 with a message on stderr for each kind of bad argument.
#   test_cli.sh <pagedattn binary> <model file>
set -u
cli=$1 model=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAILED: $*" >&2; failures=$((failures + 1)); }

# expect <code> <stderr pattern> -- args...: runs the CLI, checks its exit code and that stderr matches.
expect() {
  local code=$1 pattern=$2
  shift 3
  "$cli" "$@" > "$tmp/out" 2> "$tmp/err"
  local rc=$?
  [ "$rc" -eq "$code" ] || fail "pagedattn $* exited $rc, expected $code: $(tail -n 3 "$tmp/err")"
  grep -qE -- "$pattern" "$tmp/err" || fail "pagedattn $*: stderr lacks /$pattern/: $(tail -n 3 "$tmp/err")"
}

expect 0 "1 prompt\(s\): prompt 5 tokens" -- generate --model "$model" --temperature 0 -n 6 "The capital of France is"
grep -q "Paris" "$tmp/out" || fail "greedy completion lacks 'Paris': $(cat "$tmp/out")"

printf 'The capital of France is\n\nWrite a haiku about the sea.\n' > "$tmp/prompts.txt"
expect 0 "3 prompt\(s\)" -- generate --model "$model" --temperature 0 -n 5 --ignore-eos --prompts-file "$tmp/prompts.txt" \
  "One plus one is" --stats-json "$tmp/stats.json"
[ "$(grep -c '^--- \[' "$tmp/out")" -eq 3 ] || fail "expected 3 completions: $(cat "$tmp/out")"
grep -q '"generated_tokens": 15' "$tmp/stats.json" || fail "stats: $(cat "$tmp/stats.json")"

expect 2 "no prompt: expected a PROMPT" -- generate --model "$model"
expect 2 "kv-dtype: int8 not in" -- generate --kv-dtype int8 x
expect 2 "max-tokens: Value 0 not in range 1 to" -- generate -n 0 x
expect 2 "prompts-file /nonexistent: cannot be read" -- generate --prompts-file /nonexistent
expect 2 "A subcommand is required" --
expect 1 "cannot open /nonexistent.gguf" -- generate --model /nonexistent.gguf x
printf 'not a gguf file' > "$tmp/bad.gguf"
expect 2 "header.magic at byte 0" -- generate --model "$tmp/bad.gguf" x
expect 2 "sampler: top_p = 0: expected a value in \(0, 1\]" -- generate --model "$model" --top-p 0 x
expect 2 "stop\[0\] is empty" -- generate --model "$model" --stop "" x

[ "$failures" -eq 0 ] && echo "all CLI checks passed"
exit $((failures > 0))
