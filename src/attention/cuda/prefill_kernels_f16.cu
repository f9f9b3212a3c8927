// The f16 prefill launchers (the tensor-core kernel) for every head dim in DecodeHeadDims. One file per dtype so
// that the instantiations compile in parallel.
#include "attention/cuda/prefill_launch.cuh"

namespace pagedattn::cuda {
template PrefillLauncher prefill_launcher<pagedattn::f16>(int64_t);
}  // namespace pagedattn::cuda
