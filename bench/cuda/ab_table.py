#!/usr/bin/env python3
"""The A/B table of bench_decode_cuda logs taken in one call, alternated over settings and rounds.

Each log is named <prefix>_<setting>_r<round>.log (`gpu_bench_run.sh access NAME=VALUE ...` writes
decode_default_r1.log, decode_NAME=VALUE_r1.log, ...). Prints a markdown table: per shape, each setting's time
in every round (us) and the ratio of its best round to the baseline's best (the first setting named by
--baseline, else the first log's). Ratios below 1 are faster.

  python3 bench/cuda/ab_table.py /tmp/o/decode_*_r*.log --baseline default
"""
import argparse
import collections
import os
import re
import sys

ROW = re.compile(r"^(reference|smollm2|block size)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+\S+\s+\S+\s+(\S+)")
NAME = re.compile(r"^[^_]+_(.+)_r(\d+)\.log$")


def read(path):
    """{shape: ours_us} of one bench_decode_cuda log."""
    times = {}
    with open(path) as f:
        for line in f:
            m = ROW.match(line)
            if m:
                shape = "{} ({}, {}, {}, {}, {}, {})".format(*m.groups()[:7])
                times[shape] = float(m.group(8))
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logs", nargs="+")
    parser.add_argument("--baseline", help="the setting the ratios are to (default: the first log's)")
    args = parser.parse_args()
    runs = collections.defaultdict(dict)  # setting -> round -> {shape: us}
    for path in args.logs:
        m = NAME.match(os.path.basename(path))
        if not m:
            sys.exit(f"ab_table.py: {path}: expected a name ending in _<setting>_r<round>.log")
        try:
            runs[m.group(1)][int(m.group(2))] = read(path)
        except OSError as e:
            sys.exit(f"ab_table.py: {path}: {e.strerror}")
    settings = list(runs)
    baseline = args.baseline or settings[0]
    if baseline not in runs:
        sys.exit(f"ab_table.py: --baseline {baseline}: no such setting, expected one of {', '.join(settings)}")
    shapes = list(dict.fromkeys(s for rounds in runs.values() for times in rounds.values() for s in times))
    best = {k: {s: min((t[s] for t in r.values() if s in t), default=None) for s in shapes} for k, r in runs.items()}
    print("| shape | " + " | ".join(f"{k} (us, rounds) | /{baseline}" for k in settings) + " |")
    print("|---|" + "---|---|" * len(settings))
    for shape in shapes:
        cells = []
        for k in settings:
            rounds = " / ".join(f"{runs[k][r][shape]:.1f}" if shape in runs[k][r] else "-" for r in sorted(runs[k]))
            b, base = best[k][shape], best[baseline][shape]
            cells.append(rounds + " | " + (f"{b / base:.3f}" if b and base else "-"))
        print(f"| {shape} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
