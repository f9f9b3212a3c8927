// The output side of the sm_90a (wgmma) prefill kernels: a math warp's normalized rows staged as T in a
// 128-byte-swizzled tile (wgmma.cuh), from which whole 16-byte pieces of each row go to memory.
#pragma once

#include "attention/cuda/ptx.cuh"
#include "attention/cuda/wgmma.cuh"

namespace pagedattn::cuda {

// Divides this thread's two rows of a wgmma accumulator (o: row `row` in o[4 c + {0, 1}], row + 8 in
// o[4 c + {2, 3}], columns 8 c + 2 (lane % 4) + {0, 1}) by their sums (l: this lane's shares) and writes them
// as T into the swizzled tile of `tile_rows` rows at shared address `tile`. A store's 8 rows hit 32 banks.
template <class T, int D>
__device__ inline void stage_normalized_rows(uint32_t tile, int tile_rows, int row, int lane, const float* o,
                                             const float* l) {
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    float sum = l[hh] + __shfl_xor_sync(0xffffffffu, l[hh], 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
#pragma unroll
    for (int c = 0; c < D / 8; ++c)
      ptx::st_shared_b32(tile + wgmma::swizzled_offset(tile_rows, row + 8 * hh, c) + 4 * (lane % 4),
                         ptx::pack2<T>(o[4 * c + 2 * hh] * inv, o[4 * c + 2 * hh + 1] * inv));
  }
}

}  // namespace pagedattn::cuda
