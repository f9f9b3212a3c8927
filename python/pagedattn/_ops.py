"""The functional API: paged_attention and write_kv over numpy arrays and torch tensors, no copies."""

from __future__ import annotations

from typing import Any, Optional

from . import _pagedattn
from ._arrays import empty_like, kernel_arg, stream_of


def paged_attention(
    query: Any,
    key_cache: Any,
    value_cache: Any,
    block_tables: Any,
    context_lens: Any,
    *,
    query_start: Optional[Any] = None,
    scale: Optional[float] = None,
    causal: bool = True,
    out: Optional[Any] = None,
) -> Any:
    """Attention of `query` over K/V read in place from a paged cache.

    query        [T, Hq, D]                        float32, float16 or bfloat16
    key_cache    [num_blocks, block_size, Hkv, D]  same dtype (value_cache likewise)
    block_tables int32 [B, max_blocks_per_seq]     logical block -> physical block per sequence
    context_lens int32 [B]                         tokens in the cache per sequence, new ones included
    query_start  int32 [B+1] or None               sequence b owns rows query_start[b]:query_start[b+1];
                                                   None means one row per sequence (decode, T == B)
    scale        softmax scale, default 1/sqrt(D)
    causal       row j of a sequence with q_len rows sits at position context_len - q_len + j and sees
                 positions up to it; False lets every row see the whole context
    out          optional [T, Hq, D] array to write into (same kind, dtype and device as query)

    Returns `out`, or a new array of the same kind as `query`. Raises ValueError for bad shapes, values or
    devices and TypeError for wrong dtypes; arrays are never copied.
    """
    q = kernel_arg(query, "query")  # first: `out` usually derives from it
    if out is None:
        out = empty_like(query)
    _pagedattn.paged_attention(
        kernel_arg(out, "out"),
        q,
        kernel_arg(key_cache, "key_cache"),
        kernel_arg(value_cache, "value_cache"),
        block_tables,
        context_lens,
        query_start,
        scale,
        causal,
        stream_of(query),
    )
    return out


def write_kv(key: Any, value: Any, key_cache: Any, value_cache: Any, slot_mapping: Any) -> None:
    """Store this step's K/V rows into their cache slots, in place.

    key, value   [T, Hkv, D]
    slot_mapping int32 [T]: slot = block * block_size + offset; -1 skips the row (padding)
    """
    _pagedattn.write_kv(
        kernel_arg(key, "key"),
        kernel_arg(value, "value"),
        kernel_arg(key_cache, "key_cache"),
        kernel_arg(value_cache, "value_cache"),
        slot_mapping,
        stream_of(key),
    )
