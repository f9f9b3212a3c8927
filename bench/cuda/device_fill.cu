#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>

#include "device_fill.h"

namespace pagedattn::bench {
namespace {

__device__ inline float hash_to_unit(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return static_cast<float>(x >> 40) * (2.0f / 16777216.0f) - 1.0f;
}

template <class T>
__global__ void fill_kernel(T* data, int64_t n, uint64_t seed) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float v = hash_to_unit(seed * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(i));
    if constexpr (std::is_same_v<T, float>) data[i] = v;
    else if constexpr (std::is_same_v<T, __half>) data[i] = __float2half_rn(v);
    else data[i] = __float2bfloat16_rn(v);
  }
}

}  // namespace

void fill_random(const TensorView& t, uint64_t seed) {
  const int64_t n = t.numel();
  switch (t.dtype) {
    case DType::f32: fill_kernel<<<1024, 256>>>(static_cast<float*>(t.data), n, seed); break;
    case DType::f16: fill_kernel<<<1024, 256>>>(static_cast<__half*>(t.data), n, seed); break;
    case DType::bf16: fill_kernel<<<1024, 256>>>(static_cast<__nv_bfloat16*>(t.data), n, seed); break;
    default: break;
  }
}

}  // namespace pagedattn::bench
