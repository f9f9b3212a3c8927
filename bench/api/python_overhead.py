"""Per-call overhead of the Python API over the C++ call, for a tiny decode (B=1, ctx=16, Hq=4, Hkv=1,
D=64, f32): both timed in the same run, median of 21 rounds of 2000 calls.

usage: python bench/api/python_overhead.py [path/to/bench_call]   (default build/bench/api/bench_call)
"""

import statistics
import subprocess
import sys
import time

import numpy as np

import pagedattn


def python_call_us() -> float:
    q = np.zeros((1, 4, 64), np.float32)
    out = np.zeros_like(q)
    kc = (0.01 * (np.arange(16 * 64) % 97)).astype(np.float32).reshape(1, 16, 1, 64)
    vc = np.zeros_like(kc)
    table = np.zeros((1, 1), np.int32)
    lens = np.array([16], np.int32)
    rounds = []
    for _ in range(21):
        start = time.perf_counter()
        for _ in range(2000):
            pagedattn.paged_attention(q, kc, vc, table, lens, out=out)
        rounds.append((time.perf_counter() - start) / 2000 * 1e6)
    return statistics.median(rounds)


def main() -> None:
    exe = sys.argv[1] if len(sys.argv) > 1 else "build/bench/api/bench_call"
    cpp = float(subprocess.run([exe], check=True, capture_output=True, text=True).stdout)
    py = python_call_us()
    print("| call | median µs per call |")
    print("|---|---|")
    print(f"| C++ `pagedattn::paged_attention` | {cpp:.2f} |")
    print(f"| Python `pagedattn.paged_attention(..., out=out)` | {py:.2f} |")
    print(f"| **overhead of Python** | **{py - cpp:.2f}** |")


if __name__ == "__main__":
    main()
