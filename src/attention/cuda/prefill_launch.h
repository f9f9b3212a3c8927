// The host's view of the prefill kernels (no device code): launchers by dtype tag, head dim and scale, and
// the work-list builder. f16/bf16 with a positive scale run the tensor-core kernel (at D = 128 on sm_90 its
// wgmma versions: prefill_wgmma_ws_kernel.cuh for long rows, prefill_wgmma_kernel.cuh for short ones); f32, and
// any scale <= 0, the simple one. Instantiated per dtype in prefill_kernels_<dtype>.cu.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "attention/cuda/prefill_params.h"
#include "pagedattn/dtype.h"

namespace pagedattn::cuda {

struct PrefillLauncher {
  // Launches the persistent prefill grid on `stream`: one CTA per resident slot of the device, at most
  // `max_units`. `pdl`: as a programmatic dependent of the previous kernel (the work-list builder).
  void (*launch)(const PrefillParams& params, int64_t max_units, cudaStream_t stream, bool pdl) = nullptr;
  int tile_rows = 0;  // packed query rows per work item
  explicit operator bool() const { return launch != nullptr; }
};

// Empty launcher when the head dim has no instantiation (the set of DecodeHeadDims). Tag: float,
// pagedattn::f16 or pagedattn::bf16; scale: the softmax scale of the call.
template <class Tag>
PrefillLauncher prefill_launcher(int64_t head_dim, float scale);

// One CTA that writes the work list of a varlen call (prefill_tiles_kernel.cuh).
void launch_prefill_tiles(const PrefillTilesParams& params, cudaStream_t stream);

}  // namespace pagedattn::cuda
