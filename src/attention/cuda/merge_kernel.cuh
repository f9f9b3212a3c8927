// Log-sum-exp merge of split-KV partial results: one CTA per (sequence, query head). Groups of threads
// that each own a float4 column of the output share out the splits and merge theirs online, then the
// groups merge through shared memory, so a sequence cut into n pieces costs one memory round trip, not n.
// Launched with programmatic dependent launch right behind the decode kernel, it waits there for the partials. Bound: latency (the partials are ~1% of the K/V bytes).
#pragma once

#include <math_constants.h>

#include "attention/cuda/cuda_types.cuh"
#include "attention/cuda/decode_params.h"
#include "attention/cuda/ptx.cuh"
#include "attention/cuda/varlen_rows.cuh"

namespace pagedattn::cuda {

inline constexpr int kMergeThreads = 256;

template <class T>
__global__ void __launch_bounds__(kMergeThreads) merge_kernel(const __grid_constant__ MergeParams p) {
  __shared__ float s_max[kMergeThreads];
  __shared__ float4 s_acc[kMergeThreads];
  __shared__ float s_sum[kMergeThreads];
  ptx::wait_for_prerequisites();
  ptx::launch_dependents();
  const int seq = blockIdx.x, head = blockIdx.y, tid = threadIdx.x;
  const int count = p.partial_begin ? p.partial_count[seq] : p.uniform_splits;
  if (count <= 1) return;  // an unsplit sequence's CTA wrote `out` itself
  const int row = decode_row(p.query_start, p.num_tokens, seq);
  if (row < 0) return;  // a varlen call's prefill (or empty) sequence
  const long long begin = p.partial_begin ? p.partial_begin[seq] : static_cast<long long>(seq) * p.uniform_splits;
  // Thread = (group g, float4 column c); group g merges splits g, g + groups, ... against its own running
  // max, so each split's log-sum-exp and output load together: one memory round trip, not one for the max
  // and another for the outputs.
  const int columns = p.head_dim / 4, groups = kMergeThreads / columns;
  const int g = tid / columns, c = tid - g * columns;
  float m = -CUDART_INF_F, sum = 0.0f;
  float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
  if (g < groups) {
#pragma unroll 4
    for (int s = g; s < count; s += groups) {
      const long long slot = (begin + s) * p.num_q_heads + head;
      const float x = p.partial_lse[slot];
      const float4 o = reinterpret_cast<const float4*>(p.partial_out + slot * p.head_dim)[c];
      if (x == -CUDART_INF_F) continue;  // an empty split: its output was never written
      const float m_new = fmaxf(m, x);
      const float rescale = ptx::exp2_approx(m - m_new), w = ptx::exp2_approx(x - m_new);
      m = m_new;
      sum = sum * rescale + w;
      acc.x = acc.x * rescale + w * o.x, acc.y = acc.y * rescale + w * o.y;
      acc.z = acc.z * rescale + w * o.z, acc.w = acc.w * rescale + w * o.w;
    }
  }
  s_max[tid] = m;
  s_acc[tid] = acc;
  s_sum[tid] = sum;
  __syncthreads();
  if (tid >= columns) return;
  float m_all = -CUDART_INF_F;
  for (int k = 0; k < groups; ++k) m_all = fmaxf(m_all, s_max[k * columns + tid]);
  float total = 0.0f;
  float4 out = make_float4(0.f, 0.f, 0.f, 0.f);
  for (int k = 0; k < groups; ++k) {
    const float mk = s_max[k * columns + tid];
    if (mk == -CUDART_INF_F) continue;  // this group merged nothing
    const float w = ptx::exp2_approx(mk - m_all);
    const float4 a = s_acc[k * columns + tid];
    out.x += w * a.x, out.y += w * a.y, out.z += w * a.z, out.w += w * a.w;
    total += w * s_sum[k * columns + tid];
  }
  const float inv = total > 0.0f ? 1.0f / total : 0.0f;
  T* dst = static_cast<T*>(p.out) + row * p.o_stride_token + head * p.o_stride_head + 4 * tid;
  dst[0] = from_float<T>(out.x * inv);
  dst[1] = from_float<T>(out.y * inv);
  dst[2] = from_float<T>(out.z * inv);
  dst[3] = from_float<T>(out.w * inv);
}

}  // namespace pagedattn::cuda
