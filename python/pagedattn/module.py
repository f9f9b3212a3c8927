"""PagedAttention: the attention of one layer over a KvCache, as a callable module."""

from __future__ import annotations

import math
from typing import Any, Optional

from ._ops import paged_attention, write_kv
from .kv_cache import AttentionMetadata, KvCache


class PagedAttention:
    """Writes this step's K/V into the cache, then attends over each sequence's whole history.

    num_heads query heads share num_kv_heads key/value heads (GQA); scale defaults to 1/sqrt(head_dim).
    """

    def __init__(self, num_heads: int, num_kv_heads: int, head_dim: int, scale: Optional[float] = None) -> None:
        for name, value in (("num_heads", num_heads), ("num_kv_heads", num_kv_heads), ("head_dim", head_dim)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"PagedAttention: {name} must be a positive int, got {value!r}")
        if num_heads % num_kv_heads:
            raise ValueError(
                f"PagedAttention: num_heads ({num_heads}) must be a multiple of num_kv_heads ({num_kv_heads})"
            )
        self.num_heads, self.num_kv_heads, self.head_dim = num_heads, num_kv_heads, head_dim
        self.scale = 1.0 / math.sqrt(head_dim) if scale is None else float(scale)

    def __call__(
        self, query: Any, key: Any, value: Any, cache: KvCache, metadata: AttentionMetadata, layer: int = 0
    ) -> Any:
        """query [T, num_heads, head_dim], key/value [T, num_kv_heads, head_dim] for this step's T tokens
        (laid out as metadata.query_start says); returns the attention output [T, num_heads, head_dim]."""
        if cache.num_kv_heads != self.num_kv_heads or cache.head_dim != self.head_dim:
            raise ValueError(
                f"PagedAttention: cache has {cache.num_kv_heads} kv heads of dim {cache.head_dim}, "
                f"expected {self.num_kv_heads} of dim {self.head_dim}"
            )
        if not 0 <= layer < cache.num_layers:
            raise ValueError(f"PagedAttention: layer {layer} out of range [0, {cache.num_layers})")
        if tuple(query.shape[1:]) != (self.num_heads, self.head_dim):
            raise ValueError(
                f"PagedAttention: query must be [T, {self.num_heads}, {self.head_dim}], got {list(query.shape)}"
            )
        key_cache, value_cache = cache.key(layer), cache.value(layer)
        write_kv(key, value, key_cache, value_cache, metadata.slot_mapping)
        return paged_attention(
            query, key_cache, value_cache, metadata.block_tables, metadata.context_lens,
            query_start=metadata.query_start, scale=self.scale,
        )
