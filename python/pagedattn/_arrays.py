"""Array plumbing shared by the Python API: kind detection, allocation, streams, numpy bfloat16."""

from __future__ import annotations

from typing import Any

import numpy as np

try:  # numpy has no bfloat16; ml_dtypes provides the usual one
    from ml_dtypes import bfloat16 as _np_bfloat16
except ImportError:  # pragma: no cover - ml_dtypes is a dependency, but keep the import optional
    _np_bfloat16 = None


def is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def kernel_arg(x: Any, name: str) -> Any:
    """What the extension receives for `x`: the array itself, or a uint16 view of a numpy bfloat16 array
    (the extension reads uint16 as bfloat16, so a genuine uint16 array is refused here)."""
    if isinstance(x, np.ndarray):
        if _np_bfloat16 is not None and x.dtype == _np_bfloat16:
            return x.view(np.uint16)
        if x.dtype == np.uint16:
            raise TypeError(f"{name}: unsupported dtype uint16")
    return x


def empty_like(x: Any) -> Any:
    """A new contiguous array of the same kind, dtype, shape and device as `x`."""
    if is_torch(x):
        import torch

        return torch.empty(tuple(x.shape), dtype=x.dtype, device=x.device)
    if isinstance(x, np.ndarray):
        return np.empty(x.shape, dtype=x.dtype)
    raise TypeError(f"query: expected a numpy array or a torch tensor, got {type(x).__name__}")


def stream_of(x: Any) -> int:
    """The current CUDA stream of a torch CUDA tensor (0 = default stream otherwise)."""
    if is_torch(x) and x.is_cuda:
        import torch

        return int(torch.cuda.current_stream(x.device).cuda_stream)
    return 0
