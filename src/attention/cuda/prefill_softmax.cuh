// One query row's online-softmax step over a K/V tile, shared by the prefill kernels. The row's scores are
// mma m16n8 accumulators: s[4 n + 2 hh + e] is key 8 n + 2 (lane % 4) + e of the tile (hh picks the row of
// the lane's two), each row spread over the 4 lanes of a quad.
#pragma once

#include <math_constants.h>

#include "attention/cuda/ptx.cuh"

namespace pagedattn::cuda {

// Masks the keys past `limit` (when kMayMask && masked; key0 = this lane's first key of the tile), folds the
// tile into the running max m (of the raw scores: the scale is positive, so each exponent is one FFMA,
// s * scale - m * scale) and this lane's share l of the running sum, and turns the scores into probabilities.
// Returns the factor the row's output must be scaled by; `moved` is set when the max moved. The max and the
// sum run as kChains independent chains: 4 in the warp-specialized kernel, whose warps have few others to
// hide the latency of N / 4 dependent steps behind (1.5-2% faster there on an H200 at 1k-token rows); 1 in
// the kernels that keep more rows or CTAs in flight (four gained nothing there: bench/results/cuda_h200.md,
// runs 13-15).
template <int N, bool kMayMask, int kChains = 1>
__device__ __forceinline__ float softmax_row_step(float* s, int hh, float& m, float& l, float scale, bool masked,
                                                  int key0, int limit, bool& moved) {
  static_assert(kChains == 1 || kChains == 2 || kChains == 4, "1, 2 or 4 chains: they take the row's scores in turn");
  float mxs[kChains];
#pragma unroll
  for (int c = 0; c < kChains; ++c) mxs[c] = -CUDART_INF_F;
#pragma unroll
  for (int n = 0; n < N / 8; ++n)
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      float& x = s[4 * n + 2 * hh + e];
      if (kMayMask && masked && key0 + 8 * n + e > limit) x = -CUDART_INF_F;
      float& chain = mxs[(2 * n + e) % kChains];
      chain = fmaxf(chain, x);
    }
#pragma unroll
  for (int w = kChains / 2; w > 0; w /= 2)  // pairwise: (0, 1), (2, 3), then the two results
#pragma unroll
    for (int c = 0; c < w; ++c) mxs[c] = fmaxf(mxs[2 * c], mxs[2 * c + 1]);
  float mx = mxs[0];
  mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
  mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
  const float m_new = fmaxf(m, mx);
  // A row with nothing visible yet keeps probabilities 0 (exp2(-inf)), never NaN.
  const float ref = m_new == -CUDART_INF_F ? 0.0f : m_new * scale;
  const float correction = ptx::exp2_approx(m * scale - ref);
  moved |= m_new != m;
  m = m_new;
  float sums[kChains];
#pragma unroll
  for (int c = 0; c < kChains; ++c) sums[c] = 0.0f;
#pragma unroll
  for (int n = 0; n < N / 8; ++n)
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      float& x = s[4 * n + 2 * hh + e];
      x = ptx::exp2_approx(fmaf(x, scale, -ref));
      sums[(2 * n + e) % kChains] += x;
    }
#pragma unroll
  for (int w = kChains / 2; w > 0; w /= 2)
#pragma unroll
    for (int c = 0; c < w; ++c) sums[c] = sums[2 * c] + sums[2 * c + 1];
  const float sum = sums[0];
  l = l * correction + sum;
  return correction;
}

}  // namespace pagedattn::cuda
