"""pagedattn.paged_attention and write_kv on numpy arrays against the numpy oracle of conftest.py."""

import numpy as np
import pytest
from conftest import DTYPES, assert_close, make_problem, reference_attention

import pagedattn


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("hq,hkv", [(4, 4), (6, 2), (9, 3), (8, 1), (16, 2)])
def test_decode_matches_oracle(rng, dtype, hq, hkv):
    p = make_problem(rng, [1, 7, 8, 9, 40], hq=hq, hkv=hkv, dtype=dtype)
    out = pagedattn.paged_attention(p.query, p.key_cache, p.value_cache, p.block_tables, p.context_lens)
    assert type(out) is np.ndarray and out.dtype == p.query.dtype and out.shape == p.query.shape
    assert_close(out, reference_attention(p), dtype)


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_varlen_prefill_and_chunks_match_oracle(rng, dtype):
    # whole prompt, a chunk on top of a cache, a decode row and an empty row in one call
    p = make_problem(rng, [20, 33, 9, 4], q_lens=[20, 7, 1, 0], hq=9, hkv=3, d=64, block_size=4, dtype=dtype)
    out = pagedattn.paged_attention(
        p.query, p.key_cache, p.value_cache, p.block_tables, p.context_lens, query_start=p.query_start
    )
    assert_close(out, reference_attention(p), dtype)


def test_scale_and_non_causal(rng):
    p = make_problem(rng, [12, 5], q_lens=[3, 5])
    out = pagedattn.paged_attention(
        p.query, p.key_cache, p.value_cache, p.block_tables, p.context_lens,
        query_start=p.query_start, scale=0.3, causal=False,
    )
    assert_close(out, reference_attention(p, scale=0.3, causal=False), "float32")


def test_out_is_written_in_place_and_returned(rng):
    p = make_problem(rng, [10, 3])
    out = np.full(p.query.shape, np.nan, np.float32)
    result = pagedattn.paged_attention(p.query, p.key_cache, p.value_cache, p.block_tables, p.context_lens, out=out)
    assert result is out
    assert_close(out, reference_attention(p), "float32")


def test_strided_query_rows_are_read_without_copy(rng):
    p = make_problem(rng, [10, 3], hq=4, hkv=2, d=16)
    fused = np.zeros((2, 4, 48), np.float32)  # a [T, H, 3D] QKV buffer
    fused[:, :, :16] = p.query
    q = fused[:, :, :16]
    assert not q.flags.c_contiguous
    out = pagedattn.paged_attention(q, p.key_cache, p.value_cache, p.block_tables, p.context_lens)
    assert_close(out, reference_attention(p), "float32")


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_write_kv_then_attend(rng, dtype):
    dt = DTYPES[dtype]
    num_blocks, bs, hkv, d = 6, 4, 2, 8
    kc = np.zeros((num_blocks, bs, hkv, d), dt)
    vc = np.zeros_like(kc)
    k = rng.uniform(-1, 1, (5, hkv, d)).astype(dt)
    v = rng.uniform(-1, 1, (5, hkv, d)).astype(dt)
    slots = np.array([9, -1, 0, 23, 4], np.int32)
    assert pagedattn.write_kv(k, v, kc, vc, slots) is None
    flat_k, flat_v = kc.reshape(-1, hkv, d), vc.reshape(-1, hkv, d)
    for row, slot in enumerate(slots):
        if slot >= 0:
            np.testing.assert_array_equal(flat_k[slot], k[row])
            np.testing.assert_array_equal(flat_v[slot], v[row])
    untouched = np.setdiff1d(np.arange(num_blocks * bs), slots)
    assert not flat_k[untouched].astype(np.float32).any()
    assert not flat_v[untouched].astype(np.float32).any()


def test_zero_sized_batch(rng):
    kc = np.zeros((2, 4, 1, 8), np.float32)
    out = pagedattn.paged_attention(
        np.zeros((0, 2, 8), np.float32), kc, kc, np.zeros((0, 3), np.int32), np.zeros(0, np.int32)
    )
    assert out.shape == (0, 2, 8)
