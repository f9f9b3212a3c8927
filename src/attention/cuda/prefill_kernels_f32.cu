// The f32 prefill launchers (the simple (CUDA-core) kernel) for every head dim in DecodeHeadDims. One file per dtype so
// that the instantiations compile in parallel.
#include "attention/cuda/prefill_launch.cuh"

namespace pagedattn::cuda {
template PrefillLauncher prefill_launcher<float>(int64_t);
}  // namespace pagedattn::cuda
