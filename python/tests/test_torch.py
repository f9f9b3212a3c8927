"""torch tensors on the CPU and on CUDA: zero-copy in and out, the same numbers as the numpy oracle.
Skipped where torch (or, for the CUDA cases, a GPU and a CUDA build) is missing."""

import numpy as np
import pytest
from conftest import DTYPES, assert_close, make_problem, reference_attention

import pagedattn

torch = pytest.importorskip("torch")

TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() and pagedattn.cuda_available() else [])


def to_torch(x, device, dtype=None):
    if x is None:
        return None
    t = torch.from_numpy(np.asarray(x, dtype=np.float32) if dtype is not None else x)
    return (t.to(dtype) if dtype is not None else t).to(device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("varlen", [False, True])
def test_matches_oracle(rng, device, dtype, varlen):
    p = make_problem(rng, [5, 16, 33], q_lens=[5, 1, 8] if varlen else None, hq=9, hkv=3, d=64, block_size=16,
                     dtype=dtype)
    td = TORCH_DTYPES[dtype]
    out = pagedattn.paged_attention(
        to_torch(p.query, device, td), to_torch(p.key_cache, device, td), to_torch(p.value_cache, device, td),
        to_torch(p.block_tables, device), to_torch(p.context_lens, device),
        query_start=to_torch(p.query_start, device),
    )
    assert isinstance(out, torch.Tensor) and out.device.type == device and out.dtype == td
    assert_close(out.float().cpu().numpy(), reference_attention(p), dtype)


@pytest.mark.parametrize("device", DEVICES)
def test_write_kv_writes_in_place(rng, device):
    kc = torch.zeros(4, 8, 2, 16, device=device)
    vc = torch.zeros_like(kc)
    k = torch.randn(3, 2, 16, device=device)
    v = torch.randn(3, 2, 16, device=device)
    slots = torch.tensor([3, -1, 31], dtype=torch.int32, device=device)
    pagedattn.write_kv(k, v, kc, vc, slots)
    flat = kc.view(-1, 2, 16)
    assert torch.equal(flat[3], k[0]) and torch.equal(flat[31], k[2])
    assert torch.equal(vc.view(-1, 2, 16)[31], v[2])
    assert flat.abs().sum(dim=(1, 2)).count_nonzero().item() == 2


def test_cuda_tensor_mixed_with_numpy_is_refused(rng):
    if "cuda" not in DEVICES:
        pytest.skip("no GPU")
    p = make_problem(rng, [5, 9])
    with pytest.raises(ValueError, match="key_cache is on cpu but query is on cuda:0"):
        pagedattn.paged_attention(to_torch(p.query, "cuda", torch.float32), p.key_cache, p.value_cache,
                                  p.block_tables, p.context_lens)


def test_int64_tables_are_refused(rng):
    p = make_problem(rng, [5, 9])
    with pytest.raises(TypeError, match="block_tables must be int32, got int64"):
        pagedattn.paged_attention(torch.from_numpy(p.query), torch.from_numpy(p.key_cache),
                                  torch.from_numpy(p.value_cache), torch.from_numpy(p.block_tables).long(),
                                  torch.from_numpy(p.context_lens))
