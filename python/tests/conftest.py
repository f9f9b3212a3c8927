"""Shared helpers of the Python tests: random paged problems in numpy and an attention oracle written
here, independent of the C++ reference (gather each sequence's pages, then dense softmax attention)."""

from __future__ import annotations

import dataclasses
import math

import ml_dtypes
import numpy as np
import pytest

DTYPES = {"float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16}
# |out - ref| <= atol + rtol * |ref|, for inputs already rounded to the dtype.
TOLERANCE = {"float32": (2e-5, 1e-4), "float16": (2e-3, 5e-3), "bfloat16": (1e-2, 2e-2)}


@dataclasses.dataclass
class Problem:
    query: np.ndarray
    key_cache: np.ndarray
    value_cache: np.ndarray
    block_tables: np.ndarray
    context_lens: np.ndarray
    query_start: np.ndarray | None


def make_problem(rng, context_lens, q_lens=None, hq=6, hkv=2, d=32, block_size=8, dtype="float32", spare=3):
    """Blocks are a shuffled pool; table entries past the live blocks hold -1."""
    dt = DTYPES[dtype]
    b = len(context_lens)
    live = [-(-c // block_size) for c in context_lens]
    num_blocks = sum(live) + spare
    ids = rng.permutation(num_blocks).astype(np.int32)
    width = max(live + [1])
    tables = np.full((b, width), -1, np.int32)
    used = 0
    for i, n in enumerate(live):
        tables[i, :n] = ids[used : used + n]
        used += n
    t = sum(q_lens) if q_lens is not None else b
    q = rng.uniform(-1, 1, (t, hq, d)).astype(dt)
    kc = rng.uniform(-1, 1, (num_blocks, block_size, hkv, d)).astype(dt)
    vc = rng.uniform(-1, 1, (num_blocks, block_size, hkv, d)).astype(dt)
    qs = None if q_lens is None else np.concatenate([[0], np.cumsum(q_lens)]).astype(np.int32)
    return Problem(q, kc, vc, tables, np.asarray(context_lens, np.int32), qs)


def reference_attention(p: Problem, scale=None, causal=True) -> np.ndarray:
    q = p.query.astype(np.float64)
    kc = p.key_cache.astype(np.float64)
    vc = p.value_cache.astype(np.float64)
    t, hq, d = q.shape
    block_size, hkv = kc.shape[1], kc.shape[2]
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    out = np.zeros((t, hq, d))
    qs = p.query_start if p.query_start is not None else np.arange(len(p.context_lens) + 1)
    for b, length in enumerate(p.context_lens):
        rows = slice(qs[b], qs[b + 1])
        q_len = qs[b + 1] - qs[b]
        if q_len == 0:
            continue
        pos = np.arange(length)
        slots = p.block_tables[b][pos // block_size] * block_size + pos % block_size
        k = kc.reshape(-1, hkv, d)[slots]  # [L, Hkv, D]
        v = vc.reshape(-1, hkv, d)[slots]
        group = hq // hkv
        k = np.repeat(k, group, axis=1)  # [L, Hq, D]
        v = np.repeat(v, group, axis=1)
        s = np.einsum("qhd,lhd->hql", q[rows], k) * scale  # [Hq, Q, L]
        if causal:
            row_pos = length - q_len + np.arange(q_len)
            s = np.where(pos[None, None, :] > row_pos[None, :, None], -np.inf, s)
        s = np.exp(s - s.max(axis=-1, keepdims=True))
        s /= s.sum(axis=-1, keepdims=True)
        out[rows] = np.einsum("hql,lhd->qhd", s, v)
    return out


def assert_close(out, ref, dtype):
    atol, rtol = TOLERANCE[dtype]
    got = np.asarray(out).astype(np.float64)
    bad = np.abs(got - ref) > atol + rtol * np.abs(ref)
    assert not np.isnan(got).any(), "NaN in output"
    assert not bad.any(), f"{bad.sum()} of {bad.size} elements off; max error {np.abs(got - ref).max():.3g}"


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
