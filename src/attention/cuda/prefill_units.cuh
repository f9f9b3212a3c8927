// The persistent loop of the prefill kernels: the grid is sized to the resident CTAs, and each CTA claims
// (work item, KV head) units in list order until none is left, so the longest tiles (listed first) start
// first and no CTA is launched just to find nothing to do. Units run KV head by KV head, so the CTAs in
// flight share one head's K/V in L2.
#pragma once

#include "attention/cuda/prefill_params.h"
#include "attention/cuda/ptx.cuh"

namespace pagedattn::cuda {

// f(item, kv_head) for every unit this CTA claims; s_unit: one int of shared memory.
template <class F>
__device__ inline void for_each_prefill_unit(const PrefillWorkList& work, int num_kv_heads, int* s_unit, F&& f) {
  // The work list is written by the kernel before us (we are its programmatic dependent).
  ptx::wait_for_prerequisites();
  const int num_items = *work.num_items;
  const int num_units = num_items * num_kv_heads;
  for (;;) {
    if (threadIdx.x == 0) *s_unit = atomicAdd(work.next_unit, 1);
    __syncthreads();
    const int unit = *s_unit;
    if (unit >= num_units) return;
    const int kv_head = unit / num_items;
    f(work.items[unit - kv_head * num_items], kv_head);
    __syncthreads();  // all threads have read s_unit and are done with shared memory before the next claim
  }
}

}  // namespace pagedattn::cuda
