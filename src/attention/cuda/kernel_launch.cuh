// Template definitions behind kernel_launch.h: each decode_<dtype>.cu instantiates them for its dtype.
#pragma once

#include "attention/cuda/decode_kernel.cuh"
#include "attention/cuda/kernel_launch.h"
#include "attention/cuda/merge_kernel.cuh"
#include "attention/cuda/write_kv_kernel.cuh"
#include "core/cuda_check.h"

namespace pagedattn::cuda {

// cudaLaunchKernelEx with programmatic stream serialization when `pdl`.
template <class Kernel, class Params>
void launch_with_pdl(Kernel kernel, dim3 grid, dim3 block, int smem_bytes, cudaStream_t stream, bool pdl,
                     const Params& params) {
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = static_cast<size_t>(smem_bytes);
  config.stream = stream;
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  config.attrs = &attribute;
  config.numAttrs = pdl ? 1 : 0;
  PA_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, params));
}

template <class T, int D, int kCtasPerSm>
void launch_decode_for(const DecodeParams& params, int grid_ctas, cudaStream_t stream, bool pdl) {
  using Cfg = DecodeConfig<T, D, kCtasPerSm>;
  const auto kernel = decode_kernel<T, D, kCtasPerSm>;
  // Raising the dynamic shared-memory limit is per device and cheap: doing it each launch keeps this stateless.
  PA_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Cfg::kSmemBytes));
  launch_with_pdl(kernel, dim3(grid_ctas), dim3(Cfg::kThreads), Cfg::kSmemBytes, stream, pdl, params);
}

template <class T, int D>
void launch_decode(const DecodeParams& params, int grid_ctas, int ctas_per_sm, cudaStream_t stream, bool pdl) {
  if (ctas_per_sm == 1) launch_decode_for<T, D, 1>(params, grid_ctas, stream, pdl);
  else launch_decode_for<T, D, 2>(params, grid_ctas, stream, pdl);
}

template <class Tag, int... Ds>
DecodeLauncher decode_launcher_from(int64_t head_dim, std::integer_sequence<int, Ds...>) {
  using T = cuda_type_t<Tag>;
  DecodeLauncher found;
  ((head_dim == Ds ? (found = DecodeLauncher{&launch_decode<T, Ds>}, 0) : 0), ...);
  return found;
}

template <class Tag>
DecodeLauncher decode_launcher(int64_t head_dim) {
  return decode_launcher_from<Tag>(head_dim, DecodeHeadDims{});
}

template <class Tag>
void launch_merge(const MergeParams& params, cudaStream_t stream, bool pdl) {
  launch_with_pdl(merge_kernel<cuda_type_t<Tag>>, dim3(params.num_seqs, params.num_q_heads), dim3(kMergeThreads), 0,
                  stream, pdl, params);
}

template <class Tag>
void launch_write_kv(const WriteKvParams& params, bool vector, cudaStream_t stream) {
  using T = cuda_type_t<Tag>;
  const int elems = vector ? 16 / static_cast<int>(sizeof(T)) : 1;
  const long long threads = static_cast<long long>(params.num_tokens) * params.num_kv_heads * (params.head_dim / elems);
  const unsigned blocks = static_cast<unsigned>((threads + kWriteKvThreads - 1) / kWriteKvThreads);
  if (blocks == 0) return;
  if (vector) write_kv_kernel<T, true><<<blocks, kWriteKvThreads, 0, stream>>>(params);
  else write_kv_kernel<T, false><<<blocks, kWriteKvThreads, 0, stream>>>(params);
}

}  // namespace pagedattn::cuda
