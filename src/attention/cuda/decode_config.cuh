// Compile-time shape of the decode kernel for one (dtype, head dim): warps, tile, pipeline stages and the
// shared-memory layout. Chosen so that a CTA keeps about 70 KB of K/V in flight and two CTAs fit an SM.
#pragma once

#include "attention/cuda/decode_params.h"

namespace pagedattn::cuda {

template <class T, int D>
struct DecodeConfig {
  static_assert(D % 16 == 0, "head dims are multiples of the 16-wide mma k step");
  static constexpr int kChunkElems = 16 / sizeof(T);  // elements per 16-byte copy
  static constexpr int kChunksPerRow = D / kChunkElems;
  // One 16-byte pad per shared-memory row: the 8 row addresses of an ldmatrix hit 8 different bank groups.
  static constexpr int kRowElems = D + kChunkElems;
  static constexpr int kRowBytes = kRowElems * static_cast<int>(sizeof(T));
  // Each warp owns 16 tokens (one mma tile) of every pipeline tile; wide rows get fewer warps per tile
  // so a stage stays under 48 KB.
  static constexpr int kWarps = 64 * 2 * kRowBytes <= 48 * 1024 ? 4 : 2;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kTileTokens = 16 * kWarps;
  static constexpr int kStageBytes = 2 * kTileTokens * kRowBytes;  // K and V
#ifndef PAGEDATTN_TUNE_SMEM_BUDGET_KB
#define PAGEDATTN_TUNE_SMEM_BUDGET_KB 110
#endif
  static constexpr int kSmemBudget = PAGEDATTN_TUNE_SMEM_BUDGET_KB * 1024;  // 110 KB: two CTAs per SM
  static constexpr int kStages = kSmemBudget / kStageBytes < 2   ? 2
                                 : kSmemBudget / kStageBytes > 6 ? 6
                                                                 : kSmemBudget / kStageBytes;
  static constexpr int kQOffset = kStages * kStageBytes;
  static constexpr int kTableOffset = kQOffset + kHeadsPerCta * kRowBytes;
  static constexpr int kSmemBytes = kTableOffset + kMaxItemPages * 4;
  // After the main loop the stage buffers hold each warp's partial state for the cross-warp merge.
  static constexpr int kCombinePitch = D + 8;  // floats; the pad spreads a warp's float2 stores over all banks
  static constexpr int kCombineBytes = kWarps * kHeadsPerCta * (kCombinePitch + 2) * 4;
  static_assert(kCombineBytes <= kQOffset, "the cross-warp merge reuses the pipeline's shared memory");
  // Keep Q's mma fragments in registers up to D = 128; wider heads reload them from shared memory.
  static constexpr bool kQInRegisters = D <= 128;
};

}  // namespace pagedattn::cuda
