// The CUDA kernels for bf16: decode for every head dim in DecodeHeadDims, merge and write_kv. One file per
// dtype so that the instantiations compile in parallel.
#include "attention/cuda/kernel_launch.cuh"

namespace pagedattn::cuda {
template DecodeLauncher decode_launcher<pagedattn::bf16>(int64_t);
template void launch_merge<pagedattn::bf16>(const MergeParams&, cudaStream_t, bool);
template void launch_write_kv<pagedattn::bf16>(const WriteKvParams&, bool, cudaStream_t);
}  // namespace pagedattn::cuda
