// Paged prefill attention for Hopper (sm_90a), f16/bf16 at D = 128, warp-specialized (the structure of
// FlashAttention-3): prefill_kernel.cuh's work units, masking and output, with tiles of M = 128 packed query
// rows and N = 128 keys. A CTA is three warpgroups:
//  - a copy warpgroup claims the units, looks the keys' pages up in the block table and copies Q (two
//    buffers), then K and V tile by tile, with cp.async into 128-byte-swizzled shared tiles (wgmma.cuh) of a
//    ring of stages each; its copies' landing completes the stage's "full" mbarrier, so it never waits for them;
//  - two math warpgroups own 64 rows each: S = Q K^T (wgmma, both operands in shared memory), the online
//    softmax in registers, O += P V (P from registers). Each issues tile t's S together with tile t - 1's
//    P V, then computes tile t's softmax while both run; the two take turns at issuing (named barriers),
//    so one's softmax overlaps the other's products. A K (V) stage is handed back as soon as its last
//    product has read it.
// Nothing waits on a whole-CTA barrier after the start; the copy warpgroup runs ahead, across units too.
// The output is staged through the unit's Q tile and stored in 16-byte pieces.
#pragma once

#include <math_constants.h>

#include <type_traits>

#include "attention/cuda/cuda_types.cuh"
#include "attention/cuda/device_error.cuh"
#include "attention/cuda/mbarrier.cuh"
#include "attention/cuda/prefill_config.cuh"
#include "attention/cuda/prefill_key_slots.cuh"
#include "attention/cuda/prefill_softmax.cuh"
#include "attention/cuda/prefill_units.cuh"
#include "attention/cuda/prefill_wgmma_output.cuh"
#include "attention/cuda/ptx.cuh"
#include "attention/cuda/wgmma.cuh"

// Stage and Q-buffer counts, overridable for benchmark builds that compare variants.
#ifndef PAGEDATTN_TUNE_WS_K_STAGES
#define PAGEDATTN_TUNE_WS_K_STAGES 3
#endif
#ifndef PAGEDATTN_TUNE_WS_V_STAGES
#define PAGEDATTN_TUNE_WS_V_STAGES 2
#endif
#ifndef PAGEDATTN_TUNE_WS_Q_BUFFERS
#define PAGEDATTN_TUNE_WS_Q_BUFFERS 2
#endif

namespace pagedattn::cuda {

// Tiles of M = 128 rows and N = 128 keys, the copy warpgroup copying.
template <class T>
struct PrefillWsConfig : WgmmaPrefillTiles<T, 128, 128> {
  using Tiles = WgmmaPrefillTiles<T, 128, 128>;
  static constexpr int kMathThreads = 256, kCopyThreads = 128;
  static_assert(Tiles::kTileRows == 64 * kMathThreads / 128, "each math warpgroup owns 64 rows");
  static constexpr int kThreads = kMathThreads + kCopyThreads;
  // setmaxnreg moves registers within the CTA's allocation at launch (168 per thread: 64K / 384 threads,
  // rounded down to a multiple of 8): the math warpgroups hold S, P, O (160) and addresses; the copy
  // warpgroup's gather spilled about 30 values to local memory at 40 (no spills at 56). Asking for more than
  // the launch allocation leaves the math warpgroups waiting forever.
  static constexpr int kCopyRegisters = 56, kMathRegisters = 224;
  static_assert(kCopyRegisters * kCopyThreads + kMathRegisters * kMathThreads <= 65536 / kThreads / 8 * 8 * kThreads,
                "the registers the CTA holds");
  // K and V stages, and Q tiles (the next unit's Q lands while this unit's last tiles run). The shared memory
  // holds 224 KB of them. On an H200 (bf16 Hq 32 Hkv 8, block 16) three K stages ran 1-2.5% faster than two
  // (the math warpgroups waited on K and V "full" barriers), three K and V stages with one Q tile 7-10% slower.
  static constexpr int kStagesK = PAGEDATTN_TUNE_WS_K_STAGES, kStagesV = PAGEDATTN_TUNE_WS_V_STAGES;
  static constexpr int kQBuffers = PAGEDATTN_TUNE_WS_Q_BUFFERS;
  // Layout from a 1024-aligned base: Q buffers | K stages | V stages | mbarriers | the two unit slots.
  static constexpr int kKOffset = kQBuffers * Tiles::kQBytes;
  static constexpr int kVOffset = kKOffset + kStagesK * Tiles::kKvTileBytes;
  static constexpr int kBarrierOffset = kVOffset + kStagesV * Tiles::kKvTileBytes;
  // mbarriers (index): per K stage full / empty, per V stage full / empty, per Q buffer full / empty, per
  // unit slot full / empty.
  static constexpr int kFullK = 0, kEmptyK = kStagesK, kFullV = 2 * kStagesK, kEmptyV = kFullV + kStagesV;
  static constexpr int kQFull = kEmptyV + kStagesV, kQEmpty = kQFull + kQBuffers, kUnitFull = kQEmpty + kQBuffers;
  static constexpr int kUnitEmpty = kUnitFull + 2;
  static constexpr int kNumBarriers = kUnitEmpty + 2;
  static constexpr int kUnitOffset = kBarrierOffset + (kNumBarriers * 8 + 15) / 16 * 16;
  static constexpr int kSmemBytes = kUnitOffset + 2 * static_cast<int>(sizeof(PrefillUnit)) + 1024;  // + alignment
  // Named barriers: the math warpgroups' turns at issuing products.
  static constexpr int kTurnBarrier = 1;  // + warpgroup
  // Named barriers: a math warpgroup's output staging waits for all of its warps.
  static constexpr int kEpilogueBarrier = 3;  // + warpgroup
  static_assert(kSmemBytes <= Tiles::kMaxSmemBytes, "the shared memory a CTA may opt in to");
};

template <class T>
struct PrefillWs {
  using Cfg = PrefillWsConfig<T>;
  static constexpr int D = Cfg::kHeadDim, M = Cfg::kTileRows, N = Cfg::kTileKeys;
  static constexpr int kQBuffers = Cfg::kQBuffers;
  using MmaS = wgmma::Wgmma<N, T>;
  using MmaO = wgmma::Wgmma<D, T>;

  const PrefillParams& p;
  unsigned char* smem;  // 1024-aligned

  __device__ uint32_t base_address() const { return ptx::smem_address(smem); }
  __device__ uint32_t barrier(int index) const { return base_address() + Cfg::kBarrierOffset + 8 * index; }
  // K tiles (kValue false) and V tiles go through rings of their own: tile `position` (counted over all of
  // the CTA's units) takes stage position % stages, its (position / stages)-th use.
  template <bool kValue>
  static constexpr int kRingStages = kValue ? Cfg::kStagesV : Cfg::kStagesK;
  template <bool kValue>
  __device__ static int stage_of(uint32_t position) {
    return static_cast<int>(position % kRingStages<kValue>);
  }
  template <bool kValue>
  __device__ static uint32_t use_parity(uint32_t position) {
    return (position / kRingStages<kValue>) & 1;
  }
  template <bool kValue>
  __device__ uint32_t tile_address(uint32_t position) const {
    return base_address() + (kValue ? Cfg::kVOffset : Cfg::kKOffset) + stage_of<kValue>(position) * Cfg::kKvTileBytes;
  }
  template <bool kValue>
  __device__ uint32_t full_barrier(uint32_t position) const {
    return barrier((kValue ? Cfg::kFullV : Cfg::kFullK) + stage_of<kValue>(position));
  }
  template <bool kValue>
  __device__ uint32_t empty_barrier(uint32_t position) const {
    return barrier((kValue ? Cfg::kEmptyV : Cfg::kEmptyK) + stage_of<kValue>(position));
  }
  __device__ PrefillUnit* unit_slots() const { return reinterpret_cast<PrefillUnit*>(smem + Cfg::kUnitOffset); }

  // Thread 0, before the warpgroups part.
  __device__ void init_barriers() const {
    for (int s = 0; s < Cfg::kStagesK; ++s) {
      mbarrier::init(barrier(Cfg::kFullK + s), Cfg::kCopyThreads);  // each copy thread's landed copies
      mbarrier::init(barrier(Cfg::kEmptyK + s), Cfg::kMathThreads / 32);  // each math warp, done reading
    }
    for (int s = 0; s < Cfg::kStagesV; ++s) {
      mbarrier::init(barrier(Cfg::kFullV + s), Cfg::kCopyThreads);
      mbarrier::init(barrier(Cfg::kEmptyV + s), Cfg::kMathThreads / 32);
    }
    for (int b = 0; b < kQBuffers; ++b) {
      mbarrier::init(barrier(Cfg::kQFull + b), Cfg::kCopyThreads);
      mbarrier::init(barrier(Cfg::kQEmpty + b), Cfg::kMathThreads / 32);
    }
    for (int s = 0; s < 2; ++s) {
      mbarrier::init(barrier(Cfg::kUnitFull + s), 1);  // the claiming thread
      mbarrier::init(barrier(Cfg::kUnitEmpty + s), Cfg::kThreads / 32);  // every warp has read it
    }
  }

  // The unit of the `count`-th claim (every thread of the CTA goes through the same sequence): copy thread 0
  // claims it into slot count % 2 once every warp has read that slot's previous unit.
  __device__ PrefillUnit next_unit(uint32_t count, bool claimer, int num_items) const {
    const int slot = count & 1;
    const uint32_t parity = (count >> 1) & 1;
    if (claimer) {
      mbarrier::wait(barrier(Cfg::kUnitEmpty + slot), parity ^ 1);
      unit_slots()[slot] = prefill_unit(p.work, num_items, p.num_kv_heads, atomicAdd(p.work.next_unit, 1));
      mbarrier::arrive(barrier(Cfg::kUnitFull + slot));
    }
    mbarrier::wait(barrier(Cfg::kUnitFull + slot), parity);
    const PrefillUnit unit = unit_slots()[slot];
    mbarrier::arrive_per_warp(barrier(Cfg::kUnitEmpty + slot));
    return unit;
  }

  // ---- The copy warpgroup (thread c of 128). ----
  __device__ void copy_loop(int c, int num_items) const {
    const int lane = c % 32;
    const int copy_row = c / Cfg::kChunksPerRow, copy_col = c % Cfg::kChunksPerRow;
    // Pass k of a K/V tile copies row copy_row + kCopyRows k; this lane looks up the cache slot of row
    // lookup_row, and pass k takes it from lane 2 k + lane / 16 (the warp's rows are 2 warp + 0/1 + 8 k).
    const int lookup_row = 2 * (c / 32) + (lane & 1) + Cfg::kCopyRows * (lane >> 1);
    const uint32_t kv_dst = wgmma::swizzled_offset(N, copy_row, copy_col);
    // Computed here, as in the other kernels: read from a parameter field instead, it left ptxas short of
    // registers for the wgmma pipeline (C7511), which then serialized every product (45% slower, run 58).
    const uint32_t row_bytes = static_cast<uint32_t>(p.num_kv_heads) * D * sizeof(T);
    uint32_t tiles = 0;  // K/V tiles copied so far: the position in the stage ring
    for (uint32_t count = 0;; ++count) {
      const PrefillUnit unit = next_unit(count, c == 0, num_items);
      if (unit.kv_head < 0) break;
      const PrefillWorkItem& item = unit.item;
      const PrefillUnitShape shape(item, p.group_size, p.causal);
      const int kv_len = shape.kv_len(), num_kv_tiles = shape.num_kv_tiles(N);

      // Q, once the math warpgroups have read back the output of the buffer's previous unit, which they stage
      // there (zero rows pad Q to M).
      const int q_buffer = count % kQBuffers;
      mbarrier::wait(barrier(Cfg::kQEmpty + q_buffer), ((count / kQBuffers) & 1) ^ 1);
      copy_query_chunks<T>(p, item, unit.kv_head, copy_row, copy_col, Cfg::kCopyRows, M,
                           base_address() + q_buffer * Cfg::kQBytes + wgmma::swizzled_offset(M, copy_row, copy_col),
                           Cfg::kCopyRows * 128);
      mbarrier::arrive_when_copied(barrier(Cfg::kQFull + q_buffer));

      // Block ids are loaded a tile ahead of their use; a key past kv_len (or of a bad block id, recorded)
      // gets slot -1: its row is zero-filled, never read.
      const int* table = p.block_tables + static_cast<long long>(item.seq) * p.max_blocks_per_seq;
      struct Lookup {
        int pos, page, id;
      };
      const auto look_up = [&](int tile) {
        const int pos = tile * N + lookup_row;
        const int page = key_page(p, pos);
        return Lookup{pos, page, pos < kv_len ? table[page] : 0};
      };
      const auto slot_of = [&](const Lookup& k) {
        return k.pos < kv_len ? key_slot(p, item.seq, k.pos, k.page, k.id) : -1;
      };
      const uint32_t column_bytes = (unit.kv_head * D + copy_col * 8) * sizeof(T);
      // One tile of K (value = false) or V into the stage of ring position `position`, once it is empty.
      const auto copy_tile = [&](auto value, uint32_t position, int slot) {
        constexpr bool kValue = decltype(value)::value;
        mbarrier::wait(empty_barrier<kValue>(position), use_parity<kValue>(position) ^ 1);
        const uint32_t dst = tile_address<kValue>(position) + kv_dst;
        const uint64_t src = reinterpret_cast<uint64_t>(kValue ? p.value_cache : p.key_cache) + column_bytes;
#pragma unroll
        for (int k = 0; k < N / Cfg::kCopyRows; ++k) {
          const int row_slot = __shfl_sync(0xffffffffu, slot, 2 * k + lane / 16);
          ptx::cp_async_row_16(dst + k * Cfg::kCopyRows * 128, src, static_cast<uint32_t>(row_slot), row_bytes);
        }
        mbarrier::arrive_when_copied(full_barrier<kValue>(position));
      };
      // In the order the math warpgroups use them: K 0, then K t with V t - 1, then the last V.
      Lookup next = look_up(0);
      int v_slot = -1;
      for (int tile = 0; tile < num_kv_tiles; ++tile) {
        const int k_slot = slot_of(next);
        if (tile + 1 < num_kv_tiles) next = look_up(tile + 1);
        copy_tile(std::false_type{}, tiles + tile, k_slot);
        if (tile > 0) copy_tile(std::true_type{}, tiles + tile - 1, v_slot);
        v_slot = k_slot;
      }
      copy_tile(std::true_type{}, tiles + num_kv_tiles - 1, v_slot);
      tiles += num_kv_tiles;
    }
    ptx::cp_async_wait<0>();
  }

  // ---- A math warpgroup (thread t of 256). ----
  __device__ void math_loop(int t, int num_items) const {
    const int group_index = t / 128, warp = t % 128 / 32, lane = t % 32;
    // This thread's rows: 64 group + 16 warp + lane / 4 (+ 8).
    const int my_row = 64 * group_index + 16 * warp + lane / 4;
    // Turns at issuing: warpgroup 0 goes first.
    const auto take_turn = [&] { mbarrier::named_sync(Cfg::kTurnBarrier + group_index, Cfg::kMathThreads); };
    const auto pass_turn = [&] { mbarrier::named_arrive(Cfg::kTurnBarrier + (group_index ^ 1), Cfg::kMathThreads); };
    if (group_index == 1) pass_turn();

    // Descriptors: the start-address field (bits 0-13, address >> 4) takes compile-time offsets by plain
    // addition (shared addresses stay below 256 KiB). Q's rows of this warpgroup; K and V of stage 0.
    const uint64_t q_desc = wgmma::descriptor(base_address() + group_index * 64 * 128, 16, 1024);
    const uint64_t k_desc = wgmma::descriptor(base_address() + Cfg::kKOffset, 16, 1024);
    const uint64_t v_desc = wgmma::descriptor(base_address() + Cfg::kVOffset, N * 128, 1024);
    constexpr uint64_t kStageStep = Cfg::kKvTileBytes >> 4;

    // The previous unit's output: this thread's 16-byte pieces of its rows, stored only after the arrive
    // that reads the next unit's claim. An mbarrier arrive is a release, and one right after the stores waits
    // for them: handing Q back after the stores made every shape 3-10% slower on an H200 (cuda_h200.md, run 16).
    constexpr int kOutRows = 32 / Cfg::kChunksPerRow, kPieces = 16 / kOutRows;
    const int warp_row0 = 64 * group_index + 16 * warp;
    uint4 piece[kPieces];
    T* out = nullptr;  // null: nothing pending
    int out_rows = 0, out_row0 = 0;
    const auto store_pieces = [&] {
      if (out == nullptr) return;
      PackedRowWalk walk(out_row0, kOutRows, p.group_size);
#pragma unroll
      for (int k = 0; k < kPieces; ++k, walk.next())
        if (k * kOutRows < out_rows)
          *reinterpret_cast<uint4*>(out + walk.token * p.o_stride_token + walk.head * p.o_stride_head) = piece[k];
    };

    uint32_t tiles = 0;  // as the copy warpgroup's
    for (uint32_t count = 0;; ++count) {
      const PrefillUnit unit = next_unit(count, false, num_items);
      store_pieces();
      if (unit.kv_head < 0) return;
      const PrefillWorkItem& item = unit.item;
      const PrefillUnitShape shape(item, p.group_size, p.causal);
      const int num_kv_tiles = shape.num_kv_tiles(N);
      const int first_masked_tile = shape.first_masked_tile(N);
      // A last tile of at most N / 2 keys takes half the work: S, its softmax and P V over its first N / 2
      // keys only (the other half of s keeps stale values, never read: those keys are past every row's
      // limit). Tile 0 of a one-tile unit keeps its full S: a half one there made ptxas serialize every
      // product of the kernel (C7511, registers).
      const bool half_last = shape.kv_len() - (num_kv_tiles - 1) * N <= N / 2;
      const int q_buffer = count % kQBuffers;
      const uint64_t q_buffer_desc = q_desc + ((q_buffer * Cfg::kQBytes) >> 4);
      int row_limit[2];
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) row_limit[hh] = my_row + 8 * hh < item.rows ? shape.limit(my_row + 8 * hh) : -1;

      float s[N / 2], o[D / 2];
      uint32_t a[N / 16][4];  // P as the A fragments of P V
      float m[2] = {-CUDART_INF_F, -CUDART_INF_F}, l[2] = {0.0f, 0.0f};
#pragma unroll
      for (int i = 0; i < D / 2; ++i) o[i] = 0.0f;

      // Tile t of the unit: ring position tiles + t.
      const auto wait_full = [&](auto value, int tile) {
        constexpr bool kValue = decltype(value)::value;
        mbarrier::wait(full_barrier<kValue>(tiles + tile), use_parity<kValue>(tiles + tile));
        wgmma::fence_proxy_async();  // the landed copies, visible to the products' reads
      };
      const auto release = [&](auto value, int tile) {
        mbarrier::arrive_per_warp(empty_barrier<decltype(value)::value>(tiles + tile));
      };
      // S = Q K^T: k-step kk reads dims 16 kk.. of column half kk / 4.
      // half: only the tile's first N / 2 keys.
      const auto issue_scores = [&](int tile, auto half) {
        wait_full(std::false_type{}, tile);
        wgmma::fence();
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) {
          const uint64_t qa = q_buffer_desc + (((kk / 4) * M * 128 + (kk % 4) * 32) >> 4);
          const uint64_t kb =
              k_desc + stage_of<false>(tiles + tile) * kStageStep + (((kk / 4) * N * 128 + (kk % 4) * 32) >> 4);
          if constexpr (decltype(half)::value)
            wgmma::ss_first_half<T>(s, qa, kb, kk > 0);
          else
            MmaS::template ss<0>(s, qa, kb, kk > 0);
        }
        wgmma::commit();
      };
      // O += P V: P's m16n8 accumulator pairs are the register A fragments (keys 16 kk ..), V rows 16 kk ..
      const auto issue_values = [&](int tile, auto half) {
        wait_full(std::true_type{}, tile);
        wgmma::fence();  // (ptxas would add it: P's registers were written since the last fence)
#pragma unroll
        for (int kk = 0; kk < (decltype(half)::value ? N / 32 : N / 16); ++kk)
          MmaO::template rs<1>(o, a[kk], v_desc + stage_of<true>(tiles + tile) * kStageStep + ((kk * 16 * 128) >> 4),
                               true);
        wgmma::commit();
      };
      // Online softmax of the tile's scores (s[4 n + 2 hh + e] is row my_row + 8 hh, key tile N + 8 n + 2 (lane
      // % 4) + e), then P into a once the previous P V is done with it (and O rescaled).
      // kMayMask: compiled with the causal / context mask (tiles from first_masked_tile on), else without.
      // half: only the tile's first N / 2 keys (the first half of s).
      const auto softmax = [&](int tile, float(&correction)[2], auto may_mask, auto half) {
        const int key0 = tile * N + 2 * (lane % 4);
        bool moved = false;
#pragma unroll
        for (int hh = 0; hh < 2; ++hh)
          correction[hh] = softmax_row_step<decltype(half)::value ? N / 2 : N, decltype(may_mask)::value, 4>(
              s, hh, m[hh], l[hh], p.scale_log2, tile >= first_masked_tile, key0, row_limit[hh], moved);
        return __any_sync(0xffffffffu, moved);
      };
      const auto pack_probabilities = [&](auto half) {
#pragma unroll
        for (int kk = 0; kk < (decltype(half)::value ? N / 32 : N / 16); ++kk)
#pragma unroll
          for (int i = 0; i < 4; ++i) a[kk][i] = ptx::pack2<T>(s[8 * kk + 2 * i], s[8 * kk + 2 * i + 1]);
      };

      mbarrier::wait(barrier(Cfg::kQFull + q_buffer), (count / kQBuffers) & 1);
      take_turn();
      issue_scores(0, std::false_type{});
      pass_turn();
      wgmma::wait<0>();
      wgmma::pin(s);
      release(std::false_type{}, 0);
      float correction[2];
      softmax(0, correction, std::true_type{}, std::false_type{});
      pack_probabilities(std::false_type{});
      // Tile t's S with tile t - 1's P V, then tile t's softmax while they run.
      const auto step = [&](int tile, auto may_mask, auto half) {
        take_turn();
        issue_scores(tile, half);
        issue_values(tile - 1, std::false_type{});
        pass_turn();
        wgmma::wait<1>();  // S of this tile
        wgmma::pin(s);
        release(std::false_type{}, tile);
        const bool moved = softmax(tile, correction, may_mask, half);
        wgmma::wait<0>();  // P V of the previous tile
        wgmma::pin(o);
        release(std::true_type{}, tile - 1);
        if (moved) {
#pragma unroll
          for (int i = 0; i < D / 2; ++i) o[i] *= correction[(i / 2) % 2];
        }
        pack_probabilities(half);
      };
      // (A half last tile is a masked one: its keys past kv_len are past every row's limit.)
      const int unmasked_end = max(1, min(first_masked_tile, num_kv_tiles));
      const int full_end = half_last ? max(1, num_kv_tiles - 1) : num_kv_tiles;
      for (int tile = 1; tile < unmasked_end; ++tile) step(tile, std::false_type{}, std::false_type{});
      for (int tile = unmasked_end; tile < full_end; ++tile) step(tile, std::true_type{}, std::false_type{});
      if (full_end < num_kv_tiles) step(num_kv_tiles - 1, std::true_type{}, std::true_type{});
      if (half_last)
        issue_values(num_kv_tiles - 1, std::true_type{});
      else
        issue_values(num_kv_tiles - 1, std::false_type{});
      wgmma::wait<0>();
      wgmma::pin(o);
      release(std::true_type{}, num_kv_tiles - 1);
      tiles += num_kv_tiles;

      // Normalize; each warp stages its 16 rows as T in its own rows of this unit's Q tile once its
      // warpgroup's products are done reading Q, then reads back whole 16-byte pieces of each row (stored at
      // the next unit's start) and hands the Q buffer back.
      mbarrier::named_sync(Cfg::kEpilogueBarrier + group_index, 128);
      const uint32_t staged = base_address() + q_buffer * Cfg::kQBytes;
      stage_normalized_rows<T, D>(staged, M, my_row, lane, o, l);
      __syncwarp();
      int out_row = lane / Cfg::kChunksPerRow, out_col = lane % Cfg::kChunksPerRow;
      // Opaque once per unit: else the pieces' shared offsets are hoisted out of the unit loop and spilled.
      asm volatile("" : "+r"(out_row), "+r"(out_col));
#pragma unroll
      for (int k = 0; k < kPieces; ++k)
        piece[k] = ptx::ld_shared_v4(staged + wgmma::swizzled_offset(M, warp_row0 + out_row + k * kOutRows, out_col));
      mbarrier::arrive_per_warp(barrier(Cfg::kQEmpty + q_buffer));
      out = static_cast<T*>(p.out) + item.first_row * p.o_stride_token +
            unit.kv_head * p.group_size * p.o_stride_head + out_col * 8;
      out_row0 = item.row0 + warp_row0 + out_row;
      out_rows = item.rows - warp_row0 - out_row;
    }
  }
};

template <class T>
__global__ void __launch_bounds__(PrefillWsConfig<T>::kThreads, 1)
    prefill_wgmma_ws_kernel(const __grid_constant__ PrefillParams p) {
#if PAGEDATTN_WGMMA_DEVICE
  using Cfg = PrefillWsConfig<T>;
  unsigned char* smem = wgmma::atom_aligned_dynamic_smem();
  const int tid = static_cast<int>(threadIdx.x);
  const PrefillWs<T> ws{p, smem};
  if (tid == 0) ws.init_barriers();
  // The work list is written by the kernel before us (we are its programmatic dependent).
  ptx::wait_for_prerequisites();
  __syncthreads();
  const int num_items = *p.work.num_items;
  if (tid >= Cfg::kMathThreads) {
    wgmma::shrink_registers<Cfg::kCopyRegisters>();
    ws.copy_loop(tid - Cfg::kMathThreads, num_items);
  } else {
    wgmma::grow_registers<Cfg::kMathRegisters>();
    ws.math_loop(tid, num_items);
  }
#endif
}

}  // namespace pagedattn::cuda
