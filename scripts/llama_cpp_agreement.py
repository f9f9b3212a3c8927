#!/usr/bin/env python3
"""Teacher-forced top-1 agreement of our logits with llama.cpp's (llama-cpp-python) on the same token
sequences: 5 chat prompts, each continued greedily by llama.cpp by 64 new tokens (ignoring end-of-turn);
both models then score every position of those fixed sequences, and we count, over the 64 positions that
predict the new tokens, those where their argmax agrees (the prompt positions are reported apart).

  .venv/bin/python scripts/llama_cpp_agreement.py --probe build/tests/model/model_probe \\
      [--model models/SmolLM2-135M-Instruct.Q4_1.gguf] [--min-agreement 0.97]

Needs llama-cpp-python (scripts/requirements-oracle.txt; it compiles llama.cpp, which takes a while).
Also run as the opt-in ctest `llama_cpp_agreement` (cmake -DPAGEDATTN_LLAMA_CPP_ORACLE=ON).
"""
import argparse
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import chat_prompts  # scripts/, beside this file

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = chat_prompts.PROMPTS[:5]
chatml = chat_prompts.chatml
NEW_TOKENS = 64


def our_logits(probe, model, sequences):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "logits.bin"
        cmd = [probe, "forward", str(model), str(out), "--decode", "0"]
        for s in sequences:
            cmd += ["--prompt", ",".join(map(str, s))]
        subprocess.run(cmd, check=True)
        data = out.read_bytes()
    n_seqs, vocab = struct.unpack_from("<II", data, 4)
    off, result = 12, []
    for _ in range(n_seqs):
        n, _ = struct.unpack_from("<II", data, off)
        off += 8 + 4 * n
        result.append(np.frombuffer(data, np.float32, n * vocab, off).reshape(n, vocab))
        off += 4 * n * vocab
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--probe", required=True, help="the built model_probe binary")
    ap.add_argument("--model", default=str(ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--min-agreement", type=float, default=0.0)
    args = ap.parse_args()

    import llama_cpp

    llm = llama_cpp.Llama(model_path=args.model, n_ctx=512, logits_all=True, verbose=False, seed=0)
    sequences, theirs, prompt_lens = [], [], []
    for text in PROMPTS:
        tokens = llm.tokenize(chatml(text).encode(), add_bos=False, special=True)
        prompt_lens.append(len(tokens))
        llm.reset()
        llm.eval(tokens)
        for _ in range(NEW_TOKENS):  # greedy continuation by llama.cpp
            tokens.append(int(np.argmax(llm.scores[len(tokens) - 1])))
            llm.eval(tokens[-1:])
        sequences.append(tokens)
        llm.reset()
        llm.eval(tokens)  # score the fixed sequence in one pass, as we do
        theirs.append(np.array(llm.scores[:len(tokens)], dtype=np.float32))

    ours = our_logits(args.probe, args.model, sequences)
    agree = total = prompt_agree = prompt_total = 0
    for i, (a, b, n) in enumerate(zip(ours, theirs, prompt_lens)):
        same = (a.argmax(axis=1) == b.argmax(axis=1))
        rel = np.abs(a - b).max(axis=1) / np.abs(b).max(axis=1)
        new = same[n - 1:n - 1 + NEW_TOKENS]  # the positions whose logits chose the new tokens
        agree += int(new.sum())
        total += len(new)
        prompt_agree += int(same[:n - 1].sum())
        prompt_total += n - 1
        print(f"prompt {i} ({n} tokens): top-1 agreement on the new tokens {new.mean():.4f} ({new.sum()}/{len(new)}), "
              f"on the prompt {same[:n - 1].mean():.4f}; relative logit difference max {rel.max():.3e}, "
              f"median {np.median(rel):.3e}")
    rate = agree / total
    print(f"prompt positions: top-1 agreement {prompt_agree / prompt_total:.4f} ({prompt_agree}/{prompt_total})")
    print(f"teacher-forced top-1 agreement with llama.cpp {llama_cpp.__version__}: {rate:.4f} ({agree}/{total}) "
          f"over {len(PROMPTS)} prompts x {NEW_TOKENS} new tokens")
    if rate < args.min_agreement:
        print(f"FAILED: below the required {args.min_agreement}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
