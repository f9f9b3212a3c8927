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

  // This item's block ids, fetched before the length is known so that the two loads overlap (an item
  // never reaches past its planned pages or the table row); only the live ones are checked, below.
  const int* table = p.block_tables + static_cast<long long>(seq) * p.max_blocks_per_seq + item.first_page;
  const int item_pages = max(0, min(item.num_pages, p.max_blocks_per_seq - item.first_page));
  int len = p.context_lens[seq];
  for (int i = tid; i < item_pages; i += kThreads) s_table[i] = table[i];

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

  const long long row_stride = static_cast<long long>(p.num_kv_heads) * D;
  const T* k_base = static_cast<const T*>(p.key_cache) + kv_head * D;
  const T* v_base = static_cast<const T*>(p.value_cache) + kv_head * D;
  auto stage_k = [&](int slot) { return reinterpret_cast<T*>(smem + slot * Cfg::kStageBytes); };
  auto stage_v = [&](int slot) { return stage_k(slot) + kTile * kRow; };

  // Tile i: tokens t0 + i*kTile ... of K and V into stage slot; rows past t1 or on a bad block are zeros.
  auto issue_tile = [&](int tile, int slot) {
    T* sk = stage_k(slot);
    T* sv = stage_v(slot);
    const int first = t0 + tile * kTile;
    constexpr int kChunks = kTile * Cfg::kChunksPerRow;
#pragma unroll
    for (int k = 0; k < (kChunks + kThreads - 1) / kThreads; ++k) {
      const int i = tid + k * kThreads;
      if (kChunks % kThreads != 0 && i >= kChunks) break;
      const int r = i / Cfg::kChunksPerRow, c = i - r * Cfg::kChunksPerRow;
      const int pos = first + r;
      const int page = static_cast<int>(ptx::fast_divide(pos, p.block_div.multiplier, p.block_div.shift));
      const int id = pos < t1 ? s_table[page - item.first_page] : -1;
      const long long offset = (static_cast<long long>(max(id, 0)) * block_size + (pos - page * block_size)) *
                                   row_stride + c * Cfg::kChunkElems;
      ptx::cp_async_16(sk + Cfg::offset(r, c), k_base + offset, id >= 0);
      ptx::cp_async_16(sv + Cfg::offset(r, c), v_base + offset, id >= 0);
    }
  };

  const int num_tiles = (num_tokens + kTile - 1) / kTile;
#pragma unroll
  for (int s = 0; s < Cfg::kStages - 1; ++s) {
    if (s < num_tiles) issue_tile(s, s);
    ptx::cp_async_commit();
  }

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
    if (tile + Cfg::kStages - 1 < num_tiles) issue_tile(tile + Cfg::kStages - 1, (tile + Cfg::kStages - 1) % Cfg::kStages);
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
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float mx = fmaxf(fmaxf(s[0][2 * h], s[0][2 * h + 1]), fmaxf(s[1][2 * h], s[1][2 * h + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m[h], mx);
      const float ref = m_new == -CUDART_INF_F ? 0.0f : m_new;  // a row with nothing visible yet stays empty
      const float correction = ptx::exp2_approx(m[h] - ref);
      m[h] = m_new;
      float sum = 0.0f;
#pragma unroll
      for (int n = 0; n < 2; ++n)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          s[n][2 * h + e] = ptx::exp2_approx(s[n][2 * h + e] - ref);
          sum += s[n][2 * h + e];
        }
      l[h] = l[h] * correction + sum;
#pragma unroll
      for (int t = 0; t < D / 8; ++t) {
        o[t][2 * h] *= correction;
        o[t][2 * h + 1] *= correction;
      }
    }
    math.accumulate(o, s, stage_v(slot), warp * 16, lane);
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
