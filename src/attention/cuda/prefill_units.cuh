// The persistent loop of the prefill kernels: the grid is sized to the resident CTAs, and each CTA claims
// (work item, KV head) units in list order until none is left, so the longest tiles (listed first) start
// first and no CTA is launched just to find nothing to do. Units run KV head by KV head, so the CTAs in
// flight share one head's K/V in L2. The next unit is claimed while the current one computes its last K/V
// tile: late enough that the longest-first order still balances the CTAs (a claim at the start of a unit
// reserves a second long unit on a busy CTA: 9% slower on 8k rows), early enough that the atomic's
// latency is hidden. Also what every kernel asks of a unit's rows: the keys each sees, where each lives in the
// query and output tensors, and the copy of the unit's Q tile.
#pragma once

#include "attention/cuda/prefill_params.h"
#include "attention/cuda/ptx.cuh"

namespace pagedattn::cuda {

struct PrefillUnit {
  PrefillWorkItem item;
  int kv_head;  // -1: no unit left
};

// Where a unit's packed rows look: row r (0 .. rows - 1 of the unit) sees keys 0 .. limit(r), bottom-right
// aligned when causal. Rows only grow, so the unit reads keys 0 .. kv_len() - 1, and with tiles of N keys
// those before first_masked_tile(N) hold only keys every row sees.
struct PrefillUnitShape {
  int row0, rows, group, context_len, q_len;
  bool causal;
  __device__ PrefillUnitShape(const PrefillWorkItem& item, int group_size, bool is_causal)
      : row0(item.row0), rows(item.rows), group(group_size), context_len(item.context_len), q_len(item.q_len),
        causal(is_causal) {}
  __device__ int limit(int r) const { return causal ? context_len - q_len + (row0 + r) / group : context_len - 1; }
  __device__ int kv_len() const { return limit(rows - 1) + 1; }
  __device__ int num_kv_tiles(int N) const { return (kv_len() + N - 1) / N; }
  __device__ int first_masked_tile(int N) const { return (limit(0) + 1) / N; }
};

// (token, head) of a packed query row, a row being (token, head within the GQA group), and of the rows
// `step` further on: one division per walk instead of one per row.
struct PackedRowWalk {
  int token, head, step_tokens, step_heads, group;
  __device__ PackedRowWalk(int row, int step, int group_)
      : token(row / group_), head(row - token * group_), step_tokens(step / group_),
        step_heads(step - step_tokens * group_), group(group_) {}
  __device__ void next() {
    token += step_tokens;
    head += step_heads;
    if (head >= group) head -= group, ++token;
  }
};

// One thread's part of copying a unit's Q tile by cp.async: 16-byte chunk `chunk` of the unit's packed rows
// row, row + step, ... below `tile_rows`, the k-th to dst + k * pitch; rows past the unit's are zero-filled.
template <class T>
__device__ inline void copy_query_chunks(const PrefillParams& p, const PrefillWorkItem& item, int kv_head, int row,
                                         int chunk, int step, int tile_rows, uint32_t dst, uint32_t pitch) {
  const T* q = static_cast<const T*>(p.query) + item.first_row * p.q_stride_token +
               kv_head * p.group_size * p.q_stride_head + chunk * (16 / sizeof(T));
  PackedRowWalk walk(item.row0 + row, step, p.group_size);
  for (int r = row; r < tile_rows; r += step, walk.next(), dst += pitch) {
    const bool live = r < item.rows;
    ptx::cp_async_16(dst, live ? q + walk.token * p.q_stride_token + walk.head * p.q_stride_head : q, live);
  }
}

// Unit `index` of the list (kv_head -1 past its end): units run KV head by KV head.
__device__ inline PrefillUnit prefill_unit(const PrefillWorkList& work, int num_items, int num_kv_heads, int index) {
  PrefillUnit u{};
  u.kv_head = -1;
  if (index < num_items * num_kv_heads) {
    u.kv_head = index / num_items;
    u.item = work.items[index - u.kv_head * num_items];
  }
  return u;
}

// f(item, kv_head, claim_next) for every unit this CTA claims; f calls claim_next() exactly once per unit,
// where thread 0 should send the atomic that claims the next one. s_units: two PrefillUnit slots of shared
// memory.
template <class F>
__device__ inline void for_each_prefill_unit(const PrefillWorkList& work, int num_kv_heads, PrefillUnit* s_units,
                                             F&& f) {
  // The work list is written by the kernel before us (we are its programmatic dependent).
  ptx::wait_for_prerequisites();
  const int num_items = *work.num_items;
  const bool leader = threadIdx.x == 0;
  const auto fetch = [&](int unit) { return prefill_unit(work, num_items, num_kv_heads, unit); };
  if (leader) s_units[0] = fetch(atomicAdd(work.next_unit, 1));
  __syncthreads();
  for (int slot = 0;; slot ^= 1) {
    const PrefillUnit unit = s_units[slot];
    if (unit.kv_head < 0) return;
    int claim = 0;
    f(unit.item, unit.kv_head, [&] {
      if (leader) claim = atomicAdd(work.next_unit, 1);
    });
    // The other slot was last read before the previous barrier; this one is read again only after the next.
    if (leader) s_units[slot ^ 1] = fetch(claim);
    __syncthreads();
  }
}

}  // namespace pagedattn::cuda
