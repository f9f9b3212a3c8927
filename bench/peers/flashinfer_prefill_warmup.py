"""Compiles (JIT) FlashInfer's paged prefill module for one backend (fa2 or fa3) at the benchmark's
configuration (bf16, D=128, pages of 16) ahead of the timed run, so that the compile overlaps other work;
on success leaves BACKEND.ready in MARKER_DIR for peer_prefill.py.
Usage: python3 flashinfer_prefill_warmup.py BACKEND MARKER_DIR"""
import os
import sys
import time

import torch

t0 = time.time()
backend, marker_dir = sys.argv[1], sys.argv[2]
try:
    import flashinfer
except Exception as ex:
    print(f"flashinfer import failed: {type(ex).__name__}: {ex}")
    sys.exit(1)
hq, hkv, d, bs, pages = 32, 8, 128, 16, 4
kc = torch.randn(pages, bs, hkv, d, dtype=torch.bfloat16, device="cuda")
vc = torch.randn_like(kc)
w = flashinfer.BatchPrefillWithPagedKVCacheWrapper(torch.zeros(128 << 20, dtype=torch.uint8, device="cuda"), "NHD",
                                                   backend=backend)
w.plan(torch.tensor([0, bs * pages], dtype=torch.int32, device="cuda"),
       torch.tensor([0, pages], dtype=torch.int32, device="cuda"), torch.arange(pages, dtype=torch.int32, device="cuda"),
       torch.tensor([bs], dtype=torch.int32, device="cuda"), hq, hkv, d, bs, causal=True,
       q_data_type=torch.bfloat16, kv_data_type=torch.bfloat16)
out = w.run(torch.randn(bs * pages, hq, d, dtype=torch.bfloat16, device="cuda"), (kc, vc))
torch.cuda.synchronize()
ok = bool(out.isfinite().all())
print(f"flashinfer {flashinfer.__version__} prefill {backend} ready in {time.time() - t0:.0f} s; out finite: {ok}")
if ok:
    open(os.path.join(marker_dir, backend + ".ready"), "w").write("ok\n")
