"""Peers of our CUDA paged decode, measured in the same run as bench_decode_cuda, joined into one table.

Reads the CSV that bench_decode_cuda wrote (its shapes, our times, the copy bandwidth and floor) and
times, on the same shapes (bf16, NHD pages, random page order):
  cudnn        torch SDPA, cuDNN backend, on dense [B, Hkv, ctx, D] K/V (no paging at all)
  flash        torch SDPA, flash backend, dense
  gather+sdpa  gather the pages through the block table into dense K/V, then SDPA (default backend)
  flashinfer   FlashInfer BatchDecodeWithPagedKVCacheWrapper on the paged cache
Each timing is the median over replays of a CUDA graph of `iters` calls cycling over enough cache copies
to exceed the L2 several times (the method bench_decode_cuda uses); a peer that cannot be captured is
timed eagerly (marked 'e'), one that cannot run at all shows why.
Usage: python3 peer_decode.py ours.csv [--md table.md] [--csv peers.csv] [--iters 20] [--reps 15]
(join_decode_table.py joins the peers CSV with another bench_decode_cuda CSV of the same run.)
"""
import argparse
import csv
import math
import sys
import traceback

import torch
import torch.nn.functional as F

DT = torch.bfloat16
DEV = "cuda"


def replayer(fns, iters):
    """(once, method): once() runs the calls fns[i % len(fns)], i < iters, replayed from a CUDA graph, or
    eagerly (method 'eager') when they cannot be captured."""
    for f in fns:
        f()
    torch.cuda.synchronize()
    try:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for f in fns:
                f()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for i in range(iters):
                fns[i % len(fns)]()
        graph.replay()
        return graph.replay, "graph"
    except Exception:  # not capturable: time back-to-back eager calls instead
        torch.cuda.synchronize()

        def once():
            for i in range(iters):
                fns[i % len(fns)]()
        return once, "eager"


def time_once(once, iters):
    """Microseconds per call of one once() (iters calls)."""
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    once()
    stop.record()
    stop.synchronize()
    return start.elapsed_time(stop) * 1e3 / iters


def time_calls(fns, iters, reps):
    """(median us per call, method) for calls fns[i % len(fns)]."""
    once, method = replayer(fns, iters)
    once()
    times = sorted(time_once(once, iters) for _ in range(reps))
    return times[len(times) // 2], method


def copy_bandwidth():
    n = 1 << 30
    a = torch.empty(n, dtype=DT, device=DEV).uniform_(-1, 1)
    b = torch.empty_like(a)
    t, _ = time_calls([lambda: b.copy_(a)], 4, 10)
    return 2 * a.numel() * a.element_size() / (t * 1e-6)


def why(ex):
    return f"{type(ex).__name__}: {str(ex).splitlines()[0][:90] if str(ex) else ''}"


def import_flashinfer():
    try:
        import flashinfer
        return flashinfer, None
    except Exception as ex:
        return None, why(ex)


def measure(row, iters, reps, flashinfer, fi_error):
    B, ctx, hq, hkv, d, bs = (int(row[k]) for k in ("B", "ctx", "Hq", "Hkv", "D", "bs"))
    kv_bytes = float(row["kv_bytes"])
    l2 = torch.cuda.get_device_properties(0).L2_cache_size
    copies = int(min(8, max(1, math.ceil(4 * l2 / kv_bytes))))
    gqa = hq != hkv
    res = {}
    qs = [torch.empty(B, hq, 1, d, dtype=DT, device=DEV).uniform_(-1, 1) for _ in range(copies)]

    # Dense K/V.
    dense = [(torch.empty(B, hkv, ctx, d, dtype=DT, device=DEV).uniform_(-1, 1),
              torch.empty(B, hkv, ctx, d, dtype=DT, device=DEV).uniform_(-1, 1)) for _ in range(copies)]
    for name, backend in (("cudnn", torch.nn.attention.SDPBackend.CUDNN_ATTENTION),
                          ("flash", torch.nn.attention.SDPBackend.FLASH_ATTENTION)):
        def make(c, backend=backend):
            def f():
                with torch.nn.attention.sdpa_kernel(backend):
                    return F.scaled_dot_product_attention(qs[c], dense[c][0], dense[c][1], enable_gqa=gqa)
            return f
        try:
            res[name] = time_calls([make(c) for c in range(copies)], iters, reps)
        except Exception as ex:
            res[name] = why(ex)
    del dense
    torch.cuda.empty_cache()

    # Paged K/V: [pages, bs, Hkv, D], one random page order shared by the copies (like layers sharing a table).
    pages_per_seq = (ctx + bs - 1) // bs
    n_pages = B * pages_per_seq
    caches = [(torch.empty(n_pages, bs, hkv, d, dtype=DT, device=DEV).uniform_(-1, 1),
               torch.empty(n_pages, bs, hkv, d, dtype=DT, device=DEV).uniform_(-1, 1)) for _ in range(copies)]
    table = torch.randperm(n_pages, device=DEV, dtype=torch.int32).view(B, pages_per_seq)

    def make_gather(c):
        def f():
            k = caches[c][0][table].view(B, pages_per_seq * bs, hkv, d)[:, :ctx].transpose(1, 2)
            v = caches[c][1][table].view(B, pages_per_seq * bs, hkv, d)[:, :ctx].transpose(1, 2)
            return F.scaled_dot_product_attention(qs[c], k, v, enable_gqa=gqa)
        return f
    try:
        res["gather+sdpa"] = time_calls([make_gather(c) for c in range(copies)], iters, reps)
    except Exception as ex:
        res["gather+sdpa"] = why(ex)

    if flashinfer is None:
        res["flashinfer"] = fi_error
    else:
        try:
            indptr = torch.arange(B + 1, device=DEV, dtype=torch.int32) * pages_per_seq
            indices = table.flatten().contiguous()
            last = torch.full((B,), ctx - (pages_per_seq - 1) * bs, device=DEV, dtype=torch.int32)
            workspace = torch.zeros(128 << 20, dtype=torch.uint8, device=DEV)
            wrapper = flashinfer.BatchDecodeWithPagedKVCacheWrapper(
                workspace, "NHD", use_cuda_graph=True, paged_kv_indptr_buffer=indptr.clone(),
                paged_kv_indices_buffer=indices.clone(), paged_kv_last_page_len_buffer=last.clone())
            wrapper.plan(indptr, indices, last, hq, hkv, d, bs, pos_encoding_mode="NONE", data_type=DT,
                         q_data_type=DT)
            q3 = [q.view(B, hq, d) for q in qs]
            outs = [torch.empty(B, hq, d, dtype=DT, device=DEV) for _ in range(copies)]

            def make_fi(c):
                return lambda: wrapper.run(q3[c], caches[c], out=outs[c])
            res["flashinfer"] = time_calls([make_fi(c) for c in range(copies)], iters, reps)
        except Exception as ex:
            traceback.print_exc(limit=3)
            res["flashinfer"] = why(ex)
    del caches
    torch.cuda.empty_cache()
    return res


def cell(v):
    if isinstance(v, tuple):
        t, method = v
        return f"{t:.1f}" + ("" if method == "graph" else " e")
    return f"n/a ({v})"


def ratio(peer, ours):
    return f"{peer[0] / ours:.2f}x" if isinstance(peer, tuple) else "-"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ours_csv")
    ap.add_argument("--md")
    ap.add_argument("--csv", help="the peers' times, for join_decode_table.py")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--reps", type=int, default=15)
    args = ap.parse_args()
    rows = list(csv.DictReader(open(args.ours_csv)))
    props = torch.cuda.get_device_properties(0)
    fi, fi_error = import_flashinfer()
    fi_version = getattr(fi, "__version__", "not available") if fi else f"not available ({fi_error})"
    bw = copy_bandwidth()
    head = (f"device {props.name} ({props.multi_processor_count} SMs), torch {torch.__version__}, "
            f"flashinfer {fi_version}, cuDNN {torch.backends.cudnn.version()}\n"
            f"copy bandwidth: {float(rows[0]['copy_bw']) / 1e12:.3f} TB/s (bench_decode_cuda), "
            f"{bw / 1e12:.3f} TB/s (torch); floor = K+V bytes / the first\n")
    lines = ["| shape (B, ctx, Hq, Hkv, D, bs) | KV MB | floor µs | ours µs | % floor | ours no-plan µs "
             "| cuDNN SDPA µs | flash SDPA µs | gather+SDPA µs | FlashInfer µs | cuDNN/ours | FlashInfer/ours |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    print(head, flush=True)
    peers_csv = open(args.csv, "w") if args.csv else None
    if peers_csv:
        peers_csv.write("B,ctx,Hq,Hkv,D,bs,peer,us,method_or_error\n")
    for row in rows:
        res = measure(row, args.iters, args.reps, fi, fi_error)
        if peers_csv:
            key = ",".join(row[k] for k in ("B", "ctx", "Hq", "Hkv", "D", "bs"))
            for peer, v in res.items():
                t, note = (v[0], v[1]) if isinstance(v, tuple) else (float("nan"), v.replace(",", ";"))
                peers_csv.write(f"{key},{peer},{t:.3f},{note}\n")
            peers_csv.flush()
        ours = float(row["ours_us"])
        floor = float(row["floor_us"])
        shape = f"{row['group']}: ({row['B']}, {row['ctx']}, {row['Hq']}, {row['Hkv']}, {row['D']}, {row['bs']})"
        line = (f"| {shape} | {float(row['kv_bytes']) / 1e6:.1f} | {floor:.1f} | {ours:.1f} | {100 * floor / ours:.1f}% "
                f"| {float(row['ours_noplan_us']):.1f} | {cell(res['cudnn'])} | {cell(res['flash'])} "
                f"| {cell(res['gather+sdpa'])} | {cell(res['flashinfer'])} | {ratio(res['cudnn'], ours)} "
                f"| {ratio(res['flashinfer'], ours)} |")
        lines.append(line)
        print(line, flush=True)
    if peers_csv:
        peers_csv.write(f"0,0,0,0,0,0,copy_bw_torch,{bw:.6g},{fi_version}\n")
        peers_csv.close()
    table = head + "\n" + "\n".join(lines) + "\n"
    if args.md:
        open(args.md, "w").write(table)
    print("\n" + table)


if __name__ == "__main__":
    sys.exit(main())
