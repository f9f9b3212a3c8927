// Maps the library's 16-bit storage tags (pagedattn::bf16 / f16) to CUDA's types, plus conversions.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "pagedattn/dtype.h"

namespace pagedattn::cuda {

template <class Tag>
struct CudaType {
  using type = Tag;  // float
};
template <>
struct CudaType<pagedattn::bf16> {
  using type = __nv_bfloat16;
};
template <>
struct CudaType<pagedattn::f16> {
  using type = __half;
};
template <class Tag>
using cuda_type_t = typename CudaType<Tag>::type;

template <class T>
__device__ inline T from_float(float v);
template <>
__device__ inline float from_float<float>(float v) { return v; }
template <>
__device__ inline __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <>
__device__ inline __half from_float<__half>(float v) { return __float2half_rn(v); }

// Stores 8 consecutive floats as 8 values of T (one 16-byte store for 16-bit types). dst: 16B aligned.
template <class T>
__device__ inline void store8(T* dst, const float (&v)[8]) {
  if constexpr (sizeof(T) == 2) {
    alignas(16) T packed[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) packed[i] = from_float<T>(v[i]);
    *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(packed);
  } else {
    reinterpret_cast<float4*>(dst)[0] = make_float4(v[0], v[1], v[2], v[3]);
    reinterpret_cast<float4*>(dst)[1] = make_float4(v[4], v[5], v[6], v[7]);
  }
}

}  // namespace pagedattn::cuda
