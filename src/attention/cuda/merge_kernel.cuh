// Log-sum-exp merge of split-KV partial results: one thread per (sequence, query head, 8 output dims)
// combines that head's partial outputs of every split. Launched with programmatic dependent launch right
// behind the decode kernel, it waits there for the partials. Bound: tiny (partials are ~1% of K/V bytes).
#pragma once

#include <math_constants.h>

#include "attention/cuda/cuda_types.cuh"
#include "attention/cuda/decode_params.h"
#include "attention/cuda/ptx.cuh"

namespace pagedattn::cuda {

inline constexpr int kMergeThreads = 128;

template <class T>
__global__ void __launch_bounds__(kMergeThreads) merge_kernel(const __grid_constant__ MergeParams p) {
  ptx::wait_for_prerequisites();
  const int seq = blockIdx.x;
  const int groups = p.head_dim / 8;
  const int u = blockIdx.y * kMergeThreads + threadIdx.x;
  const int head = u / groups, d0 = (u - head * groups) * 8;
  if (head >= p.num_q_heads) return;
  const int count = p.partial_begin ? p.partial_count[seq] : p.uniform_splits;
  if (count <= 1) return;  // an unsplit sequence's CTA wrote `out` itself
  const long long begin = p.partial_begin ? p.partial_begin[seq] : static_cast<long long>(seq) * p.uniform_splits;

  float m_max = -CUDART_INF_F;
  for (int s = 0; s < count; ++s) m_max = fmaxf(m_max, p.partial_lse[(begin + s) * p.num_q_heads + head]);
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  float total = 0.0f;
  for (int s = 0; s < count; ++s) {
    const long long slot = (begin + s) * p.num_q_heads + head;
    const float lse = p.partial_lse[slot];
    if (lse == -CUDART_INF_F) continue;  // an empty split: its output was never written
    const float weight = ptx::exp2_approx(lse - m_max);
    total += weight;
    const float4* src = reinterpret_cast<const float4*>(p.partial_out + slot * p.head_dim + d0);
    const float4 a = src[0], b = src[1];
    acc[0] += weight * a.x, acc[1] += weight * a.y, acc[2] += weight * a.z, acc[3] += weight * a.w;
    acc[4] += weight * b.x, acc[5] += weight * b.y, acc[6] += weight * b.z, acc[7] += weight * b.w;
  }
  const float inv = total > 0.0f ? 1.0f / total : 0.0f;
#pragma unroll
  for (int i = 0; i < 8; ++i) acc[i] *= inv;
  store8(static_cast<T*>(p.out) + seq * p.o_stride_token + head * p.o_stride_head + d0, acc);
}

}  // namespace pagedattn::cuda
