// Plain structs shared by the host launch code and the CUDA decode kernels (no CUDA headers needed).
#pragma once

#include <cstdint>

#include "attention/cuda/device_error.h"

namespace pagedattn::cuda {

// A work item's block-table slice is staged in shared memory: the planner never gives an item more pages.
inline constexpr int kMaxItemPages = 2048;
// The planner aims for this many CTAs per SM (enough to fill the GPU; balanced work per CTA).
#ifndef PAGEDATTN_TUNE_CTAS_PER_SM
#define PAGEDATTN_TUNE_CTAS_PER_SM 2
#endif
inline constexpr int kTargetCtasPerSm = PAGEDATTN_TUNE_CTAS_PER_SM;
// Query heads one CTA handles (the rows of an mma tile); larger GQA groups take several CTAs per KV head.
inline constexpr int kHeadsPerCta = 16;

// One CTA's share of a sequence, for each (KV head, head chunk): pages [first_page, first_page + num_pages).
struct DecodeWorkItem {
  int32_t seq;
  int32_t first_page;
  int32_t num_pages;
  int32_t partial;  // slot of its partial result for the merge; -1: the sequence's only item writes `out`
};

// n / d for 0 <= n < 2^31 with a multiply and a shift (d is a runtime block size).
struct FastDivisor {
  uint32_t divisor;
  uint32_t multiplier;
  uint32_t shift;
};

constexpr FastDivisor make_fast_divisor(uint32_t d) {
  uint32_t shift = 0;
  while ((uint64_t{1} << shift) < d) ++shift;
  const uint64_t m = ((uint64_t{1} << 32) * ((uint64_t{1} << shift) - d)) / d + 1;
  return {d, static_cast<uint32_t>(m), shift};
}

// The host twin of the device division, for tests.
constexpr uint32_t fast_divide(uint32_t n, FastDivisor f) {
  const uint32_t hi = static_cast<uint32_t>((uint64_t{n} * f.multiplier) >> 32);
  return static_cast<uint32_t>((uint64_t{hi} + n) >> f.shift);
}

struct DecodeParams {
  const void* query;
  int64_t q_stride_token, q_stride_head;
  void* out;
  int64_t o_stride_token, o_stride_head;
  const void* key_cache;
  const void* value_cache;
  const int32_t* block_tables;
  const int32_t* context_lens;
  int32_t num_q_heads, num_kv_heads, group_size, head_chunks;
  int32_t num_blocks, block_size, max_blocks_per_seq, max_context_len;
  FastDivisor block_div;
  float scale_log2;  // softmax scale * log2(e): scores live in the exp2 domain
  // The work list: from an AttentionPlan, or (items == nullptr) every sequence cut into uniform_splits
  // items of chunk_pages pages, item i = (sequence i / uniform_splits, split i % uniform_splits).
  const DecodeWorkItem* items;
  const int32_t* planned_lens;  // plan only: the lengths the plan was built for, checked against the device's
  int32_t uniform_splits, chunk_pages;
  float* partial_out;  // [partials, Hq, D] normalized partial outputs of split sequences
  float* partial_lse;  // [partials, Hq] their log2-sum-exp2
  DeviceErrorRecord* error;
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
