// The two products of a decode tile, on one warp's 16 tokens: S = Q K^T (16 query heads x 16 tokens) and
// O += P V (16 heads x D). Both produce/consume the register layout of mma.sync m16n8k16 accumulators:
// lane l holds rows l/4 and l/4 + 8, columns 2(l%4) and 2(l%4) + 1 of each 8-column tile, so the softmax
// in decode_kernel.cuh is written once. bf16/f16 run on tensor cores; f32 (tests) computes the same
// fragments with FMAs from shared memory.
#pragma once

#include "attention/cuda/decode_config.cuh"
#include "attention/cuda/ptx.cuh"

namespace pagedattn::cuda {

template <class T, int D>
struct TileMath {
  using Rows = DecodeRows<T, D>;

  uint32_t q_frag[Rows::kQInRegisters ? D / 16 : 1][4];
  const T* s_q = nullptr;

  __device__ void load_q(const T* q, int lane) {
    s_q = q;
    if constexpr (Rows::kQInRegisters) {
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) load_q_step(q_frag[kk], kk, lane);
    }
  }

  __device__ void load_q_step(uint32_t (&a)[4], int kk, int lane) const {
    // Matrices: rows 0-7 / 8-15 x columns kk*16 + 0-7 / 8-15, in the order of the A fragment.
    ptx::ldmatrix_x4(a, s_q + Rows::offset((lane / 8) % 2 * 8 + lane % 8, kk * 2 + lane / 16));
  }

  // s[n][e]: scores of this warp's tokens row0 + 8n + 2(lane%4) + (e%2), heads lane/4 + 8(e/2).
  __device__ void scores(float (&s)[2][4], const T* k_tile, int row0, int lane) const {
#pragma unroll
    for (int n = 0; n < 2; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[n][e] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      uint32_t a[4];
      if constexpr (Rows::kQInRegisters) {
#pragma unroll
        for (int i = 0; i < 4; ++i) a[i] = q_frag[kk][i];
      } else {
        load_q_step(a, kk, lane);
      }
      // K rows are the B operand's columns: tokens 0-7 / 8-15 x dims kk*16 + 0-7 / 8-15.
      uint32_t b[4];
      ptx::ldmatrix_x4(b, k_tile + Rows::offset(row0 + lane / 16 * 8 + lane % 8, kk * 2 + (lane / 8) % 2));
      ptx::mma_16816<T>(s[0], a, b[0], b[1]);
      ptx::mma_16816<T>(s[1], a, b[2], b[3]);
    }
  }

  // o[t][e]: output dims 8t + 2(lane%4) + (e%2) of heads lane/4 + 8(e/2); p: probabilities laid out as s.
  __device__ void accumulate(float (&o)[D / 8][4], const float (&p)[2][4], const T* v_tile, int row0,
                             int lane) const {
    // An m16n8 accumulator pair is exactly the A fragment of an m16k16 product: no shuffles.
    const uint32_t a[4] = {ptx::pack2<T>(p[0][0], p[0][1]), ptx::pack2<T>(p[0][2], p[0][3]),
                           ptx::pack2<T>(p[1][0], p[1][1]), ptx::pack2<T>(p[1][2], p[1][3])};
#pragma unroll
    for (int dn = 0; dn < D / 16; ++dn) {
      // V is [token][dim]: transposed loads give the B operand (k = token, n = dim).
      uint32_t b[4];
      ptx::ldmatrix_x4_trans(b, v_tile + Rows::offset(row0 + (lane / 8) % 2 * 8 + lane % 8, dn * 2 + lane / 16));
      ptx::mma_16816<T>(o[2 * dn], a, b[0], b[1]);
      ptx::mma_16816<T>(o[2 * dn + 1], a, b[2], b[3]);
    }
  }
};

// f32: no tensor-core format keeps f32 accuracy, so each lane computes its own fragment entries.
template <int D>
struct TileMath<float, D> {
  using Rows = DecodeRows<float, D>;
  static constexpr int kRow = Rows::kRowElems;
  const float* s_q = nullptr;

  __device__ void load_q(const float* q, int) { s_q = q; }

  static __device__ float dot(const float* a, const float* b) {
    float acc = 0.0f;
#pragma unroll 8
    for (int d = 0; d < D; d += 4) {
      const float4 x = *reinterpret_cast<const float4*>(a + d);
      const float4 y = *reinterpret_cast<const float4*>(b + d);
      acc = fmaf(x.x, y.x, fmaf(x.y, y.y, fmaf(x.z, y.z, fmaf(x.w, y.w, acc))));
    }
    return acc;
  }

  __device__ void scores(float (&s)[2][4], const float* k_tile, int row0, int lane) const {
#pragma unroll
    for (int n = 0; n < 2; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        s[n][e] = dot(s_q + (lane / 4 + e / 2 * 8) * kRow, k_tile + (row0 + 8 * n + 2 * (lane % 4) + e % 2) * kRow);
  }

  __device__ void accumulate(float (&o)[D / 8][4], const float (&p)[2][4], const float* v_tile, int row0,
                             int lane) const {
#pragma unroll
    for (int k = 0; k < 16; ++k) {
      // Token k's probability for this lane's two rows lives in lane (quad base + (k % 8) / 2).
      const int src = (lane & ~3) | ((k % 8) / 2);
      const float p_lo = __shfl_sync(0xffffffffu, p[k / 8][k % 2], src);
      const float p_hi = __shfl_sync(0xffffffffu, p[k / 8][2 + k % 2], src);
      const float* v = v_tile + (row0 + k) * kRow + 2 * (lane % 4);
#pragma unroll
      for (int t = 0; t < D / 8; ++t) {
        const float2 x = *reinterpret_cast<const float2*>(v + 8 * t);
        o[t][0] = fmaf(p_lo, x.x, o[t][0]);
        o[t][1] = fmaf(p_lo, x.y, o[t][1]);
        o[t][2] = fmaf(p_hi, x.x, o[t][2]);
        o[t][3] = fmaf(p_hi, x.y, o[t][3]);
      }
    }
  }
};

}  // namespace pagedattn::cuda
