// Builds the prefill work list on the device from query_start (so a varlen call needs no host copy of it):
// one CTA scans the sequences in chunks of its threads; a sequence with q_len >= 2 gets
// ceil(q_len * group / tile_rows) tiles, listed last tile first (under a causal mask the last tiles see
// the most keys, so the longest work starts first). It also checks every sequence's rows and length
// (varlen_rows.cuh), copies them into the items (the prefill kernels read no other metadata than the block
// table), and resets the claim counter of the prefill kernel. Bound: latency (a few µs).
#pragma once

#include <cub/block/block_scan.cuh>

#include "attention/cuda/prefill_params.h"
#include "attention/cuda/ptx.cuh"
#include "attention/cuda/varlen_rows.cuh"

namespace pagedattn::cuda {

inline constexpr int kPrefillTilesThreads = 512;

__global__ void __launch_bounds__(kPrefillTilesThreads) prefill_tiles_kernel(const __grid_constant__ PrefillTilesParams p) {
  using Scan = cub::BlockScan<int, kPrefillTilesThreads>;
  __shared__ typename Scan::TempStorage scan;
  __shared__ int s_base;
  // The prefill kernel behind us (a programmatic dependent) may take its SMs now; it waits for our writes.
  ptx::launch_dependents();
  const int tid = threadIdx.x;
  if (tid == 0) {
    s_base = 0;
    *p.work.next_unit = 0;
  }
  __syncthreads();
  for (int first = 0; first < p.num_seqs; first += kPrefillTilesThreads) {
    const int seq = first + tid;
    SeqRows rows{0, 0, 0};
    if (seq < p.num_seqs)
      rows = load_seq_rows(p.query_start, p.context_lens, seq, p.num_tokens, p.max_context_len, p.error,
                           /*report=*/true);
    const int packed = rows.q_len >= 2 ? rows.q_len * p.group_size : 0;  // fits: T * group < 2^31 (host check)
    const int tiles = (packed + p.tile_rows - 1) / p.tile_rows;
    int offset = 0, total = 0;
    Scan(scan).ExclusiveSum(tiles, offset, total);
    const int base = s_base;
    for (int k = 0; k < tiles; ++k) {
      const int index = base + offset + k, row0 = (tiles - 1 - k) * p.tile_rows;
      if (index < p.capacity)
        p.work.items[index] = {seq, row0, min(p.tile_rows, packed - row0), rows.first_row, rows.q_len,
                               rows.context_len, {0, 0}};
    }
    __syncthreads();  // every thread has read s_base, and the scan storage is free again
    if (tid == 0) s_base = base + total;
    __syncthreads();
  }
  if (tid == 0) *p.work.num_items = min(s_base, p.capacity);
}

}  // namespace pagedattn::cuda
