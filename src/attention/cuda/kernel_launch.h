// The host's view of the CUDA kernels (no device code): launchers by dtype tag and head dim. The runtime
// dtype is dispatched once, in backend.cpp; the head dim in decode_launcher. Instantiated per dtype in
// kernels_<dtype>.cu.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <utility>

#include "attention/cuda/decode_params.h"
#include "pagedattn/dtype.h"

namespace pagedattn::cuda {

// Head dims with a decode instantiation.
using DecodeHeadDims = std::integer_sequence<int, 64, 80, 96, 128, 256>;

struct DecodeLauncher {
  // Launches `grid_ctas` CTAs of the decode kernel, built for `ctas_per_sm` (1 or 2) CTAs per SM: 1 takes the
  // whole shared memory for a deeper pipeline (decode_config.cuh). `pdl`: as a programmatic dependent of the
  // previous kernel in the stream (it may start while that one finishes, and waits for its results).
  void (*launch)(const DecodeParams& params, int grid_ctas, int ctas_per_sm, cudaStream_t stream, bool pdl) = nullptr;
  explicit operator bool() const { return launch != nullptr; }
};

// Empty launcher when the head dim has no instantiation. Tag: float, pagedattn::f16 or pagedattn::bf16.
template <class Tag>
DecodeLauncher decode_launcher(int64_t head_dim);

// The merge kernel (launched as a programmatic dependent of the decode kernel when `pdl`).
template <class Tag>
void launch_merge(const MergeParams& params, cudaStream_t stream, bool pdl);

// 16-byte pieces when `vector`, else element by element.
template <class Tag>
void launch_write_kv(const WriteKvParams& params, bool vector, cudaStream_t stream);

}  // namespace pagedattn::cuda
