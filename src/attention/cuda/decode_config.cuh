// Compile-time shape of the decode kernel for one (dtype, head dim): the layout of a row in shared memory
// (DecodeRows, all the tile math needs), then for one occupancy (CTAs per SM) the warps, tile, pipeline
// stages and shared-memory layout (DecodeConfig). The PAGEDATTN_TUNE_* macros exist for benchmark builds
// that compare variants.
#pragma once

#include "attention/cuda/decode_params.h"

#ifndef PAGEDATTN_TUNE_WARPS
#define PAGEDATTN_TUNE_WARPS 4
#endif
#ifndef PAGEDATTN_TUNE_MAX_STAGES
#define PAGEDATTN_TUNE_MAX_STAGES 4
#endif
#ifndef PAGEDATTN_TUNE_SMEM_BUDGET_KB
#define PAGEDATTN_TUNE_SMEM_BUDGET_KB 110
#endif
#ifndef PAGEDATTN_TUNE_DEEP_MAX_STAGES
#define PAGEDATTN_TUNE_DEEP_MAX_STAGES 8
#endif

namespace pagedattn::cuda {

template <class T, int D>
struct DecodeRows {
  static_assert(D % 16 == 0, "head dims are multiples of the 16-wide mma k step");
  static constexpr int kChunkElems = 16 / sizeof(T);  // elements per 16-byte copy
  static constexpr int kChunksPerRow = D / kChunkElems;
  // Rows that are whole 128-byte lines (16-bit types, D = 64/128/256) are stored unpadded with their 16-byte
  // chunks XOR-swizzled by row % 8: each 128-byte line a cp.async reads lands in one aligned 128-byte piece of
  // shared memory (behind a padded row it would straddle two, and the L2 served every line as two requests),
  // and the 8 row addresses of an ldmatrix still hit 8 different bank groups. Other rows (D = 80/96, f32) get
  // one 16-byte pad instead.
  static constexpr bool kSwizzled = sizeof(T) == 2 && D * 2 % 128 == 0;
  static constexpr int kRowElems = kSwizzled ? D : D + kChunkElems;
  static constexpr int kRowBytes = kRowElems * static_cast<int>(sizeof(T));
  // Element offset of 16-byte chunk `chunk` of row `row` in a tile.
  __device__ static int offset(int row, int chunk) {
    return row * kRowElems + (kSwizzled ? chunk ^ (row % 8) : chunk) * kChunkElems;
  }
  // Keep Q's mma fragments in registers up to D = 128 (wider heads reload them from shared memory; f32 has
  // no fragments). Then Q only passes through shared memory once, in the last stage slot, before the
  // pipeline first fills that slot.
  static constexpr bool kQInRegisters = sizeof(T) == 2 && D <= 128;
};

// kCtasPerSm 2: the default. 1 ("deep"): a grid that fits on the SMs one CTA each gets the whole shared
// memory for a deeper pipeline: a lone CTA per SM otherwise keeps only two tiles (64 KB at D = 128) in
// flight, too few to cover the latency of pages scattered over the cache.
template <class T, int D, int kCtasPerSm>
struct DecodeConfig : DecodeRows<T, D> {
  static_assert(kCtasPerSm == 1 || kCtasPerSm == 2);
  using Rows = DecodeRows<T, D>;
  using Rows::kChunkElems, Rows::kChunksPerRow, Rows::kRowElems, Rows::kRowBytes, Rows::kQInRegisters;
  // Each warp owns 16 tokens (one mma tile) of every pipeline tile; wide rows get fewer warps per tile
  // so that a stage stays under 48 KB.
  static constexpr int kWarps = PAGEDATTN_TUNE_WARPS * 32 * kRowBytes <= 48 * 1024       ? PAGEDATTN_TUNE_WARPS
                                : PAGEDATTN_TUNE_WARPS > 1 && PAGEDATTN_TUNE_WARPS * 16 * kRowBytes <= 48 * 1024
                                    ? PAGEDATTN_TUNE_WARPS / 2
                                    : 1;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kTileTokens = 16 * kWarps;
  static constexpr int kStageBytes = 2 * kTileTokens * kRowBytes;  // K and V
  // The cache slots of the rows of the next tiles to copy, looked up once per row instead of once per
  // 16-byte copy: two tiles' worth (the one being issued, the one being looked up).
  static constexpr int kRowSlotBytes = 2 * kTileTokens * 4;
  // Stages: what the budget (110 KB per CTA at two per SM, 220 KB alone) leaves after the block-table slice,
  // the row slots and Q.
  static constexpr int kStageBudget = PAGEDATTN_TUNE_SMEM_BUDGET_KB * 1024 * (2 / kCtasPerSm) -
                                      kMaxItemPages * 4 - kRowSlotBytes -
                                      (kQInRegisters ? 0 : kHeadsPerCta * kRowBytes);
  static constexpr int kMaxStages = kCtasPerSm == 1 ? PAGEDATTN_TUNE_DEEP_MAX_STAGES : PAGEDATTN_TUNE_MAX_STAGES;
  static constexpr int kStages = kStageBudget / kStageBytes < 2            ? 2
                                 : kStageBudget / kStageBytes > kMaxStages ? kMaxStages
                                                                           : kStageBudget / kStageBytes;
  static constexpr int kQOffset = kQInRegisters ? (kStages - 1) * kStageBytes : kStages * kStageBytes;
  static constexpr int kRowSlotsOffset = kStages * kStageBytes + (kQInRegisters ? 0 : kHeadsPerCta * kRowBytes);
  static constexpr int kTableOffset = kRowSlotsOffset + kRowSlotBytes;
  static constexpr int kSmemBytes = kTableOffset + kMaxItemPages * 4;
  static_assert(kHeadsPerCta * kRowBytes <= kStageBytes, "Q fits a stage slot");
  // After the main loop the stage buffers hold each warp's partial state for the cross-warp merge.
  static constexpr int kCombinePitch = D + 8;  // floats; the pad spreads a warp's float2 stores over all banks
  static constexpr int kCombineBytes = kWarps * kHeadsPerCta * (kCombinePitch + 2) * 4;
  static_assert(kCombineBytes <= kStages * kStageBytes, "the cross-warp merge reuses the pipeline's shared memory");
};

}  // namespace pagedattn::cuda
