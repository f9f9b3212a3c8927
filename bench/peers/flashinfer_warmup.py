"""Compiles (JIT) FlashInfer's paged decode kernels for one head dim ahead of the timed run, so that the
compile can overlap other work. Usage: python3 flashinfer_warmup.py HEAD_DIM"""
import sys
import time

import torch

t0 = time.time()
try:
    import flashinfer
except Exception as ex:
    print(f"flashinfer import failed: {type(ex).__name__}: {ex}")
    sys.exit(1)
d = int(sys.argv[1])
B, hq, hkv, bs, pages = 2, 32, 8, 16, 4
kc = torch.randn(B * pages, bs, hkv, d, dtype=torch.bfloat16, device="cuda")
vc = torch.randn_like(kc)
w = flashinfer.BatchDecodeWithPagedKVCacheWrapper(torch.zeros(128 << 20, dtype=torch.uint8, device="cuda"), "NHD")
w.plan(torch.arange(B + 1, dtype=torch.int32, device="cuda") * pages, torch.arange(B * pages, dtype=torch.int32, device="cuda"),
       torch.full((B,), bs, dtype=torch.int32, device="cuda"), hq, hkv, d, bs, data_type=torch.bfloat16,
       q_data_type=torch.bfloat16)
out = w.run(torch.randn(B, hq, d, dtype=torch.bfloat16, device="cuda"), (kc, vc))
torch.cuda.synchronize()
print(f"flashinfer {flashinfer.__version__} decode D={d} ready in {time.time() - t0:.0f} s; out finite: {bool(out.isfinite().all())}")
