// The cache slots of a K/V tile's keys for the prefill kernels. key_page / key_slot turn a key's position and
// its page's block id into the slot (shared by every prefill kernel: prefill_wgmma_ws_kernel.cuh looks ids up
// in its copy warpgroup). PrefillKeySlots serves the kernels whose threads all copy (prefill_kernel.cuh,
// prefill_wgmma_kernel.cuh): block ids travel by cp.async like the K/V rows, a tile ahead of their use, so their
// latency never stalls the math: thread r < N copies the block-table entry of key r of `tile` into buffer
// tile & 1 (fetch), and once its copies have landed turns it into the key's cache slot in place (resolve): -1
// (its row is zero-filled, never read) past the keys the unit reads or for a bad block id, which it records.
#pragma once

#include "attention/cuda/device_error.cuh"
#include "attention/cuda/prefill_params.h"
#include "attention/cuda/ptx.cuh"

namespace pagedattn::cuda {

// The page (block-table column) of key position `pos`.
__device__ inline int key_page(const PrefillParams& p, int pos) {
  return static_cast<int>(ptx::fast_divide(pos, p.block_div.multiplier, p.block_div.shift));
}

// The cache slot of key `pos` of sequence `seq`, on page `page` whose block id is `id`; -1 for an id outside
// the pool, which it records.
__device__ inline int key_slot(const PrefillParams& p, int seq, int pos, int page, int id) {
  if (static_cast<unsigned>(id) >= static_cast<unsigned>(p.num_blocks)) {
    record_device_error(p.error, DeviceErrorCode::block_id, seq, page, id, p.num_blocks);
    return -1;
  }
  return id * p.block_size + (pos - page * p.block_size);
}

template <int N>
struct PrefillKeySlots {
  const PrefillParams& p;
  int* buffers;  // shared memory: two buffers of N ints
  const int* table;  // the sequence's block-table row
  int seq, kv_len, tid;

  __device__ PrefillKeySlots(const PrefillParams& params, int* slot_buffers, int sequence, int keys, int thread)
      : p(params), buffers(slot_buffers),
        table(params.block_tables + static_cast<long long>(sequence) * params.max_blocks_per_seq), seq(sequence),
        kv_len(keys), tid(thread) {}

  __device__ int* slots(int tile) const { return buffers + (tile & 1) * N; }

  __device__ void fetch(int tile) const {
    const int pos = tile * N + tid;
    if (tid >= N || pos >= kv_len) return;
    ptx::cp_async_4(ptx::smem_address(slots(tile)) + tid * 4, table + key_page(p, pos));
  }

  __device__ void resolve(int tile) const {
    const int pos = tile * N + tid;
    if (tid >= N) return;
    int& entry = slots(tile)[tid];
    entry = pos < kv_len ? key_slot(p, seq, pos, key_page(p, pos), entry) : -1;
  }
};

}  // namespace pagedattn::cuda
