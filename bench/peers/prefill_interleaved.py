"""Our paged prefill (through the pagedattn Python module) and FlashInfer's, timed alternately in one process.

Why: on the H200 the board reaches its 700 W limit within half a second of long prefill rows and the SM
clock then drops from 1980 to 1665-1815 MHz (bench/results/cuda_h200.md, runs 43-45). Timed in separate
processes, ours and a peer can each catch a different power state, which moves their ratio by 5-10%. Here
both run on the same paged data in the same process: a common warm-up brings the board to the state it
holds under sustained load, then every round times each kernel once (graph replays of `iters` calls), in
an order that alternates round by round, and the ratio is taken within each round.

Shapes: bench_prefill_cuda's (causal, every token new, Hq=32 Hkv=8 D=128 bf16, pages of 16 in a random
order). Besides the times, the two outputs are compared (max |ours - FlashInfer|) as a cross-check.
Usage: python3 prefill_interleaved.py [--backends fa3,fa2] [--rounds 15] [--iters 10] [--warmup-s 2]
"""
import argparse
import statistics
import sys
import time

import torch

import pagedattn
from peer_decode import import_flashinfer, replayer, time_once, why
from peer_prefill import DEV, DT, flashinfer_wrapper, paged

SHAPES = [(1, 8192), (4, 4096), (16, 1024), (64, 256)]
HQ, HKV, D, BS = 32, 8, 128, 16


def contenders(fi, backends, B, L):
    """{name: (call, out)} on one paged cache: ours and each FlashInfer backend."""
    kc, vc, indptr, indices, last = paged(B, [L] * B, HKV, D, BS, seed=B * 31 + L)
    q = torch.empty(B * L, HQ, D, dtype=DT, device=DEV).uniform_(-1, 1)
    query_start = torch.arange(0, B * L + 1, L, dtype=torch.int32, device=DEV)
    block_tables = indices.view(B, L // BS)  # equal lengths: FlashInfer's flat page list, one row per sequence
    context_lens = torch.full((B,), L, dtype=torch.int32, device=DEV)
    out = torch.empty_like(q)
    found = {"ours": (lambda: pagedattn.paged_attention(q, kc, vc, block_tables, context_lens,
                                                        query_start=query_start, out=out), out)}
    for backend in backends:
        o = torch.empty_like(q)
        w = flashinfer_wrapper(fi, backend, query_start, indptr, indices, last, HQ, HKV, D, BS)
        found["fi-" + backend] = ((lambda w=w, o=o: w.run(q, (kc, vc), out=o)), o)
    return found


def interleave(calls, args):
    """{name: [us per call, one per round]} timing each call once per round, order rotating every round."""
    replays = {name: replayer([call], args.iters)[0] for name, call in calls.items()}
    names = list(replays)
    end = time.time() + args.warmup_s
    while time.time() < end:  # the common warm-up: every kernel, until the board holds its loaded state
        for name in names:
            replays[name]()
        torch.cuda.synchronize()
    times = {name: [] for name in names}
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            times[name].append(time_once(replays[name], args.iters))
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", default="fa3,fa2", help="FlashInfer backends to time beside ours")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--iters", type=int, default=10, help="calls per graph replay")
    ap.add_argument("--warmup-s", type=float, default=2.0, help="seconds of common warm-up per shape")
    args = ap.parse_args()
    if args.rounds < 1 or args.iters < 1 or args.warmup_s < 0:
        ap.error(f"--rounds and --iters must be >= 1 and --warmup-s >= 0, got {args.rounds}, {args.iters}, "
                 f"{args.warmup_s}")
    fi, fi_error = import_flashinfer()
    if fi is None:
        print(f"FlashInfer not available: {fi_error}", file=sys.stderr)
        return 1
    backends = [b for b in args.backends.split(",") if b]
    print(f"device {torch.cuda.get_device_name()}, flashinfer {fi.__version__}, {args.rounds} rounds of "
          f"{args.iters} calls each after {args.warmup_s:g} s of common warm-up; ratio = peer / ours within a round")
    head = "| B x L | ours µs | " + " | ".join(
        f"{b} µs | {b}/ours median (min-max) | max abs diff vs ours" for b in backends) + " |"
    lines = [head, "|" + "---|" * (2 + 3 * len(backends))]
    print(lines[0], flush=True)
    for B, L in SHAPES:
        try:
            calls = contenders(fi, backends, B, L)
            times = interleave({n: c for n, (c, _) in calls.items()}, args)
        except Exception as ex:
            lines.append(f"| {B} x {L} | n/a ({why(ex)}) |")
            print(lines[-1], flush=True)
            continue
        ours = times["ours"]
        cells = [f"{B} x {L}", f"{statistics.median(ours):.1f}"]
        for b in backends:
            peer = times["fi-" + b]
            ratios = [p / o for p, o in zip(peer, ours)]
            diff = (calls["ours"][1].float() - calls["fi-" + b][1].float()).abs().max().item()
            cells += [f"{statistics.median(peer):.1f}",
                      f"{statistics.median(ratios):.3f}x ({min(ratios):.3f}-{max(ratios):.3f})", f"{diff:.2e}"]
        lines.append("| " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
        del calls
        torch.cuda.empty_cache()
    print("\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
