// Paged prefill attention on tensor cores (FlashAttention-2 style), f16/bf16. A work unit is a tile of M
// packed query rows of one sequence and one KV head, a row being a (query token, query head of the KV
// head's GQA group) pair, so each K/V tile gathered from the pages serves the whole group. The 4 warps own
// M/4 rows each; K/V tiles of N keys stream through a two-stage cp.async pipeline of 16-byte copies whose
// addresses come from the block table (one lookup per key row and tile, each block id checked); S = QK^T
// and O += PV run on mma.sync m16n8k16 with f32 accumulators and the online softmax in registers.
// Positions past a row's causal limit or the context are masked; positions past the context are never
// read (zero-filled), so nothing from unused cache slots reaches the output.
// Bound: tensor-core math for long rows (4·M·N·D flops per 2·N·D·2 bytes of K/V per tile).
#pragma once

#include <math_constants.h>

#include <type_traits>

#include "attention/cuda/cuda_types.cuh"
#include "attention/cuda/device_error.cuh"
#include "attention/cuda/prefill_config.cuh"
#include "attention/cuda/prefill_key_slots.cuh"
#include "attention/cuda/prefill_softmax.cuh"
#include "attention/cuda/prefill_units.cuh"
#include "attention/cuda/ptx.cuh"

namespace pagedattn::cuda {

template <class T, int D>
struct PrefillTile {
  using Cfg = PrefillConfig<T, D>;
  static constexpr int M = Cfg::kTileRows, N = Cfg::kTileKeys, MT = Cfg::kMTiles;
  static constexpr int kThreads = Cfg::kThreads;
  static constexpr bool kRescaleVote = PAGEDATTN_TUNE_PREFILL_RESCALE_VOTE;
  // kSplitMask: unmasked and masked K/V tiles in two loops compiled without and with the mask. One loop
  // (the mask behind a uniform branch) measured faster on short rows (7% at 256 tokens, twice the code
  // otherwise) and within 2% on 4k-8k rows.
  static constexpr bool kSplitMask = PAGEDATTN_TUNE_PREFILL_SPLIT_MASK;

  const PrefillParams& p;
  unsigned char* smem;
  int tid, warp, lane;

  // Shared-memory addresses for ldmatrix: a tile's base plus this lane's row/column offset, to which the
  // unrolled loops add compile-time offsets. A-operand order (rows 0-7 / 8-15 x columns 0-7 / 8-15) for Q
  // and V^T, B-operand order (rows 0-7 x columns 0-7 / 8-15, then rows 8-15) for K.
  __device__ uint32_t lane_a_offset() const {
    return ((lane / 8) % 2 * 8 + lane % 8) * Cfg::kRowBytes + lane / 16 * 16;
  }
  __device__ uint32_t lane_b_offset() const { return (lane / 16 * 8 + lane % 8) * Cfg::kRowBytes + (lane / 8) % 2 * 16; }
  __device__ uint32_t stage_address(int stage) const {
    return ptx::smem_address(smem) + Cfg::kStageOffset + stage * 2 * Cfg::kKvTileBytes;
  }

  template <class ClaimNext>
  __device__ void run(const PrefillWorkItem& item, int kv_head, ClaimNext&& claim_next) {
    const int rows = item.rows;  // packed rows of this tile (the builder checked them)
    const PrefillUnitShape shape(item, p.group_size, p.causal);
    const int kv_len = shape.kv_len();
    const int num_kv_tiles = shape.num_kv_tiles(N);
    const int first_masked_tile = shape.first_masked_tile(N);

    // The cache slots of each K/V tile's keys, fetched a tile ahead (prefill_key_slots.cuh).
    const PrefillKeySlots<N> keys{p, reinterpret_cast<int*>(smem + Cfg::kSlotOffset), item.seq, kv_len, tid};
    keys.fetch(0);
    keys.fetch(1);
    ptx::cp_async_commit();

    // Q tile (zero rows pad it to M).
    const int copy_row = tid / Cfg::kChunksPerRow, copy_col = tid % Cfg::kChunksPerRow;
    const bool copier = copy_row < Cfg::kCopyRows;
    if (copier)
      copy_query_chunks<T>(p, item, kv_head, copy_row, copy_col, Cfg::kCopyRows, M,
                           ptx::smem_address(smem) + copy_row * Cfg::kRowBytes + copy_col * 16,
                           Cfg::kCopyRows * Cfg::kRowBytes);
    ptx::cp_async_commit();

    int row_limit[2 * MT];  // this thread's rows: 16 mt + 8 hh + lane / 4 (-1: a padding row)
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        const int r = warp * Cfg::kWarpRows + 16 * mt + 8 * hh + lane / 4;
        row_limit[2 * mt + hh] = r < rows ? shape.limit(r) : -1;
      }

    const uint32_t row_bytes = static_cast<uint32_t>(p.num_kv_heads) * D * sizeof(T);
    const uint64_t k_column = reinterpret_cast<uint64_t>(static_cast<const T*>(p.key_cache) + kv_head * D + copy_col * Cfg::kChunkElems);
    const uint64_t v_column = reinterpret_cast<uint64_t>(static_cast<const T*>(p.value_cache) + kv_head * D + copy_col * Cfg::kChunkElems);
    // K/V rows of `tile` into its stage (the tile's slots are ready); slot -1 rows are zero-filled.
    const auto issue_tile = [&](int tile) {
      if (!copier) return;
      const int* slots = keys.slots(tile);
      const uint32_t sk = stage_address(tile & 1) + copy_row * Cfg::kRowBytes + copy_col * 16;
#pragma unroll
      for (int k = 0; k < (N + Cfg::kCopyRows - 1) / Cfg::kCopyRows; ++k) {
        const int r = copy_row + k * Cfg::kCopyRows;
        if (N % Cfg::kCopyRows != 0 && r >= N) break;
        const int slot = slots[r];
        const uint32_t dst = sk + k * Cfg::kCopyRows * Cfg::kRowBytes;
        ptx::cp_async_row_16(dst, k_column, static_cast<uint32_t>(slot), row_bytes);  // -1: kNoCacheSlot
        ptx::cp_async_row_16(dst + Cfg::kKvTileBytes, v_column, static_cast<uint32_t>(slot), row_bytes);
      }
    };

    // Prologue: tile 0 in flight.
    ptx::cp_async_wait<1>();  // this thread's ids of tiles 0 and 1 (the Q copies may still fly)
    keys.resolve(0);
    keys.resolve(1);
    __syncthreads();
    issue_tile(0);
    ptx::cp_async_commit();

    float o[MT][D / 8][4];
    float m[2 * MT], l[2 * MT];  // running max (exp2 domain) and this lane's share of the running sum
#pragma unroll
    for (int i = 0; i < 2 * MT; ++i) m[i] = -CUDART_INF_F, l[i] = 0.0f;
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int t = 0; t < D / 8; ++t)
#pragma unroll
        for (int e = 0; e < 4; ++e) o[mt][t][e] = 0.0f;

    const auto step = [&](int tile, auto may_mask, bool masked) {
      const int stage = tile & 1;
      ptx::cp_async_wait<0>();  // this thread's copies of the tile (and Q, and tile + 1's ids) have landed
      if (tile > 0) keys.resolve(tile + 1);
      __syncthreads();  // everyone's copies have landed; everyone is done with tile - 1's stage and slots
      if (tile + 1 < num_kv_tiles) issue_tile(tile + 1);
      keys.fetch(tile + 2);  // into the slot buffer of tile, read for the last time just above
      ptx::cp_async_commit();
      if (tile == num_kv_tiles - 1) claim_next();  // the atomic flies while the last tile computes

      float s[MT][N / 8][4];
      scores(s, stage_address(stage));
      softmax_step<decltype(may_mask)::value>(s, o, m, l, masked, tile * N, row_limit);
      accumulate(o, s, stage_address(stage) + Cfg::kKvTileBytes);
    };
    if constexpr (kSplitMask) {
      // Tiles every row sees whole, then the ones that need the mask (compiled without and with it).
      const int unmasked_tiles = min(first_masked_tile, num_kv_tiles);
      for (int tile = 0; tile < unmasked_tiles; ++tile) step(tile, std::false_type{}, false);
      for (int tile = unmasked_tiles; tile < num_kv_tiles; ++tile) step(tile, std::true_type{}, true);
    } else {
      for (int tile = 0; tile < num_kv_tiles; ++tile) step(tile, std::true_type{}, tile >= first_masked_tile);
    }
    ptx::cp_async_wait<0>();

    // Normalize and store the live rows. Each warp stages its rows as T in its own rows of the Q tile (no
    // other warp reads them, and it is done with them), then writes whole 16-byte pieces of each row:
    // 4-byte stores straight from the accumulators would write every 32-byte sector in two halves.
    const uint32_t staged = ptx::smem_address(smem) + warp * Cfg::kWarpRows * Cfg::kRowBytes;
    __syncwarp();  // every lane's ldmatrix reads of these rows are done
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        const int i = 2 * mt + hh;
        float sum = l[i] + __shfl_xor_sync(0xffffffffu, l[i], 1);
        sum += __shfl_xor_sync(0xffffffffu, sum, 2);
        const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
        const uint32_t row = staged + (16 * mt + 8 * hh + lane / 4) * Cfg::kRowBytes + 4 * (lane % 4);
#pragma unroll
        for (int t = 0; t < D / 8; ++t)
          ptx::st_shared_b32(row + 16 * t, ptx::pack2<T>(o[mt][t][2 * hh] * inv, o[mt][t][2 * hh + 1] * inv));
      }
    __syncwarp();
    // Lane = (row, 16-byte column) of a step of kOutRows rows (lanes past whole rows idle).
    constexpr int kOutRows = 32 / Cfg::kChunksPerRow;
    const int out_row = lane / Cfg::kChunksPerRow, out_col = lane % Cfg::kChunksPerRow;
    if (out_row < kOutRows) {
      T* out = static_cast<T*>(p.out) + item.first_row * p.o_stride_token + kv_head * p.group_size * p.o_stride_head +
               out_col * Cfg::kChunkElems;
      PackedRowWalk walk(item.row0 + warp * Cfg::kWarpRows + out_row, kOutRows, p.group_size);
      for (int rr = out_row; rr < Cfg::kWarpRows; rr += kOutRows, walk.next()) {
        if (warp * Cfg::kWarpRows + rr >= rows) break;
        *reinterpret_cast<uint4*>(out + walk.token * p.o_stride_token + walk.head * p.o_stride_head) =
            ptx::ld_shared_v4(staged + rr * Cfg::kRowBytes + out_col * 16);
      }
    }
  }

  // s[mt][n][e] = q(row 16 mt + lane/4 + 8(e/2)) . k(key 8n + 2(lane%4) + e%2), mma accumulator layout.
  __device__ void scores(float (&s)[MT][N / 8][4], uint32_t k_address) const {
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int n = 0; n < N / 8; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[mt][n][e] = 0.0f;
    const uint32_t q = ptx::smem_address(smem) + warp * Cfg::kWarpRows * Cfg::kRowBytes + lane_a_offset();
    const uint32_t k = k_address + lane_b_offset();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      uint32_t a[MT][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) ptx::ldmatrix_x4(a[mt], q + 16 * mt * Cfg::kRowBytes + kk * 32);
#pragma unroll
      for (int n16 = 0; n16 < N / 16; ++n16) {
        // K rows are the B operand's columns: keys 0-7 / 8-15 x dims kk*16 + 0-7 / 8-15.
        uint32_t b[4];
        ptx::ldmatrix_x4(b, k + n16 * 16 * Cfg::kRowBytes + kk * 32);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          ptx::mma_16816<T>(s[mt][2 * n16], a[mt], b[0], b[1]);
          ptx::mma_16816<T>(s[mt][2 * n16 + 1], a[mt], b[2], b[3]);
        }
      }
    }
  }

  // Masks keys past each row's limit (`masked`: tiles that hold such keys; kMayMask false compiles the mask
  // out) and folds the tile into the running
  // max / sum / output; s becomes the probabilities. m is the max of the raw scores (the scale is positive:
  // prefill_launcher sends other scales to the simple kernel), so each exponent is one FFMA,
  // s * scale_log2 - m * scale_log2. The output is rescaled only when some row of the warp saw its max move
  // (a vote; on long rows the max soon settles): measured 2-7% faster on 4k-8k rows than rescaling always.
  template <bool kMayMask>
  __device__ void softmax_step(float (&s)[MT][N / 8][4], float (&o)[MT][D / 8][4], float (&m)[2 * MT],
                               float (&l)[2 * MT], bool masked, int key0, const int (&row_limit)[2 * MT]) const {
    const float scale = p.scale_log2;
    float correction[2 * MT];
    bool moved = !kRescaleVote;
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int hh = 0; hh < 2; ++hh)
        correction[2 * mt + hh] = softmax_row_step<N, kMayMask>(&s[mt][0][0], hh, m[2 * mt + hh], l[2 * mt + hh], scale,
                                                                masked, key0 + 2 * (lane % 4), row_limit[2 * mt + hh],
                                                                moved);
    if (!kRescaleVote || __any_sync(0xffffffffu, moved)) {
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int t = 0; t < D / 8; ++t)
#pragma unroll
          for (int e = 0; e < 4; ++e) o[mt][t][e] *= correction[2 * mt + e / 2];
    }
  }

  // o += P V: an m16n8 accumulator pair is exactly the A fragment of an m16k16 product, so P never
  // leaves registers; V [key][dim] through transposed ldmatrix is the B operand (k = key, n = dim).
  __device__ void accumulate(float (&o)[MT][D / 8][4], const float (&s)[MT][N / 8][4], uint32_t v_address) const {
    const uint32_t v = v_address + lane_a_offset();
#pragma unroll
    for (int kk = 0; kk < N / 16; ++kk) {
      uint32_t a[MT][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        a[mt][0] = ptx::pack2<T>(s[mt][2 * kk][0], s[mt][2 * kk][1]);
        a[mt][1] = ptx::pack2<T>(s[mt][2 * kk][2], s[mt][2 * kk][3]);
        a[mt][2] = ptx::pack2<T>(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
        a[mt][3] = ptx::pack2<T>(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
      }
#pragma unroll
      for (int dn = 0; dn < D / 16; ++dn) {
        uint32_t b[4];
        ptx::ldmatrix_x4_trans(b, v + kk * 16 * Cfg::kRowBytes + dn * 32);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          ptx::mma_16816<T>(o[mt][2 * dn], a[mt], b[0], b[1]);
          ptx::mma_16816<T>(o[mt][2 * dn + 1], a[mt], b[2], b[3]);
        }
      }
    }
  }
};

template <class T, int D>
__global__ void __launch_bounds__(PrefillConfig<T, D>::kThreads, PrefillConfig<T, D>::kMinCtasPerSm)
    prefill_kernel(const __grid_constant__ PrefillParams p) {
  using Cfg = PrefillConfig<T, D>;
  extern __shared__ __align__(128) unsigned char smem[];
  PrefillTile<T, D> tile{p, smem, static_cast<int>(threadIdx.x), static_cast<int>(threadIdx.x) / 32,
                         static_cast<int>(threadIdx.x) % 32};
  for_each_prefill_unit(p.work, p.num_kv_heads, reinterpret_cast<PrefillUnit*>(smem + Cfg::kUnitOffset),
                        [&](const PrefillWorkItem& item, int kv_head, auto&& claim_next) {
                          tile.run(item, kv_head, claim_next);
                        });
}

}  // namespace pagedattn::cuda
