// Log-sum-exp merge of split-KV partial results: one CTA per (sequence, query head). Its threads first
// take the max of the splits' log-sum-exps together, then split the splits among groups of threads that
// each own a float4 column of the output, so a sequence cut into n pieces costs a few memory round
// trips, not n. Launched with programmatic dependent launch right behind the decode kernel, it waits
// there for the partials. Bound: latency (the partials are ~1% of the K/V bytes).
#pragma once

#include <math_constants.h>

#include "attention/cuda/cuda_types.cuh"
#include "attention/cuda/decode_params.h"
#include "attention/cuda/ptx.cuh"

namespace pagedattn::cuda {

inline constexpr int kMergeThreads = 256;

template <class T>
__global__ void __launch_bounds__(kMergeThreads) merge_kernel(const __grid_constant__ MergeParams p) {
  __shared__ float s_reduce[kMergeThreads / 32];
  __shared__ float4 s_acc[kMergeThreads];
  __shared__ float s_sum[kMergeThreads];
  ptx::wait_for_prerequisites();
  ptx::launch_dependents();
  const int seq = blockIdx.x, head = blockIdx.y, tid = threadIdx.x;
  const int count = p.partial_begin ? p.partial_count[seq] : p.uniform_splits;
  if (count <= 1) return;  // an unsplit sequence's CTA wrote `out` itself
  const long long begin = p.partial_begin ? p.partial_begin[seq] : static_cast<long long>(seq) * p.uniform_splits;
  const float* lse = p.partial_lse + head;  // split s at lse[(begin + s) * Hq]

  float m = -CUDART_INF_F;
  for (int s = tid; s < count; s += kMergeThreads) m = fmaxf(m, lse[(begin + s) * p.num_q_heads]);
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, offset));
  if (tid % 32 == 0) s_reduce[tid / 32] = m;
  __syncthreads();
  m = s_reduce[0];
#pragma unroll
  for (int w = 1; w < kMergeThreads / 32; ++w) m = fmaxf(m, s_reduce[w]);

  // Thread = (group g, float4 column c); group g takes splits g, g + groups, ...
  const int columns = p.head_dim / 4, groups = kMergeThreads / columns;
  const int g = tid / columns, c = tid - g * columns;
  float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
  float sum = 0.0f;
  if (g < groups && m != -CUDART_INF_F) {
#pragma unroll 4
    for (int s = g; s < count; s += groups) {
      const long long slot = (begin + s) * p.num_q_heads + head;
      const float x = lse[(begin + s) * p.num_q_heads];
      const float4 o = reinterpret_cast<const float4*>(p.partial_out + slot * p.head_dim)[c];
      if (x == -CUDART_INF_F) continue;  // an empty split: its output was never written
      const float w = ptx::exp2_approx(x - m);
      sum += w;
      acc.x += w * o.x, acc.y += w * o.y, acc.z += w * o.z, acc.w += w * o.w;
    }
  }
  s_acc[tid] = acc;
  s_sum[tid] = sum;
  __syncthreads();
  if (tid >= columns) return;
  float total = 0.0f;
  float4 out = make_float4(0.f, 0.f, 0.f, 0.f);
  for (int k = 0; k < groups; ++k) {
    const float4 a = s_acc[k * columns + tid];
    out.x += a.x, out.y += a.y, out.z += a.z, out.w += a.w;
    total += s_sum[k * columns + tid];
  }
  const float inv = total > 0.0f ? 1.0f / total : 0.0f;
  T* dst = static_cast<T*>(p.out) + seq * p.o_stride_token + head * p.o_stride_head + 4 * tid;
  dst[0] = from_float<T>(out.x * inv);
  dst[1] = from_float<T>(out.y * inv);
  dst[2] = from_float<T>(out.z * inv);
  dst[3] = from_float<T>(out.w * inv);
}

}  // namespace pagedattn::cuda
