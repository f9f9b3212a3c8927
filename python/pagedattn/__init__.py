"""pagedattn: paged-attention kernels and a paged KV cache, over numpy arrays and torch tensors."""

from ._ops import paged_attention, write_kv
from ._pagedattn import cuda_available
from .kv_cache import AttentionMetadata, KvCache
from .module import PagedAttention

__all__ = ["paged_attention", "write_kv", "cuda_available", "KvCache", "AttentionMetadata", "PagedAttention"]
