"""Every bad argument a caller can pass gives ValueError / TypeError with the C++ message, never a crash."""

import numpy as np
import pytest
from conftest import make_problem

import pagedattn


@pytest.fixture
def p(rng):
    return make_problem(rng, [9, 17], q_lens=[2, 3], hq=4, hkv=2, d=8, block_size=4)


def call(p, **changes):
    args = dict(
        query=p.query, key_cache=p.key_cache, value_cache=p.value_cache, block_tables=p.block_tables,
        context_lens=p.context_lens, query_start=p.query_start,
    )
    args.update(changes)
    return pagedattn.paged_attention(
        args.pop("query"), args.pop("key_cache"), args.pop("value_cache"), args.pop("block_tables"),
        args.pop("context_lens"), **args,
    )


CASES = [
    (dict(query="rank2"), ValueError, "query must have rank 3"),
    (dict(block_tables="int64"), TypeError, "block_tables must be int32, got int64"),
    (dict(context_lens="int64"), TypeError, "context_lens must be int32, got int64"),
    (dict(query_start="int64"), TypeError, "query_start must be int32, got int64"),
    (dict(key_cache="float64"), TypeError, "key_cache must be float32, got float64"),
    (dict(query="uint16"), TypeError, "query: unsupported dtype uint16"),
    (dict(query="int8"), TypeError, "query: unsupported dtype int8"),
    (dict(key_cache="noncontiguous"), ValueError, "key_cache must be contiguous"),
    (dict(query="negative_stride"), ValueError, "query has a negative stride"),
    (dict(query="head_dim_stride"), ValueError, "query must be contiguous in its last dimension"),
    (dict(block_tables="out_of_range"), ValueError, "block_tables[1][2] = 1000: expected a block id in [0, "),
    (dict(block_tables="negative_id"), ValueError, "block_tables[0][0] = -1: expected a block id"),
    (dict(context_lens="too_long"), ValueError, "context_lens[1] = 100 needs 25 blocks of 4 tokens"),
    (dict(context_lens="negative"), ValueError, "context_lens[0] must be >= 0, got -1"),
    (dict(context_lens="short"), ValueError, "sequence 0 has 2 query rows but context_lens[0] = 1"),
    (dict(query_start="decreasing"), ValueError, "query_start must be non-decreasing"),
    (dict(query_start="wrong_total"), ValueError, "query_start[2] must equal the number of query rows 5, got 4"),
    (dict(query_start="missing"), ValueError, "without query_start every sequence has one query row"),
    (dict(query="heads_not_multiple"), ValueError, "query heads (3) must be a multiple of key/value heads (2)"),
    (dict(value_cache="other_shape"), ValueError, "value_cache shape"),
    (dict(query="list"), TypeError, "expected a numpy array or a torch tensor"),
]


def corrupt(p, name, how):
    v = getattr(p, name) if name != "query_start" else p.query_start
    if how == "rank2":
        return v[0]
    if how in ("int64", "float64"):
        return v.astype(how)
    if how == "uint16":
        return v.astype(np.uint16)
    if how == "int8":
        return v.astype(np.int8)
    if how == "noncontiguous":
        return np.asfortranarray(v)
    if how == "negative_stride":
        return v[::-1]
    if how == "head_dim_stride":
        return np.repeat(v, 2, axis=-1)[..., ::2]
    if how == "out_of_range":
        v = v.copy()
        v[1, 2] = 1000
        return v
    if how == "negative_id":
        v = v.copy()
        v[0, 0] = -1
        return v
    if how == "too_long":
        return np.array([9, 100], np.int32)
    if how == "negative":
        return np.array([-1, 17], np.int32)
    if how == "short":
        return np.array([1, 17], np.int32)
    if how == "decreasing":
        return np.array([0, 6, 5], np.int32)
    if how == "wrong_total":
        return np.array([0, 2, 4], np.int32)
    if how == "missing":
        return None
    if how == "heads_not_multiple":
        return v[:, :3]
    if how == "other_shape":
        return v[:-1].copy()
    if how == "list":
        return v.tolist()
    raise AssertionError(how)


@pytest.mark.parametrize("change,error,message", CASES, ids=[f"{k}-{v}" for c, _, _ in CASES for k, v in c.items()])
def test_bad_argument(p, change, error, message):
    (name, how), = change.items()
    with pytest.raises(error) as info:
        call(p, **{name: corrupt(p, name, how)})
    assert message in str(info.value)


def test_bad_arguments_leave_out_untouched(p):
    out = np.full(p.query.shape, 7.0, np.float32)
    with pytest.raises(ValueError):
        pagedattn.paged_attention(
            p.query, p.key_cache, p.value_cache, p.block_tables, np.array([9, 100], np.int32),
            query_start=p.query_start, out=out,
        )
    assert (out == 7.0).all()


def test_out_of_another_shape(p):
    with pytest.raises(ValueError, match=r"out shape \[4, 4, 8\] must equal query shape \[5, 4, 8\]"):
        call(p, out=np.empty((4, 4, 8), np.float32))


def test_write_kv_errors(rng):
    kc = np.zeros((2, 4, 1, 8), np.float32)
    k = np.zeros((3, 1, 8), np.float32)
    with pytest.raises(ValueError, match=r"slot_mapping\[2\] = 8: expected -1 or a slot in \[0, 8\)"):
        pagedattn.write_kv(k, k, kc, kc.copy(), np.array([0, -1, 8], np.int32))
    with pytest.raises(TypeError, match="slot_mapping must be int32, got int64"):
        pagedattn.write_kv(k, k, kc, kc.copy(), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"slot_mapping has 2 entries but key has 3 rows"):
        pagedattn.write_kv(k, k, kc, kc.copy(), np.array([0, 1], np.int32))
    assert not kc.any()
