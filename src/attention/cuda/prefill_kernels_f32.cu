// The f32 prefill launchers for every head dim in DecodeHeadDims: the simple (CUDA-core) kernel. One file
// per dtype so that the instantiations compile in parallel.
#include "attention/cuda/prefill_launch.cuh"

namespace pagedattn::cuda {
template PrefillLauncher prefill_launcher<float>(int64_t, float);
}  // namespace pagedattn::cuda
