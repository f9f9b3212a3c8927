"""Joins a bench_decode_cuda CSV with the peers CSV that peer_decode.py wrote in the same run into the
markdown table of bench/results/cuda_decode.md.
Usage: python3 join_decode_table.py ours.csv peers.csv [--title TEXT]"""
import argparse
import csv
import math

PEERS = ("cudnn", "flash", "gather+sdpa", "flashinfer")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ours_csv")
    ap.add_argument("peers_csv")
    args = ap.parse_args()
    peers = {}
    for r in csv.DictReader(open(args.peers_csv)):
        key = tuple(r[k] for k in ("B", "ctx", "Hq", "Hkv", "D", "bs"))
        peers.setdefault(key, {})[r["peer"]] = (float(r["us"]), r["method_or_error"])
    print("| shape (B, ctx, Hq, Hkv, D, bs) | KV MB | floor µs | ours µs | % floor | cuDNN SDPA µs | flash SDPA µs "
          "| gather+SDPA µs | FlashInfer µs | cuDNN / ours | FlashInfer / ours |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in csv.DictReader(open(args.ours_csv)):
        key = tuple(r[k] for k in ("B", "ctx", "Hq", "Hkv", "D", "bs"))
        p = peers.get(key, {})
        ours, floor = float(r["ours_us"]), float(r["floor_us"])

        def cell(name):
            t, note = p.get(name, (math.nan, "not measured"))
            if math.isnan(t):
                return f"n/a ({note})"
            return f"{t:.1f}" + ("" if note == "graph" else " (eager)")

        def ratio(name):
            t = p.get(name, (math.nan, ""))[0]
            return "-" if math.isnan(t) else f"{t / ours:.2f}x"
        print(f"| {r['group']}: ({', '.join(key)}) | {float(r['kv_bytes']) / 1e6:.1f} | {floor:.1f} | {ours:.1f} "
              f"| {100 * floor / ours:.1f}% | " + " | ".join(cell(n) for n in PEERS) + f" | {ratio('cudnn')} | {ratio('flashinfer')} |")


if __name__ == "__main__":
    main()
