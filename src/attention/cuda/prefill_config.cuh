// Compile-time shape of the tensor-core prefill kernel for one (16-bit dtype, head dim): warps, the tile of
// packed query rows (M) and keys (N), pipeline stages and the shared-memory layout. The
// PAGEDATTN_TUNE_PREFILL_* macros (head dims <= 128) exist for benchmark builds that compare variants.
#pragma once

#include "attention/cuda/prefill_units.cuh"

#ifndef PAGEDATTN_TUNE_PREFILL_MTILES
#define PAGEDATTN_TUNE_PREFILL_MTILES 2
#endif
#ifndef PAGEDATTN_TUNE_PREFILL_KEYS
#define PAGEDATTN_TUNE_PREFILL_KEYS 64
#endif
#ifndef PAGEDATTN_TUNE_PREFILL_MIN_CTAS
#define PAGEDATTN_TUNE_PREFILL_MIN_CTAS 2
#endif
#ifndef PAGEDATTN_TUNE_PREFILL_RESCALE_VOTE
#define PAGEDATTN_TUNE_PREFILL_RESCALE_VOTE 1
#endif
#ifndef PAGEDATTN_TUNE_PREFILL_SPLIT_MASK
#define PAGEDATTN_TUNE_PREFILL_SPLIT_MASK 0
#endif

namespace pagedattn::cuda {

template <class T, int D>
struct PrefillConfig {
  static_assert(sizeof(T) == 2, "the tensor-core prefill kernel takes f16/bf16 (f32 runs prefill_simple_kernel)");
  static_assert(D % 16 == 0, "head dims are multiples of the 16-wide mma k step");
  static constexpr int kWarps = 4;
  static constexpr int kThreads = 32 * kWarps;
  // Each warp owns kMTiles 16-row mma tiles of the query tile. Up to D = 128 that is 32 rows (the O
  // accumulator takes 128 registers per thread at D = 128); at D = 256 it is 16 rows, with a narrower
  // key tile, so that two CTAs still fit one SM.
  static constexpr int kMTiles = D <= 128 ? PAGEDATTN_TUNE_PREFILL_MTILES : 1;
  static constexpr int kWarpRows = 16 * kMTiles;
  static constexpr int kTileRows = kWarps * kWarpRows;                      // M: packed (token, head) rows per tile
  static constexpr int kTileKeys = D <= 128 ? PAGEDATTN_TUNE_PREFILL_KEYS : 32;  // N: keys per K/V tile
  static constexpr int kStages = 2;  // K/V tiles in flight: one computed, one loading
  static constexpr int kMinCtasPerSm = D <= 128 ? PAGEDATTN_TUNE_PREFILL_MIN_CTAS : 2;

  static constexpr int kChunkElems = 16 / sizeof(T);  // elements per 16-byte copy
  static constexpr int kChunksPerRow = D / kChunkElems;
  // One 16-byte pad per shared-memory row: the 8 row addresses of an ldmatrix hit 8 different bank groups.
  static constexpr int kRowElems = D + kChunkElems;
  static constexpr int kRowBytes = kRowElems * static_cast<int>(sizeof(T));
  // Tile copies: each thread keeps one 16-byte column of a row and steps down kCopyRows rows per pass
  // (threads past kCopyRows whole rows idle when D / 8 does not divide the block).
  static constexpr int kCopyRows = kThreads / kChunksPerRow;

  // Layout: Q tile | stages x (K tile, V tile) | key slots of two tiles | two claimed work units.
  static constexpr int kQBytes = kTileRows * kRowBytes;
  static constexpr int kKvTileBytes = kTileKeys * kRowBytes;
  static constexpr int kStageOffset = kQBytes;
  static constexpr int kSlotOffset = kStageOffset + kStages * 2 * kKvTileBytes;
  static constexpr int kUnitOffset = kSlotOffset + 2 * kTileKeys * 4;
  static constexpr int kSmemBytes = kUnitOffset + 128;
  static_assert(2 * sizeof(PrefillUnit) <= 128 && kUnitOffset % 16 == 0, "two unit slots at the end");
};

// The tiles of the sm_90a (wgmma) prefill kernels, f16/bf16 at D = 128: the work list's M packed query rows
// and N = kKeys keys, in 128-byte-swizzled layout (wgmma.cuh), copied by kCopiers threads that each keep one
// 16-byte column chunk and step down kCopyRows rows per pass.
template <class T, int kKeys, int kCopiers>
struct WgmmaPrefillTiles {
  static_assert(sizeof(T) == 2, "wgmma prefill takes f16/bf16");
  static constexpr int kHeadDim = 128;
  static constexpr int kTileRows = PrefillConfig<T, 128>::kTileRows;  // M: one work list serves every kernel
  static constexpr int kTileKeys = kKeys;                             // N
  static constexpr int kChunksPerRow = kHeadDim / 8;
  static constexpr int kCopyRows = kCopiers / kChunksPerRow;
  static constexpr int kRowBytes = kHeadDim * 2;
  static constexpr int kQBytes = kTileRows * kRowBytes;
  static constexpr int kKvTileBytes = kTileKeys * kRowBytes;
  static constexpr int kMaxSmemBytes = 227 * 1024;  // the most dynamic shared memory an sm_90 CTA may opt in to
  static_assert(kQBytes % 1024 == 0 && kKvTileBytes % 1024 == 0, "swizzle atoms stay 1024-aligned");
};

}  // namespace pagedattn::cuda
