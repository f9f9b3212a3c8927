#!/usr/bin/env python3
"""Generation throughput on the CPU: `pagedattn generate` against llama-cpp-python on the same machine, in
the same run, for the same work: N chat prompts, each generating exactly --max-tokens new tokens (greedy,
end-of-generation tokens ignored), the model loaded once beforehand (load time excluded on both sides).

  .venv-oracle/bin/python bench/model/generate_vs_llama_cpp.py --cli build/apps/pagedattn \\
      [--model models/SmolLM2-135M-Instruct.Q4_1.gguf] [--batches 1 16] [--max-tokens 128] [--repeats 3]

pagedattn runs the N prompts together (one batched forward per step); llama-cpp-python's `Llama` serves one
sequence at a time, so its N prompts run one after another: aggregate tokens/s = N x max_tokens / wall time.
Repeats alternate the two engines; the table gives medians and each run's ratio's median.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from chat_prompts import PROMPTS, chatml  # noqa: E402


def run_ours(cli, model, prompts, max_tokens, extra):
    with tempfile.TemporaryDirectory() as tmp:
        pfile, stats = Path(tmp) / "prompts.txt", Path(tmp) / "stats.json"
        pfile.write_text("\n".join(prompts) + "\n")
        cmd = [cli, "generate", "--model", model, "--prompts-file", str(pfile), "--chat", "--temperature", "0",
               "--ignore-eos", "--max-tokens", str(max_tokens), "--stats-json", str(stats)] + extra
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        s = json.loads(stats.read_text())
    assert s["generated_tokens"] == len(prompts) * max_tokens, s
    return s["generated_tokens"] / s["run_seconds"], s


def run_llama_cpp(llm, prompts, max_tokens):
    import llama_cpp
    token_lists = [llm.tokenize(chatml(p).encode(), add_bos=False, special=True) for p in prompts]
    start = time.perf_counter()
    for tokens in token_lists:
        # Greedy; generate() does not stop at EOS, so every prompt gets exactly max_tokens new tokens.
        for count, _ in enumerate(llm.generate(tokens, temp=0.0, top_k=1, reset=True), 1):
            if count == max_tokens:
                break
    seconds = time.perf_counter() - start
    return len(prompts) * max_tokens / seconds, llama_cpp.__version__


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cli", default=str(ROOT / "build" / "apps" / "pagedattn"))
    ap.add_argument("--model", default=str(ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 16], help="numbers of prompts run together")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--ours-args", default="", help="extra arguments for pagedattn generate (quoted)")
    args = ap.parse_args()

    import llama_cpp
    llm = llama_cpp.Llama(model_path=args.model, n_ctx=1024, n_batch=512, n_threads=args.threads,
                          n_threads_batch=args.threads, verbose=False)
    rows = []
    for n in args.batches:
        prompts = [PROMPTS[i % len(PROMPTS)] for i in range(n)]
        ours, theirs, ratios = [], [], []
        for r in range(args.repeats):
            o, stats = run_ours(args.cli, args.model, prompts, args.max_tokens, args.ours_args.split())
            t, version = run_llama_cpp(llm, prompts, args.max_tokens)
            ours.append(o)
            theirs.append(t)
            ratios.append(o / t)
            print(f"prompts={n} repeat {r}: pagedattn {o:.1f} tok/s ({stats['steps']} steps), "
                  f"llama-cpp-python {t:.1f} tok/s, ratio {o / t:.2f}", file=sys.stderr, flush=True)
        rows.append((n, statistics.median(ours), statistics.median(theirs), statistics.median(ratios)))

    print(f"\nllama-cpp-python {version}, {args.threads} threads; pagedattn: {args.cli} {args.ours_args}".rstrip())
    print(f"{args.max_tokens} new tokens per prompt, greedy, EOS ignored; medians of {args.repeats} alternating runs\n")
    print("| prompts together | pagedattn tok/s | llama-cpp-python tok/s | pagedattn / llama.cpp |")
    print("|---|---|---|---|")
    for n, o, t, ratio in rows:
        print(f"| {n} | {o:.1f} | {t:.1f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
