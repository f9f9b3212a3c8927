// The bf16 prefill launchers for every head dim in DecodeHeadDims: the tensor-core kernel, and the simple
// one for scales <= 0. One file per dtype so that the instantiations compile in parallel.
#include "attention/cuda/prefill_launch.cuh"

namespace pagedattn::cuda {
template PrefillLauncher prefill_launcher<pagedattn::bf16>(int64_t, float);
}  // namespace pagedattn::cuda
