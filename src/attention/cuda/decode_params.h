// Plain structs shared by the host launch code and the CUDA decode kernels (no CUDA headers needed).
#pragma once

#include <cstdint>

#include "attention/cuda/paged_params.h"
#include "core/int_math.h"

namespace pagedattn::cuda {

// A work item's block-table slice is staged in shared memory: the planner never gives an item more pages.
inline constexpr int kMaxItemPages = 2048;
// A batch that must be split is cut into about this many CTAs per SM: one, which runs the decode kernel's
// deep build (decode_config.cuh), fewer and longer items than two per SM, and fewer partials to merge
// (2-2.6% faster at B=1 ctx=32768 on an H200, 0.3-0.6% slower at B=8 ctx=8192 Hq=64: bench/results/cuda_h200.md,
// run 30).
#ifndef PAGEDATTN_TUNE_CTAS_PER_SM
#define PAGEDATTN_TUNE_CTAS_PER_SM 1
#endif
inline constexpr int kTargetCtasPerSm = PAGEDATTN_TUNE_CTAS_PER_SM;
// Query heads one CTA handles (the rows of an mma tile); larger GQA groups take several CTAs per KV head.
inline constexpr int kHeadsPerCta = 16;
// The decode grid's CTAs per work item: one per KV head and chunk of up to kHeadsPerCta of its query heads.
// The launch (backend.cpp) and the plan's buffer sizes (attention_plan.cpp) both count them here.
constexpr int64_t decode_head_chunks(int64_t group_size) { return ceil_div(group_size, kHeadsPerCta); }
constexpr int64_t decode_ctas_per_item(int64_t num_kv_heads, int64_t group_size) {
  return num_kv_heads * decode_head_chunks(group_size);
}

// One CTA's share of a sequence, for each (KV head, head chunk): pages [first_page, first_page + num_pages).
struct DecodeWorkItem {
  int32_t seq;
  int32_t first_page;
  int32_t num_pages;
  int32_t partial;  // slot of its partial result for the merge; -1: the sequence's only item writes `out`
};

struct DecodeParams : PagedParams {
  int32_t head_chunks;
  // The work list: from an AttentionPlan, or (items == nullptr) every sequence cut into uniform_splits
  // items of chunk_pages pages, item i = (sequence i / uniform_splits, split i % uniform_splits).
  const DecodeWorkItem* items;
  const int32_t* planned_lens;  // plan only: the lengths the plan was built for, checked against the device's
  int32_t uniform_splits, chunk_pages;
  // Items ahead (about one wave of CTAs) whose metadata each item's first CTA warms in L2; 0: none.
  int32_t prefetch_ahead;
  float* partial_out;  // [partials, Hq, D] normalized partial outputs of split sequences
  float* partial_lse;  // [partials, Hq] their log2-sum-exp2
  // Varlen calls: only sequences with exactly one row are decoded here (the prefill kernel takes longer
  // ones; query_start and num_tokens are in PagedParams).
};

struct MergeParams {
  const float* partial_out;
  const float* partial_lse;
  const int32_t* partial_begin;  // per sequence; nullptr: uniform splits (begin = seq * uniform_splits)
  const int32_t* partial_count;
  int32_t uniform_splits;
  void* out;
  int64_t o_stride_token, o_stride_head;
  int32_t num_seqs, num_q_heads, head_dim;
  const int32_t* query_start;  // as in DecodeParams
  int32_t num_tokens;
};

struct WriteKvParams {
  const void* key;
  const void* value;
  int64_t k_stride_token, k_stride_head, v_stride_token, v_stride_head;
  void* key_cache;
  void* value_cache;
  const int32_t* slot_mapping;
  int32_t num_tokens, num_kv_heads, head_dim;
  int64_t num_slots;
  DeviceErrorRecord* error;
};

}  // namespace pagedattn::cuda
