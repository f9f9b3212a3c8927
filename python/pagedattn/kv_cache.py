"""KvCache: the K/V memory of every layer plus the block manager that hands out its slots."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from . import _pagedattn
from ._arrays import _np_bfloat16


def _wrap(raw: Any, device: str, bfloat16: bool = False) -> Any:
    """numpy for CPU memory (bfloat16 through ml_dtypes), torch for CUDA memory; never a copy."""
    if device == "cpu":
        array = np.from_dlpack(raw)
        return array.view(_np_bfloat16) if bfloat16 else array
    import torch

    return torch.from_dlpack(raw)


@dataclass(frozen=True)
class AttentionMetadata:
    """One step's metadata, shared by every layer (int32 arrays on the cache's device).

    block_tables [B, max_blocks_per_seq] (-1 past each sequence's blocks), context_lens [B],
    query_start [B+1], slot_mapping [T] (where this step's new K/V rows go).
    """

    block_tables: Any
    context_lens: Any
    query_start: Any
    slot_mapping: Any


class KvCache:
    """Paged K/V memory for `num_layers` layers in one allocation, and the sequences that use it.

    Each layer's key(layer) / value(layer) is [num_blocks, block_size, num_kv_heads, head_dim] in `dtype`
    ('float32', 'float16' or 'bfloat16') on `device` ('cpu' or 'cuda[:N]'), numpy on the CPU and torch on
    CUDA, shared with the cache (no copy). All layers use one block-id space, so one metadata per step
    serves every layer. With prefix_caching, full blocks are found again by their token ids.

    A decode loop::

        cache = KvCache(num_blocks=64, block_size=16, num_layers=1, num_kv_heads=2, head_dim=64)
        seq = cache.add_sequence()
        cache.append(seq, 5)                      # room for a 5-token prompt
        md = cache.metadata([seq], [5])           # this step: 5 new tokens of seq
        out = attn(q, k, v, cache, md)            # PagedAttention: write_kv + paged_attention
    """

    def __init__(
        self,
        num_blocks: int,
        block_size: int = 16,
        num_layers: int = 1,
        num_kv_heads: int = 1,
        head_dim: int = 64,
        dtype: str = "float16",
        device: str = "cpu",
        prefix_caching: bool = True,
    ) -> None:
        self._cache = _pagedattn._KvCache(
            num_blocks, block_size, num_layers, num_kv_heads, head_dim, dtype, device, prefix_caching
        )
        self.num_blocks, self.block_size, self.num_layers = num_blocks, block_size, num_layers
        self.num_kv_heads, self.head_dim, self.dtype, self.device = num_kv_heads, head_dim, dtype, device
        self._device_kind = "cpu" if device == "cpu" else "cuda"
        bf16 = dtype == "bfloat16"
        self._keys = [_wrap(self._cache.key(layer), self._device_kind, bf16) for layer in range(num_layers)]
        self._values = [_wrap(self._cache.value(layer), self._device_kind, bf16) for layer in range(num_layers)]

    @staticmethod
    def num_blocks_for_budget(
        budget_bytes: int, block_size: int, num_layers: int, num_kv_heads: int, head_dim: int, dtype: str = "float16"
    ) -> int:
        """The most blocks whose K/V over all layers fit in budget_bytes (ValueError if not even one)."""
        return _pagedattn._KvCache.num_blocks_for_budget(budget_bytes, block_size, num_layers, num_kv_heads, head_dim, dtype)

    def key(self, layer: int = 0) -> Any:
        """Layer `layer`'s key cache [num_blocks, block_size, num_kv_heads, head_dim] (a view)."""
        return self._keys[layer]

    def value(self, layer: int = 0) -> Any:
        """Layer `layer`'s value cache (a view)."""
        return self._values[layer]

    def add_sequence(self) -> int:
        """A new, empty sequence; ids are never reused."""
        return self._cache.add_sequence()

    def append(self, seq: int, tokens: "int | Sequence[int]") -> Optional[np.ndarray]:
        """Give `tokens` new tokens (a count, or their token ids, which enables prefix caching) a slot each.

        Returns their slots (int32, slot = block * block_size + offset), or None when the pool has too few
        free blocks, in which case nothing changed. A shared or cached tail block is copied first
        (copy-on-write) on every layer."""
        if isinstance(tokens, (int, np.integer)):
            return self._cache.append_count(seq, int(tokens))
        return self._cache.append_tokens(seq, [int(t) for t in tokens])

    def attach_cached_prefix(self, seq: int, prompt: Sequence[int]) -> int:
        """For an empty sequence: reuse the cached blocks of the longest cached prefix of `prompt`; returns
        how many tokens are already cached (at most len(prompt) - 1: the last token is always computed)."""
        return self._cache.attach_cached_prefix(seq, [int(t) for t in prompt])

    def fork(self, seq: int) -> int:
        """A new sequence sharing all of `seq`'s blocks (copy-on-write on the next write into a shared block)."""
        return self._cache.fork(seq)

    def rewind(self, seq: int, num_tokens: int) -> None:
        """Drop the last num_tokens tokens of `seq`, freeing blocks that become empty."""
        self._cache.rewind(seq, num_tokens)

    def release(self, seq: int) -> None:
        """Free every block of `seq` (cached full blocks stay findable until evicted)."""
        self._cache.release(seq)

    def num_tokens(self, seq: int) -> int:
        return self._cache.num_tokens(seq)

    def block_table(self, seq: int) -> list:
        return self._cache.block_table(seq)

    @property
    def num_free_blocks(self) -> int:
        """Blocks an allocation can take now (free plus evictable cached blocks)."""
        return self._cache.num_free_blocks

    def check_invariants(self) -> None:
        """Raises RuntimeError if the pool's bookkeeping is inconsistent (for tests)."""
        self._cache.check_invariants()

    def metadata(self, seq_ids: Sequence[int], num_new_tokens: Sequence[int]) -> AttentionMetadata:
        """The step's metadata for these sequences, whose last num_new_tokens[i] tokens are this step's
        query rows (already appended). On the cache's device."""
        raw = self._cache.metadata([int(s) for s in seq_ids], [int(n) for n in num_new_tokens])
        kind = self._device_kind
        return AttentionMetadata(
            _wrap(raw.block_tables, kind), _wrap(raw.context_lens, kind), _wrap(raw.query_start, kind),
            _wrap(raw.slot_mapping, kind),
        )
