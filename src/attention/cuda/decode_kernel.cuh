// Paged decode attention: one CTA per (work item, KV head, chunk of up to 16 query heads). A work item is a
// range of one sequence's pages (split-KV); the CTA holds the whole GQA group, so every K/V byte it needs
// is read from HBM once. Pages stream through a multi-stage cp.async pipeline of 16-byte copies; each
// warp runs an online softmax over its 16 tokens of every tile, and the warps merge at the end.
// Bound: memory (K/V bytes); the tensor-core math costs a few percent of the time the bytes take.
#pragma once

#include <math_constants.h>

#include "attention/cuda/cuda_types.cuh"
#include "attention/cuda/decode_tile_math.cuh"
#include "attention/cuda/device_error.cuh"
#include "attention/cuda/varlen_rows.cuh"

namespace pagedattn::cuda {

__device__ inline DecodeWorkItem load_work_item(const DecodeParams& p, int index) {
  if (p.items != nullptr) return p.items[index];
  const int seq = index / p.uniform_splits, split = index - seq * p.uniform_splits;
  return {seq, split * p.chunk_pages, p.chunk_pages, p.uniform_splits > 1 ? index : -1};
}

// An item's slice of its sequence's block-table row: it never reaches past its planned pages or the row.
struct ItemTable {
  const int* ids;
  int pages;
};
__device__ inline ItemTable item_table(const DecodeParams& p, const DecodeWorkItem& item) {
  return {p.block_tables + static_cast<long long>(item.seq) * p.max_blocks_per_seq + item.first_page,
          max(0, min(item.num_pages, p.max_blocks_per_seq - item.first_page))};
}

// Brings into L2 what the CTAs of item `index` read before their first K/V copy (its length, block ids
// and, in a varlen call, its query_start entries), so that a CTA of a later wave waits on one memory
// latency before its K/V stream starts instead of two.
__device__ inline void prefetch_item_metadata(const DecodeParams& p, int index, int num_items, int tid, int threads) {
  if (index >= num_items) return;
  const DecodeWorkItem item = load_work_item(p, index);
  const ItemTable table = item_table(p, item);
  for (int i = tid * 32; i < table.pages; i += threads * 32) ptx::prefetch_l2(table.ids + i);  // 32 ids per line
  if (tid == 0) {
    if (table.pages > 0) ptx::prefetch_l2(table.ids + table.pages - 1);
    ptx::prefetch_l2(p.context_lens + item.seq);
    if (p.query_start != nullptr) ptx::prefetch_l2(p.query_start + item.seq);
  }
}

template <class T, int D, int kCtasPerSm>
__global__ void __launch_bounds__(DecodeConfig<T, D, kCtasPerSm>::kThreads)
    decode_kernel(const __grid_constant__ DecodeParams p) {
  using Cfg = DecodeConfig<T, D, kCtasPerSm>;
  constexpr int kThreads = Cfg::kThreads, kRow = Cfg::kRowElems, kTile = Cfg::kTileTokens;
  extern __shared__ __align__(128) unsigned char smem[];
  T* s_q = reinterpret_cast<T*>(smem + Cfg::kQOffset);
  int* s_table = reinterpret_cast<int*>(smem + Cfg::kTableOffset);

  // Under programmatic dependent launch nothing may be read before the previous kernel's writes are
  // visible (a no-op when launched plainly). The merge kernel behind us may get its CTAs onto SMs now.
  ptx::wait_for_prerequisites();
  ptx::launch_dependents();

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int units = p.num_kv_heads * p.head_chunks;
  const int item_index = blockIdx.x / units, unit = blockIdx.x - item_index * units;
  const int kv_head = unit / p.head_chunks, head_chunk = unit - kv_head * p.head_chunks;
  const DecodeWorkItem item = load_work_item(p, item_index);
  const int seq = item.seq;
  const int q_row = decode_row(p.query_start, p.num_tokens, seq);
  if (q_row < 0) return;  // a varlen call's prefill (or empty) sequence

  // This item's block ids, fetched before the length is known so that the two loads overlap; only the
  // live ones are checked, below.
  const ItemTable table = item_table(p, item);
  int len = p.context_lens[seq];
  for (int i = tid; i < table.pages; i += kThreads) s_table[i] = table.ids[i];

  const int block_size = p.block_size;
  const int head0 = head_chunk * kHeadsPerCta;  // first query head of this CTA within the group
  const int rows = min(kHeadsPerCta, p.group_size - head0);
  const int q_head0 = kv_head * p.group_size + head0;
  // Query rows (zero rows pad the group to 16).
  {
    const T* q = static_cast<const T*>(p.query) + q_row * p.q_stride_token + q_head0 * p.q_stride_head;
    for (int i = tid; i < kHeadsPerCta * Cfg::kChunksPerRow; i += kThreads) {
      const int r = i / Cfg::kChunksPerRow, c = i - r * Cfg::kChunksPerRow;
      const bool live = r < rows;
      ptx::cp_async_16(s_q + Cfg::offset(r, c),
                       live ? q + r * p.q_stride_head + c * Cfg::kChunkElems : q, live);
    }
    ptx::cp_async_commit();
  }

  // The length was never validated on the host: clamp it to what the table can address, and report.
  const bool reporter = tid == 0 && unit == 0 && item.first_page == 0;
  if (len < 1 || len > p.max_context_len) {
    if (reporter) record_device_error(p.error, DeviceErrorCode::context_len, seq, 0, len, p.max_context_len);
    len = min(max(len, 0), p.max_context_len);
  }
  if (p.planned_lens != nullptr && reporter && len != p.planned_lens[seq])
    record_device_error(p.error, DeviceErrorCode::plan_mismatch, seq, 0, len, p.planned_lens[seq]);
  const int t0 = item.first_page * block_size;
  const int t1 = min(t0 + item.num_pages * block_size, len);
  const int num_tokens = max(t1 - t0, 0);
  const int num_pages = num_tokens > 0 ? (t1 + block_size - 1) / block_size - item.first_page : 0;

  // Each live block id checked once (each thread checks the entries it fetched).
  for (int i = tid; i < num_pages; i += kThreads) {
    const int id = s_table[i];
    if (static_cast<unsigned>(id) >= static_cast<unsigned>(p.num_blocks)) {
      record_device_error(p.error, DeviceErrorCode::block_id, seq, item.first_page + i, id, p.num_blocks);
      s_table[i] = -1;  // its rows are zero-filled, never read
    }
  }
  __syncthreads();

  // A row's copies start at its KV head's column plus its cache slot times the row pitch (ptx::cp_async_row_16).
  const uint32_t row_bytes = static_cast<uint32_t>(p.num_kv_heads) * D * sizeof(T);
  const char* k_bytes = static_cast<const char*>(p.key_cache) + kv_head * D * sizeof(T);
  const char* v_bytes = static_cast<const char*>(p.value_cache) + kv_head * D * sizeof(T);
  const uint32_t smem_base = ptx::smem_address(smem);
  uint32_t* s_row_slots = reinterpret_cast<uint32_t*>(smem + Cfg::kRowSlotsOffset);  // 2 x kTile
  auto stage_k = [&](int slot) { return reinterpret_cast<T*>(smem + slot * Cfg::kStageBytes); };
  auto stage_v = [&](int slot) { return stage_k(slot) + kTile * kRow; };

  const int num_tiles = (num_tokens + kTile - 1) / kTile;

  // The cache slot of token pos, or kNoSlot when it is not read (past t1, or on a bad block): its row is
  // zero-filled instead.
  constexpr uint32_t kNoSlot = ptx::kNoCacheSlot;
  auto row_slot = [&](int pos) -> uint32_t {
    const int page = static_cast<int>(ptx::fast_divide(pos, p.block_div.multiplier, p.block_div.shift));
    const int id = pos < t1 ? s_table[page - item.first_page] : -1;
    return id < 0 ? kNoSlot : static_cast<uint32_t>(id) * block_size + (pos - page * block_size);
  };
  // The look-up of tile `tile`'s rows, for half `tile % 2` of s_row_slots: lanes 0-15 of each warp take 16
  // rows (every warp the same share: the deep build's lone CTA feels any warp that reaches a barrier late).
  // Computed early and stored late, so that its shared-memory load waits behind other work.
  auto look_up_row = [&](int tile) { return tile < num_tiles && lane < 16 ? row_slot(t0 + tile * kTile + warp * 16 + lane) : 0u; };
  auto store_row = [&](int tile, uint32_t cache_slot) {
    if (tile < num_tiles && lane < 16) s_row_slots[(tile & 1) * kTile + warp * 16 + lane] = cache_slot;
  };
  // Issues the copies of tile `tile` (tokens t0 + tile*kTile ...) into stage `slot`, each row's cache slot
  // computed here (`looked_up` false) or read from what store_row(tile, ...) left behind a barrier. When
  // kThreads is a multiple of the 16-byte chunks per row (all but D = 80/96) a thread copies the same chunk
  // of every row it copies.
  auto issue_tile = [&](int tile, int slot, bool looked_up) {
    const uint32_t sk = smem_base + slot * Cfg::kStageBytes, sv = sk + kTile * Cfg::kRowBytes;
    constexpr int kChunks = kTile * Cfg::kChunksPerRow, kPasses = (kChunks + kThreads - 1) / kThreads;
    constexpr bool kFixedChunk = kThreads % Cfg::kChunksPerRow == 0;
    auto row_of = [&](int k) {
      return kFixedChunk ? tid / Cfg::kChunksPerRow + k * (kThreads / Cfg::kChunksPerRow)
                         : (tid + k * kThreads) / Cfg::kChunksPerRow;
    };
    auto live = [&](int k) { return kChunks % kThreads == 0 || tid + k * kThreads < kChunks; };
    // Every row's slot first: the copies (asm with a memory clobber) would otherwise hold each load back.
    uint32_t cache_slots[kPasses];
#pragma unroll
    for (int k = 0; k < kPasses; ++k) {
      const int r = min(row_of(k), kTile - 1);  // a pass past the tile's chunks issues nothing
      cache_slots[k] = looked_up ? s_row_slots[(tile & 1) * kTile + r] : row_slot(t0 + tile * kTile + r);
    }
#pragma unroll
    for (int k = 0; k < kPasses; ++k) {
      if (!live(k)) break;
      const int r = row_of(k);
      const int c = kFixedChunk ? tid % Cfg::kChunksPerRow : tid + k * kThreads - r * Cfg::kChunksPerRow;
      const uint32_t dst = Cfg::offset(r, c) * sizeof(T);
      ptx::cp_async_row_16(sk + dst, reinterpret_cast<uint64_t>(k_bytes + c * 16), cache_slots[k], row_bytes);
      ptx::cp_async_row_16(sv + dst, reinterpret_cast<uint64_t>(v_bytes + c * 16), cache_slots[k], row_bytes);
    }
  };

#pragma unroll
  for (int s = 0; s < Cfg::kStages - 1; ++s) {
    if (s < num_tiles) issue_tile(s, s, /*looked_up=*/false);
    ptx::cp_async_commit();
  }
  store_row(Cfg::kStages - 1, look_up_row(Cfg::kStages - 1));  // read after the loop's first barrier
  if (p.prefetch_ahead > 0 && unit == 0)
    prefetch_item_metadata(p, item_index + p.prefetch_ahead, gridDim.x / units, tid, kThreads);

  TileMath<T, D> math;
  float m[2] = {-CUDART_INF_F, -CUDART_INF_F};  // running max (log2 domain) of rows lane/4, lane/4 + 8
  float l[2] = {0.0f, 0.0f};                    // this lane's share of the running sums
  float o[D / 8][4];
#pragma unroll
  for (int t = 0; t < D / 8; ++t)
#pragma unroll
    for (int e = 0; e < 4; ++e) o[t][e] = 0.0f;

  for (int tile = 0; tile < num_tiles; ++tile) {
    ptx::cp_async_wait<Cfg::kStages - 2>();  // this thread's copies of tile (and Q) have landed
    __syncthreads();                         // everyone's have; everyone is done with the slot refilled next
    if (tile == 0) {
      math.load_q(s_q, lane);
      if constexpr (Cfg::kQInRegisters) __syncthreads();  // Q's slot is refilled next
    }
    // The barrier above orders the stored look-up of the tile issued now before these reads.
    const int next = tile + Cfg::kStages - 1;
    const uint32_t next_row_slot = look_up_row(next + 1);
    if (next < num_tiles) issue_tile(next, next % Cfg::kStages, /*looked_up=*/true);
    ptx::cp_async_commit();

    const int slot = tile % Cfg::kStages;
    float s[2][4];
    math.scores(s, stage_k(slot), warp * 16, lane);
    const int tok0 = t0 + tile * kTile + warp * 16 + 2 * (lane % 4);
    const bool tail = t0 + tile * kTile + warp * 16 + 16 > t1;
#pragma unroll
    for (int n = 0; n < 2; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[n][e] *= p.scale_log2;
        if (tail && tok0 + 8 * n + e % 2 >= t1) s[n][e] = -CUDART_INF_F;
      }
    float correction[2];
    bool grew = false;  // did a row's running max grow (else every correction is exactly 1)?
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float mx = fmaxf(fmaxf(s[0][2 * h], s[0][2 * h + 1]), fmaxf(s[1][2 * h], s[1][2 * h + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m[h], mx);
      grew |= m_new > m[h];
      const float ref = m_new == -CUDART_INF_F ? 0.0f : m_new;  // a row with nothing visible yet stays empty
      correction[h] = ptx::exp2_approx(m[h] - ref);
      m[h] = m_new;
      float sum = 0.0f;
#pragma unroll
      for (int n = 0; n < 2; ++n)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          s[n][2 * h + e] = ptx::exp2_approx(s[n][2 * h + e] - ref);
          sum += s[n][2 * h + e];
        }
      l[h] = l[h] * correction[h] + sum;
    }
    // The running max settles after a few tiles: most tiles leave the output unscaled (one vote per warp).
    if (__any_sync(0xffffffffu, grew)) {
#pragma unroll
      for (int t = 0; t < D / 8; ++t)
#pragma unroll
        for (int e = 0; e < 4; ++e) o[t][e] *= correction[e / 2];
    }
    math.accumulate(o, s, stage_v(slot), warp * 16, lane);
    store_row(next + 1, next_row_slot);  // its half was last read two tiles ago, before the barrier above
  }
  ptx::cp_async_wait<0>();
  __syncthreads();  // the stage buffers are free: they now carry each warp's state

  // Merge the warps: each saw a quarter (or half) of every tile.
  constexpr int kPitch = Cfg::kCombinePitch;
  float* s_o = reinterpret_cast<float*>(smem);
  float* s_m = s_o + Cfg::kWarps * kHeadsPerCta * kPitch;
  float* s_l = s_m + Cfg::kWarps * kHeadsPerCta;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int row = warp * kHeadsPerCta + lane / 4 + 8 * h;
#pragma unroll
    for (int t = 0; t < D / 8; ++t)
      *reinterpret_cast<float2*>(s_o + row * kPitch + 8 * t + 2 * (lane % 4)) = make_float2(o[t][2 * h], o[t][2 * h + 1]);
    float sum = l[h] + __shfl_xor_sync(0xffffffffu, l[h], 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    if (lane % 4 == 0) {
      s_m[row] = m[h];
      s_l[row] = sum;
    }
  }
  __syncthreads();

  constexpr int kGroups = D / 8;  // 8 output dims per thread and step
  for (int u = tid; u < rows * kGroups; u += kThreads) {
    const int row = u / kGroups, d0 = (u - row * kGroups) * 8;
    float m_max = -CUDART_INF_F;
#pragma unroll
    for (int w = 0; w < Cfg::kWarps; ++w) m_max = fmaxf(m_max, s_m[w * kHeadsPerCta + row]);
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    float total = 0.0f;
#pragma unroll
    for (int w = 0; w < Cfg::kWarps; ++w) {
      const float mw = s_m[w * kHeadsPerCta + row];
      if (mw == -CUDART_INF_F) continue;  // this warp saw no token
      const float weight = ptx::exp2_approx(mw - m_max);
      total += weight * s_l[w * kHeadsPerCta + row];
      const float* src = s_o + (w * kHeadsPerCta + row) * kPitch + d0;
      const float4 a = *reinterpret_cast<const float4*>(src);
      const float4 b = *reinterpret_cast<const float4*>(src + 4);
      acc[0] += weight * a.x, acc[1] += weight * a.y, acc[2] += weight * a.z, acc[3] += weight * a.w;
      acc[4] += weight * b.x, acc[5] += weight * b.y, acc[6] += weight * b.z, acc[7] += weight * b.w;
    }
    const float inv = total > 0.0f ? 1.0f / total : 0.0f;
#pragma unroll
    for (int i = 0; i < 8; ++i) acc[i] *= inv;
    const int q_head = q_head0 + row;
    if (item.partial < 0) {
      store8(static_cast<T*>(p.out) + q_row * p.o_stride_token + q_head * p.o_stride_head + d0, acc);
    } else {
      const long long slot = static_cast<long long>(item.partial) * p.num_q_heads + q_head;
      store8(p.partial_out + slot * D + d0, acc);
      if (d0 == 0) p.partial_lse[slot] = total > 0.0f ? m_max + __log2f(total) : -CUDART_INF_F;
    }
  }
}

}  // namespace pagedattn::cuda
