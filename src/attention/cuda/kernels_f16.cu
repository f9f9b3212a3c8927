// The CUDA kernels for f16: decode for every head dim in DecodeHeadDims, merge and write_kv. One file per
// dtype so that the instantiations compile in parallel.
#include "attention/cuda/kernel_launch.cuh"

namespace pagedattn::cuda {
template DecodeLauncher decode_launcher<pagedattn::f16>(int64_t);
template void launch_merge<pagedattn::f16>(const MergeParams&, cudaStream_t, bool);
template void launch_write_kv<pagedattn::f16>(const WriteKvParams&, bool, cudaStream_t);
}  // namespace pagedattn::cuda
