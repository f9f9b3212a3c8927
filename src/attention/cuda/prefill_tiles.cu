// Launch of the varlen work-list builder (prefill_tiles_kernel.cuh).
#include "attention/cuda/prefill_launch.h"
#include "attention/cuda/prefill_tiles_kernel.cuh"
#include "core/cuda_check.h"

namespace pagedattn::cuda {

void launch_prefill_tiles(const PrefillTilesParams& params, cudaStream_t stream) {
  prefill_tiles_kernel<<<1, kPrefillTilesThreads, 0, stream>>>(params);
  PA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace pagedattn::cuda
