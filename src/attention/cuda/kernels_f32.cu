// The CUDA kernels for f32: decode for every head dim in DecodeHeadDims, merge and write_kv. One file per
// dtype so that the instantiations compile in parallel.
#include "attention/cuda/kernel_launch.cuh"

namespace pagedattn::cuda {
template DecodeLauncher decode_launcher<float>(int64_t);
template void launch_merge<float>(const MergeParams&, cudaStream_t, bool);
template void launch_write_kv<float>(const WriteKvParams&, bool, cudaStream_t);
}  // namespace pagedattn::cuda
