// The simple prefill path, for f32 (no tensor-core format keeps f32 accuracy) and for scales <= 0 (the
// tensor-core kernel's softmax assumes a positive scale): the same work list and masking rules as
// prefill_kernel.cuh, but each warp walks one packed (token, head) row at a time over its visible keys, a
// lane holding every 32nd dim, with a warp-wide dot product and an online softmax. Correct and plain, not
// fast: it serves tests, reference runs and odd scales.
#pragma once

#include <math_constants.h>

#include "attention/cuda/cuda_types.cuh"
#include "attention/cuda/prefill_params.h"
#include "attention/cuda/prefill_units.cuh"
#include "attention/cuda/device_error.cuh"

namespace pagedattn::cuda {

struct PrefillSimpleConfig {
  static constexpr int kWarps = 4;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kTileRows = 16;  // packed rows per work unit
  static constexpr int kSmemBytes = 128;  // two claimed units
};

template <class T, int D>
__global__ void __launch_bounds__(PrefillSimpleConfig::kThreads)
    prefill_simple_kernel(const __grid_constant__ PrefillParams p) {
  using Cfg = PrefillSimpleConfig;
  constexpr int kPerLane = (D + 31) / 32;
  extern __shared__ __align__(16) unsigned char smem[];  // two PrefillUnit slots
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const auto rows = [&](const PrefillWorkItem& item, int kv_head, auto&& claim_next) {
    claim_next();
    const int group = p.group_size;
    const int* table = p.block_tables + static_cast<long long>(item.seq) * p.max_blocks_per_seq;
    const long long row_stride = static_cast<long long>(p.num_kv_heads) * D;
    for (int r = item.row0 + warp; r < item.row0 + item.rows; r += Cfg::kWarps) {
      const int token = r / group, head = kv_head * group + r - token * group;
      const T* q = static_cast<const T*>(p.query) + (item.first_row + token) * p.q_stride_token + head * p.q_stride_head;
      float qv[kPerLane], acc[kPerLane];
#pragma unroll
      for (int i = 0; i < kPerLane; ++i) {
        const int d = lane + 32 * i;
        qv[i] = d < D ? to_float(q[d]) : 0.0f;
        acc[i] = 0.0f;
      }
      const int visible = p.causal ? item.context_len - item.q_len + token + 1 : item.context_len;
      float m = -CUDART_INF_F, l = 0.0f;
      for (int pos = 0; pos < visible; ++pos) {
        const int page = pos / p.block_size;
        const int id = table[page];
        if (static_cast<unsigned>(id) >= static_cast<unsigned>(p.num_blocks)) {
          if (lane == 0) record_device_error(p.error, DeviceErrorCode::block_id, item.seq, page, id, p.num_blocks);
          continue;  // never read
        }
        const long long base = (static_cast<long long>(id) * p.block_size + pos - page * p.block_size) * row_stride + kv_head * D;
        const T* k = static_cast<const T*>(p.key_cache) + base;
        const T* v = static_cast<const T*>(p.value_cache) + base;
        float dot = 0.0f;
#pragma unroll
        for (int i = 0; i < kPerLane; ++i) {
          const int d = lane + 32 * i;
          if (d < D) dot = fmaf(qv[i], to_float(k[d]), dot);
        }
#pragma unroll
        for (int offset = 16; offset > 0; offset /= 2) dot += __shfl_xor_sync(0xffffffffu, dot, offset);
        const float x = dot * p.scale_log2;  // any finite scale
        const float m_new = fmaxf(m, x);
        const float correction = exp2f(m - m_new), weight = exp2f(x - m_new);
        m = m_new;
        l = l * correction + weight;
#pragma unroll
        for (int i = 0; i < kPerLane; ++i) {
          const int d = lane + 32 * i;
          acc[i] = acc[i] * correction + (d < D ? weight * to_float(v[d]) : 0.0f);
        }
      }
      const float inv = l > 0.0f ? 1.0f / l : 0.0f;
      T* out = static_cast<T*>(p.out) + (item.first_row + token) * p.o_stride_token + head * p.o_stride_head;
#pragma unroll
      for (int i = 0; i < kPerLane; ++i) {
        const int d = lane + 32 * i;
        if (d < D) out[d] = from_float<T>(acc[i] * inv);
      }
    }
  };
  for_each_prefill_unit(p.work, p.num_kv_heads, reinterpret_cast<PrefillUnit*>(smem), rows);
}

}  // namespace pagedattn::cuda
