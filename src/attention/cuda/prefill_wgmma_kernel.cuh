// Paged prefill attention for Hopper (sm_90a), f16/bf16 at D = 128, for short rows (long ones run the
// warp-specialized prefill_wgmma_ws_kernel.cuh: prefill_launch.cuh chooses): prefill_kernel.cuh's work units,
// K/V gather, masking and output, with the tile math on warpgroup MMA. A CTA is two warpgroups, each owning 64
// of the M = 128 packed query rows; K/V tiles of N = 64 keys stream through a two-stage cp.async pipeline into
// 128-byte-swizzled shared tiles (wgmma.cuh), Q stays in shared memory in the same layout. Per tile and
// warpgroup: S = Q K^T by wgmma m64n64k16 (A = Q, B = K, both K-major in shared memory, 8 k-steps over D),
// the online softmax on the f32 accumulators in registers (per warp the same fragment layout as mma.sync's
// m16n8 accumulators), then O += P V by wgmma m64n128k16 with P as bf16/f16 register fragments and V
// [key][dim] as an N-major shared operand. Two CTAs per SM: one's softmax overlaps the other's MMAs, and
// more CTAs in flight hide each short unit's start.
#pragma once

#include <math_constants.h>

#include "attention/cuda/cuda_types.cuh"
#include "attention/cuda/device_error.cuh"
#include "attention/cuda/mbarrier.cuh"
#include "attention/cuda/prefill_kernel.cuh"
#include "attention/cuda/prefill_key_slots.cuh"
#include "attention/cuda/prefill_softmax.cuh"
#include "attention/cuda/prefill_units.cuh"
#include "attention/cuda/prefill_wgmma_output.cuh"
#include "attention/cuda/ptx.cuh"
#include "attention/cuda/wgmma.cuh"

namespace pagedattn::cuda {

// Tiles of M = 128 rows and N = 64 keys, every thread copying.
template <class T>
struct PrefillWgmmaConfig : WgmmaPrefillTiles<T, 64, 256> {
  using Tiles = WgmmaPrefillTiles<T, 64, 256>;
  static constexpr int kWarpGroups = 2;
  static constexpr int kThreads = 128 * kWarpGroups;
  static_assert(Tiles::kTileRows == 64 * kWarpGroups, "each warpgroup owns 64 rows");
  // S and O take 96 accumulator registers: two CTAs fit an SM.
  static constexpr int kMinCtasPerSm = 2;
  static constexpr int kStages = 2;
  // Layout from a 1024-aligned base: Q | stages x (K, V) | key slots of two tiles | two claimed units.
  static constexpr int kStageOffset = Tiles::kQBytes;
  static constexpr int kSlotOffset = kStageOffset + kStages * 2 * Tiles::kKvTileBytes;
  static constexpr int kUnitOffset = kSlotOffset + 2 * Tiles::kTileKeys * 4;
  static constexpr int kSmemBytes = kUnitOffset + 128 + 1024;  // + the alignment of the base
  static_assert(kSmemBytes <= Tiles::kMaxSmemBytes, "the shared memory a CTA may opt in to");
};

template <class T>
struct PrefillWgmmaTile {
  using Cfg = PrefillWgmmaConfig<T>;
  static constexpr int D = Cfg::kHeadDim, M = Cfg::kTileRows, N = Cfg::kTileKeys;
  using MmaS = wgmma::Wgmma<N, T>;
  using MmaO = wgmma::Wgmma<D, T>;

  const PrefillParams& p;
  unsigned char* smem;  // 1024-aligned
  int tid, group_index, warp, lane;  // warp: within the warpgroup

  __device__ uint32_t base_address() const { return ptx::smem_address(smem); }
  __device__ uint32_t stage_address(int stage) const {
    return base_address() + Cfg::kStageOffset + stage * 2 * Cfg::kKvTileBytes;
  }

  template <class ClaimNext>
  __device__ void run(const PrefillWorkItem& item, int kv_head, ClaimNext&& claim_next) {
    const int rows = item.rows;
    const PrefillUnitShape shape(item, p.group_size, p.causal);
    const int kv_len = shape.kv_len();
    const int num_kv_tiles = shape.num_kv_tiles(N);
    const int first_masked_tile = shape.first_masked_tile(N);

    // Block ids as in prefill_kernel.
    const PrefillKeySlots<N> keys{p, reinterpret_cast<int*>(smem + Cfg::kSlotOffset), item.seq, kv_len, tid};
    keys.fetch(0);
    keys.fetch(1);
    ptx::cp_async_commit();

    // Q tile into its swizzled layout (zero rows pad it to M). Each thread keeps one 16-byte column chunk;
    // its rows step by kCopyRows (a multiple of 8), so the swizzled column is the same for all of them.
    const int copy_row = tid / Cfg::kChunksPerRow, copy_col = tid % Cfg::kChunksPerRow;
    copy_query_chunks<T>(p, item, kv_head, copy_row, copy_col, Cfg::kCopyRows, M,
                         base_address() + wgmma::swizzled_offset(M, copy_row, copy_col), Cfg::kCopyRows * 128);
    ptx::cp_async_commit();

    // This thread's two rows: 64 group + 16 warp + lane / 4 (+ 8).
    const int my_row = 64 * group_index + 16 * warp + lane / 4;
    int row_limit[2];
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) row_limit[hh] = my_row + 8 * hh < rows ? shape.limit(my_row + 8 * hh) : -1;

    const uint32_t row_bytes = static_cast<uint32_t>(p.num_kv_heads) * D * sizeof(T);
    const uint64_t k_column = reinterpret_cast<uint64_t>(static_cast<const T*>(p.key_cache) + kv_head * D + copy_col * 8);
    const uint64_t v_column = reinterpret_cast<uint64_t>(static_cast<const T*>(p.value_cache) + kv_head * D + copy_col * 8);
    const uint32_t kv_dst = wgmma::swizzled_offset(N, copy_row, copy_col);
    const auto issue_tile = [&](int tile) {
      const int* slots = keys.slots(tile);
      const uint32_t sk = stage_address(tile % Cfg::kStages) + kv_dst;
#pragma unroll
      for (int k = 0; k < N / Cfg::kCopyRows; ++k) {
        const int slot = slots[copy_row + k * Cfg::kCopyRows];
        const uint32_t dst = sk + k * Cfg::kCopyRows * 128;
        ptx::cp_async_row_16(dst, k_column, static_cast<uint32_t>(slot), row_bytes);  // -1: kNoCacheSlot
        ptx::cp_async_row_16(dst + Cfg::kKvTileBytes, v_column, static_cast<uint32_t>(slot), row_bytes);
      }
    };

    ptx::cp_async_wait<1>();
    keys.resolve(0);
    keys.resolve(1);
    __syncthreads();
    issue_tile(0);
    ptx::cp_async_commit();

    float o[D / 2];
    float m[2] = {-CUDART_INF_F, -CUDART_INF_F}, l[2] = {0.0f, 0.0f};
#pragma unroll
    for (int i = 0; i < D / 2; ++i) o[i] = 0.0f;

    // Descriptors: the start-address field (bits 0-13, address >> 4) takes compile-time offsets by plain
    // addition (shared addresses stay below 256 KiB). Q's rows of this warpgroup; K and V of stage 0.
    const uint64_t q_desc = wgmma::descriptor(base_address() + group_index * 64 * 128, 16, 1024);
    const uint64_t k_desc = wgmma::descriptor(stage_address(0), 16, 1024);
    const uint64_t v_desc = wgmma::descriptor(stage_address(0) + Cfg::kKvTileBytes, N * 128, 1024);
    constexpr uint64_t kStageStep = (2 * Cfg::kKvTileBytes) >> 4;

    for (int tile = 0; tile < num_kv_tiles; ++tile) {
      const int stage = tile % Cfg::kStages;
      ptx::cp_async_wait<0>();
      if (tile > 0) keys.resolve(tile + 1);
      wgmma::fence_proxy_async();  // this thread's copies, visible to the wgmma reads after the barrier
      __syncthreads();
      if (tile + 1 < num_kv_tiles) issue_tile(tile + 1);
      keys.fetch(tile + 2);
      ptx::cp_async_commit();
      if (tile == num_kv_tiles - 1) claim_next();

      // S = Q K^T: k-step kk reads dims 16 kk.. of column half kk / 4.
      float s[N / 2];
      wgmma::fence();
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        const uint64_t a = q_desc + (((kk / 4) * M * 128 + (kk % 4) * 32) >> 4);
        const uint64_t b = k_desc + stage * kStageStep + (((kk / 4) * N * 128 + (kk % 4) * 32) >> 4);
        MmaS::template ss<0>(s, a, b, kk > 0);
      }
      wgmma::commit();
      wgmma::wait<0>();
      wgmma::pin(s);

      // Online softmax: s[4 n + 2 hh + e] is row my_row + 8 hh, key tile * N + 8 n + 2 (lane % 4) + e.
      const float scale = p.scale_log2;
      const bool masked = tile >= first_masked_tile;
      const int key0 = tile * N + 2 * (lane % 4);
      float correction[2];
      bool moved = false;
#pragma unroll
      for (int hh = 0; hh < 2; ++hh)
        correction[hh] = softmax_row_step<N, true>(s, hh, m[hh], l[hh], scale, masked, key0, row_limit[hh], moved);
      if (__any_sync(0xffffffffu, moved)) {
#pragma unroll
        for (int i = 0; i < D / 2; ++i) o[i] *= correction[(i / 2) % 2];
      }

      // O += P V: P's m16n8 accumulator pairs are the register A fragments (keys 16 kk ..), V rows
      // 16 kk .. of both column halves.
      uint32_t a[N / 16][4];
#pragma unroll
      for (int kk = 0; kk < N / 16; ++kk)
#pragma unroll
        for (int i = 0; i < 4; ++i) a[kk][i] = ptx::pack2<T>(s[8 * kk + 2 * i], s[8 * kk + 2 * i + 1]);
      wgmma::fence();
#pragma unroll
      for (int kk = 0; kk < N / 16; ++kk)
        MmaO::template rs<1>(o, a[kk], v_desc + stage * kStageStep + ((kk * 16 * 128) >> 4), true);
      wgmma::commit();
      wgmma::wait<0>();  // before the next tile's barrier: its copies overwrite this stage
      wgmma::pin(o);
    }
    ptx::cp_async_wait<0>();

    // Normalize; each warp stages its 16 rows as T in its own (swizzled) rows of the Q tile, once its whole
    // warpgroup is done reading Q, then stores whole 16-byte pieces of each row.
    mbarrier::named_sync(1 + group_index, 128);
    stage_normalized_rows<T, D>(base_address(), M, my_row, lane, o, l);
    __syncwarp();
    const int out_row = lane / Cfg::kChunksPerRow, out_col = lane % Cfg::kChunksPerRow;
    constexpr int kOutRows = 32 / Cfg::kChunksPerRow;
    const int warp_row0 = 64 * group_index + 16 * warp;
    T* out = static_cast<T*>(p.out) + item.first_row * p.o_stride_token + kv_head * p.group_size * p.o_stride_head +
             out_col * 8;
    PackedRowWalk walk(item.row0 + warp_row0 + out_row, kOutRows, p.group_size);
    for (int rr = out_row; rr < 16; rr += kOutRows, walk.next()) {
      if (warp_row0 + rr >= rows) break;
      *reinterpret_cast<uint4*>(out + walk.token * p.o_stride_token + walk.head * p.o_stride_head) =
          ptx::ld_shared_v4(base_address() + wgmma::swizzled_offset(M, warp_row0 + rr, out_col));
    }
  }
};

template <class T>
__global__ void __launch_bounds__(PrefillWgmmaConfig<T>::kThreads, PrefillWgmmaConfig<T>::kMinCtasPerSm)
    prefill_wgmma_kernel(const __grid_constant__ PrefillParams p) {
#if PAGEDATTN_WGMMA_DEVICE
  using Cfg = PrefillWgmmaConfig<T>;
  unsigned char* smem = wgmma::atom_aligned_dynamic_smem();
  const int tid = static_cast<int>(threadIdx.x);
  PrefillWgmmaTile<T> tile{p, smem, tid, tid / 128, tid % 128 / 32, tid % 32};
  for_each_prefill_unit(p.work, p.num_kv_heads, reinterpret_cast<PrefillUnit*>(smem + Cfg::kUnitOffset),
                        [&](const PrefillWorkItem& item, int kv_head, auto&& claim_next) {
                          tile.run(item, kv_head, claim_next);
                        });
#endif
}

}  // namespace pagedattn::cuda
