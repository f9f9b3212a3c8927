"""KvCache + PagedAttention: a decode loop over many sequences equals dense attention over the same
history; the cache operations (fork, rewind, release, prefix reuse, out-of-blocks) and their errors."""

import numpy as np
import pytest
from conftest import DTYPES, TOLERANCE

import pagedattn


def dense_attention(q, k, v, scale):
    """q [Q, Hq, D] at the last Q positions of k, v [L, Hkv, D]; causal; float64."""
    q, k, v = (x.astype(np.float64) for x in (q, k, v))
    group = q.shape[1] // k.shape[1]
    k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
    length, rows = k.shape[0], q.shape[0]
    s = np.einsum("qhd,lhd->hql", q, k) * scale
    mask = np.arange(length)[None, :] > (length - rows + np.arange(rows))[:, None]
    s = np.where(mask[None], -np.inf, s)
    p = np.exp(s - s.max(-1, keepdims=True))
    return np.einsum("hql,lhd->qhd", p / p.sum(-1, keepdims=True), v)


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_decode_loop_equals_dense_attention(rng, dtype):
    dt = DTYPES[dtype]
    hq, hkv, d, layers = 9, 3, 32, 2
    cache = pagedattn.KvCache(num_blocks=40, block_size=4, num_layers=layers, num_kv_heads=hkv, head_dim=d,
                              dtype=dtype)
    attn = pagedattn.PagedAttention(hq, hkv, d)
    prompts = [7, 1, 12]
    seqs = [cache.add_sequence() for _ in prompts]
    history = {s: [([], []) for _ in range(layers)] for s in seqs}  # per layer: K rows, V rows
    new = dict(zip(seqs, prompts))
    for step in range(6):
        for s in seqs:
            assert cache.append(s, new[s]) is not None
        md = cache.metadata(seqs, [new[s] for s in seqs])
        t = sum(new.values())
        for layer in range(layers):
            q = rng.uniform(-1, 1, (t, hq, d)).astype(dt)
            k = rng.uniform(-1, 1, (t, hkv, d)).astype(dt)
            v = rng.uniform(-1, 1, (t, hkv, d)).astype(dt)
            out = attn(q, k, v, cache, md, layer=layer)
            row = 0
            for s in seqs:
                n = new[s]
                ks, vs = history[s][layer]
                ks.extend(k[row : row + n]), vs.extend(v[row : row + n])
                ref = dense_attention(q[row : row + n], np.array(ks), np.array(vs), attn.scale)
                atol, rtol = TOLERANCE[dtype]
                np.testing.assert_allclose(out[row : row + n].astype(np.float64), ref, atol=atol, rtol=rtol)
                row += n
        new = {s: 1 for s in seqs}  # decode from now on
    cache.check_invariants()
    for s in seqs:
        cache.release(s)
    assert cache.num_free_blocks == 40


def test_fork_shares_blocks_and_copies_on_write(rng):
    cache = pagedattn.KvCache(num_blocks=8, block_size=4, num_kv_heads=1, head_dim=4, dtype="float32")
    a = cache.add_sequence()
    cache.append(a, 6)  # one full block + a partial one
    cache.key()[:] = rng.uniform(-1, 1, cache.key().shape)
    b = cache.fork(a)
    assert cache.block_table(b) == cache.block_table(a)
    before = cache.key().copy()
    slots = cache.append(b, 1)  # writes into the shared partial block: b gets a copy
    assert cache.block_table(b)[0] == cache.block_table(a)[0]
    assert cache.block_table(b)[1] != cache.block_table(a)[1]
    np.testing.assert_array_equal(cache.key()[cache.block_table(b)[1]][:2], before[cache.block_table(a)[1]][:2])
    assert slots[0] == cache.block_table(b)[1] * 4 + 2
    cache.check_invariants()


def test_rewind_release_and_out_of_blocks():
    cache = pagedattn.KvCache(num_blocks=3, block_size=4, num_kv_heads=1, head_dim=4, dtype="float32")
    s = cache.add_sequence()
    assert list(cache.append(s, 9)) == [b * 4 + o for b in cache.block_table(s) for o in range(4)][:9]
    assert cache.append(s, 4) is None  # needs a 4th block: refused, nothing changed
    assert cache.num_tokens(s) == 9 and cache.num_free_blocks == 0
    cache.rewind(s, 5)
    assert cache.num_tokens(s) == 4 and cache.num_free_blocks == 2
    cache.release(s)
    assert cache.num_free_blocks == 3
    with pytest.raises(ValueError):
        cache.release(s)


def test_prefix_cache_reuses_full_blocks():
    cache = pagedattn.KvCache(num_blocks=8, block_size=4, num_kv_heads=1, head_dim=4, dtype="float32")
    prompt = list(range(100, 110))
    a = cache.add_sequence()
    cache.append(a, prompt)
    b = cache.add_sequence()
    assert cache.attach_cached_prefix(b, prompt) == 8  # two full blocks
    assert cache.block_table(b) == cache.block_table(a)[:2]
    cache.check_invariants()


def test_budget_sizing():
    per_block = 2 * 3 * 16 * 2 * 64 * 2  # K+V, 3 layers, 16 tokens, 2 heads, D 64, 2 bytes
    assert pagedattn.KvCache.num_blocks_for_budget(10 * per_block + 5, 16, 3, 2, 64, "float16") == 10
    with pytest.raises(ValueError):
        pagedattn.KvCache.num_blocks_for_budget(per_block - 1, 16, 3, 2, 64, "float16")


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        (dict(dtype="int8"), TypeError, "dtype must be 'float32', 'float16' or 'bfloat16', got 'int8'"),
        (dict(device="tpu"), ValueError, "device must be 'cpu', 'cuda' or 'cuda:N', got 'tpu'"),
        (dict(num_blocks=0), ValueError, "num_blocks"),
        (dict(block_size=-4), ValueError, "block_size"),
    ],
)
def test_cache_config_errors(kwargs, error, message):
    args = dict(num_blocks=4, block_size=4, num_kv_heads=1, head_dim=4, dtype="float32")
    args.update(kwargs)
    with pytest.raises(error, match=message):
        pagedattn.KvCache(**args)


def test_module_errors(rng):
    with pytest.raises(ValueError, match=r"num_heads \(6\) must be a multiple of num_kv_heads \(4\)"):
        pagedattn.PagedAttention(6, 4, 8)
    with pytest.raises(ValueError, match="head_dim must be a positive int"):
        pagedattn.PagedAttention(6, 3, 0)
    cache = pagedattn.KvCache(num_blocks=4, block_size=4, num_kv_heads=2, head_dim=8, dtype="float32")
    s = cache.add_sequence()
    cache.append(s, 2)
    md = cache.metadata([s], [2])
    q = np.zeros((2, 4, 8), np.float32)
    k = np.zeros((2, 2, 8), np.float32)
    with pytest.raises(ValueError, match="cache has 2 kv heads of dim 8, expected 1 of dim 8"):
        pagedattn.PagedAttention(4, 1, 8)(q, k, k, cache, md)
    with pytest.raises(ValueError, match=r"layer 1 out of range \[0, 1\)"):
        pagedattn.PagedAttention(4, 2, 8)(q, k, k, cache, md, layer=1)
    with pytest.raises(ValueError, match=r"query must be \[T, 4, 8\], got \[2, 2, 8\]"):
        pagedattn.PagedAttention(4, 2, 8)(k, k, k, cache, md)
    with pytest.raises(ValueError, match="seq_ids has 1 entries but num_new_tokens has 2"):
        cache.metadata([s], [1, 1])
