// The CPU attention kernel's arguments and its two entry points (SIMD code in attention_kernel-inl.h,
// runtime-dispatched to the best instruction set of the machine by attention_kernel.cpp).
#pragma once

#include <cstddef>
#include <cstdint>

#include "attention/cpu/attention_plan.h"
#include "pagedattn/attention.h"

namespace pagedattn::cpu {

// Everything an item needs, as plain pointers and element strides (the call's arguments, validated).
struct KernelParams {
  DType dtype = DType::f32;           // of query, caches and out
  const void* query = nullptr;        // [T, Hq, D], row/head strides below, dense in D
  int64_t query_strides[2] = {0, 0};
  void* out = nullptr;                // [T, Hq, D]
  int64_t out_strides[2] = {0, 0};
  const void* key_cache = nullptr;    // [num_blocks, block_size, Hkv, D], contiguous
  const void* value_cache = nullptr;
  const int32_t* block_tables = nullptr;  // [B, max_blocks_per_seq]
  const int32_t* context_lens = nullptr;  // [B]
  const int32_t* query_start = nullptr;   // [B + 1], or nullptr for decode (row b is sequence b)
  int64_t max_blocks_per_seq = 0;
  int64_t block_size = 0;
  int64_t num_q_heads = 0, num_kv_heads = 0, head_dim = 0;
  float scale = 0.0f;
  bool causal = true;

  int64_t group() const { return num_q_heads / num_kv_heads; }
};

// Runs one work item: online softmax over its KV range for all its query vectors. Writes `out` when
// item.partial < 0, else its partial result (see SplitGroup) at partials + item.partial.
void run_work_item(const KernelParams& params, const WorkItem& item, float* partials);

// Merges the partial results of one split group by log-sum-exp and writes its rows of `out`.
void merge_split_group(const KernelParams& params, const SplitGroup& group, const float* partials);

namespace detail {
// run_work_item for f32 storage (attention_kernel_f32.cpp).
void run_work_item_f32(const KernelParams& params, const WorkItem& item, float* partials);

// A 64-byte aligned buffer of at least `bytes`, owned by the calling thread and reused by its next call.
void* thread_scratch(size_t bytes);
}  // namespace detail

}  // namespace pagedattn::cpu
