"""pagedattn: paged-attention kernels and a paged KV cache, over numpy arrays and torch tensors."""

from ._ops import paged_attention, write_kv
from ._pagedattn import cuda_available

__all__ = ["paged_attention", "write_kv", "cuda_available"]
