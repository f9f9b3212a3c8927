"""Peers of our CUDA paged prefill, measured in the same run as bench_prefill_cuda, joined into one table.

Reads the CSV that bench_prefill_cuda wrote (shapes and our times) and measures, on the same shapes (bf16,
causal, NHD pages of 16 tokens in a random order):
  limit        a bf16 8192^3 matrix product through torch (the tensor cores' rate on this card today)
  flash        torch SDPA, flash backend, dense [B, H, L, D] K/V with GQA
  cudnn        torch SDPA, cuDNN backend, dense (K/V repeated to Hq heads if its GQA path refuses)
  fi-fa2/fa3   FlashInfer BatchPrefillWithPagedKVCacheWrapper on the paged cache, backend fa2 (mma.sync, as
               ours) and fa3 (wgmma/TMA, what 'auto' picks on Hopper)
and FlashInfer on the mixed batch (one call). Timing: time_calls of peer_decode.py (median over replays of
a CUDA graph of `iters` calls; 'e' marks eager timing where capture fails).
A FlashInfer backend is tried only if flashinfer_prefill_warmup.py left its marker (JIT compiled in time).
Usage: python3 peer_prefill.py ours.csv [--md table.md] [--ready DIR] [--iters 10] [--reps 10]
"""
import argparse
import csv
import os
import sys
import traceback

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_decode import import_flashinfer, ratio, time_calls, why  # noqa: E402

DT = torch.bfloat16
DEV = "cuda"


def matmul_tflops(iters, reps):
    n = 8192
    a = torch.empty(n, n, dtype=DT, device=DEV).uniform_(-1, 1)
    b = torch.empty(n, n, dtype=DT, device=DEV).uniform_(-1, 1)
    t, _ = time_calls([lambda: a @ b], iters, reps)
    return 2 * n**3 / (t * 1e-6) / 1e12


def paged(B, ctxs, hkv, d, bs, seed):
    """K/V caches and FlashInfer's page metadata for sequences of the given lengths, pages shuffled."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    pages = [(c + bs - 1) // bs for c in ctxs]
    n = sum(pages)
    kc = torch.empty(n, bs, hkv, d, dtype=DT, device=DEV).uniform_(-1, 1)
    vc = torch.empty_like(kc).uniform_(-1, 1)
    indices = torch.randperm(n, generator=g).to(DEV, torch.int32)
    indptr = torch.tensor([0] + list(torch.tensor(pages).cumsum(0)), dtype=torch.int32, device=DEV)
    last = torch.tensor([c - (p - 1) * bs for c, p in zip(ctxs, pages)], dtype=torch.int32, device=DEV)
    return kc, vc, indptr, indices, last


def flashinfer_wrapper(fi, backend, qo_indptr, indptr, indices, last, hq, hkv, d, bs):
    """A BatchPrefillWithPagedKVCacheWrapper planned for causal prefill over the given pages."""
    workspace = torch.zeros(256 << 20, dtype=torch.uint8, device=DEV)
    w = fi.BatchPrefillWithPagedKVCacheWrapper(workspace, "NHD", backend=backend)
    w.plan(qo_indptr, indptr, indices, last, hq, hkv, d, bs, causal=True, q_data_type=DT, kv_data_type=DT)
    return w


def flashinfer_call(fi, backend, q_lens, ctxs, hq, hkv, d, bs, seed):
    kc, vc, indptr, indices, last = paged(len(ctxs), ctxs, hkv, d, bs, seed)
    qo = torch.tensor([0] + list(torch.tensor(q_lens).cumsum(0)), dtype=torch.int32, device=DEV)
    q = torch.empty(int(qo[-1]), hq, d, dtype=DT, device=DEV).uniform_(-1, 1)
    out = torch.empty_like(q)
    w = flashinfer_wrapper(fi, backend, qo, indptr, indices, last, hq, hkv, d, bs)
    return lambda: w.run(q, (kc, vc), out=out)


def measure_prefill(B, L, hq, hkv, d, bs, args, fi, backends):
    res = {}
    q = torch.empty(B, hq, L, d, dtype=DT, device=DEV).uniform_(-1, 1)
    k = torch.empty(B, hkv, L, d, dtype=DT, device=DEV).uniform_(-1, 1)
    v = torch.empty_like(k).uniform_(-1, 1)
    for name, backend in (("flash", torch.nn.attention.SDPBackend.FLASH_ATTENTION),
                          ("cudnn", torch.nn.attention.SDPBackend.CUDNN_ATTENTION)):
        for gqa in (True, False):
            kk, vv = (k, v) if gqa else (k.repeat_interleave(hq // hkv, 1), v.repeat_interleave(hq // hkv, 1))

            def f(kk=kk, vv=vv, backend=backend, gqa=gqa):
                with torch.nn.attention.sdpa_kernel(backend):
                    return F.scaled_dot_product_attention(q, kk, vv, is_causal=True, enable_gqa=gqa)
            try:
                t, method = time_calls([f], args.iters, args.reps)
                res[name] = (t, method + ("" if gqa else " rep"))
                break
            except Exception as ex:
                res[name] = why(ex)
    del q, k, v
    for backend in backends:
        try:
            res["fi-" + backend] = time_calls(
                [flashinfer_call(fi, backend, [L] * B, [L] * B, hq, hkv, d, bs, B * 31 + L)], args.iters, args.reps)
        except Exception as ex:
            traceback.print_exc(limit=2)
            res["fi-" + backend] = why(ex)
    torch.cuda.empty_cache()
    return res


def cell_us(v):
    if isinstance(v, tuple):
        return f"{v[0]:.1f}" + ("" if v[1] == "graph" else f" ({v[1]})")
    return f"n/a ({v})"


def tflops(v, flops):
    return f"{flops / (v[0] * 1e-6) / 1e12:.0f}" if isinstance(v, tuple) else "-"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ours_csv")
    ap.add_argument("--md")
    ap.add_argument("--ready", help="directory with the warm-up's markers fa2.ready / fa3.ready")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args()
    rows = list(csv.DictReader(open(args.ours_csv)))
    props = torch.cuda.get_device_properties(0)
    fi, fi_error = import_flashinfer()
    fi_version = fi.__version__ if fi else f"not available ({fi_error})"
    backends = [b for b in ("fa2", "fa3")
                if fi is not None and (args.ready is None or os.path.exists(os.path.join(args.ready, b + ".ready")))]
    limit = matmul_tflops(args.iters, args.reps)
    head = (f"device {props.name} ({props.multi_processor_count} SMs), torch {torch.__version__}, "
            f"cuDNN {torch.backends.cudnn.version()}, flashinfer {fi_version} (backends timed: {backends or 'none'})\n"
            f"limit: bf16 8192^3 matmul through torch = {limit:.0f} TFLOP/s; causal flops = 4*B*L^2*Hq*D/2\n")
    print(head, flush=True)
    lines = ["| B x L (Hq=32 Hkv=8 D=128 bf16, bs 16) | ours µs | ours TFLOP/s | % of matmul | flash SDPA µs (TF/s) "
             "| cuDNN SDPA µs (TF/s) | FlashInfer fa2 µs (TF/s) | FlashInfer fa3 µs (TF/s) | flash/ours | fa2/ours "
             "| fa3/ours |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    mixed = []
    for row in rows:
        if row["kind"] != "prefill":
            mixed.append(row)
            continue
        B, L, hq, hkv, d, bs = (int(row[k]) for k in ("B", "L", "Hq", "Hkv", "D", "bs"))
        flops, ours = float(row["flops"]), float(row["ours_us"])
        res = measure_prefill(B, L, hq, hkv, d, bs, args, fi, backends)
        ours_tf = flops / (ours * 1e-6) / 1e12

        def both(key):
            v = res.get(key, "not run")
            return f"{cell_us(v)} ({tflops(v, flops)})"
        line = (f"| {B} x {L} | {ours:.1f} | {ours_tf:.0f} | {100 * ours_tf / limit:.0f}% | {both('flash')} "
                f"| {both('cudnn')} | {both('fi-fa2')} | {both('fi-fa3')} | {ratio(res.get('flash'), ours)} "
                f"| {ratio(res.get('fi-fa2'), ours)} | {ratio(res.get('fi-fa3'), ours)} |")
        lines.append(line)
        print(line, flush=True)

    mixed_lines = []
    if mixed:
        B, ctx = int(mixed[0]["B"]), int(mixed[0]["L"])
        hq, hkv, d, bs = (int(mixed[0][k]) for k in ("Hq", "Hkv", "D", "bs"))
        chunks = 2
        q_lens = [1] * (B - chunks) + [512] * chunks
        mixed_lines = ["| mixed batch: 200 decode rows + 2 chunks of 512, context 2048 | µs |", "|---|---|"]
        mixed_lines += [f"| ours: {r['note']} | {float(r['ours_us']):.1f} |" for r in mixed]
        t = {r["note"]: float(r["ours_us"]) for r in mixed}
        if "decode part" in t and "prefill part" in t:
            mixed_lines.append(f"| ours: two separate calls (decode part + prefill part) | "
                               f"{t['decode part'] + t['prefill part']:.1f} |")
        for backend in backends:
            try:
                v = time_calls([flashinfer_call(fi, backend, q_lens, [ctx] * B, hq, hkv, d, bs, 5)], args.iters, args.reps)
            except Exception as ex:
                v = why(ex)
            mixed_lines.append(f"| FlashInfer {backend}, one call | {cell_us(v)} |")
        for line in mixed_lines:
            print(line, flush=True)
    table = head + "\n" + "\n".join(lines) + "\n\n" + "\n".join(mixed_lines) + "\n"
    if args.md:
        open(args.md, "w").write(table)
    print("\n" + table)


if __name__ == "__main__":
    sys.exit(main())
