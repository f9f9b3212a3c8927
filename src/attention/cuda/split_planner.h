// The split-KV planner (host, no CUDA): cuts each sequence's pages into work items so that the decode
// grid has enough CTAs to fill the GPU (about target_ctas) and every CTA has about the same work.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "attention/cuda/decode_params.h"

namespace pagedattn::cuda {

// target_ctas and unsplit_ctas for a GPU with `sms` SMs.
struct SplitTargets {
  int64_t target_ctas, unsplit_ctas;
};
constexpr SplitTargets split_targets(int64_t sms) { return {kTargetCtasPerSm * sms, sms * 9 / 10}; }
// The defaults of a SplitRequest: an H100 SXM's 132 SMs (the launcher asks the device).
inline constexpr SplitTargets kDefaultSplitTargets = split_targets(132);

struct SplitRequest {
  std::span<const int32_t> context_lens;  // host copy of this step's lengths (>= 0)
  int64_t block_size = 16;
  int64_t ctas_per_item = 1;  // CTAs launched per work item: KV heads x head chunks
  int64_t target_ctas = kDefaultSplitTargets.target_ctas;  // ~SMs x kTargetCtasPerSm
  // An unsplit grid of at least this many CTAs (~0.9 x SMs: one on nearly every SM) is not split: a lone
  // CTA per SM streams its pages about as fast as two half-length CTAs do, and the split adds partial
  // writes and a merge (2-5% slower at B=16 ctx=4096 on an H200, bench/results/cuda_h200.md, run 24).
  int64_t unsplit_ctas = kDefaultSplitTargets.unsplit_ctas;
  int64_t max_item_pages = kMaxItemPages;
  int64_t min_item_tokens = 256;  // below this a split costs more (start-up, merge) than it balances
};

struct SplitPlan {
  int32_t chunk_pages = 1;                 // pages per item (the last item of a sequence may have fewer)
  std::vector<DecodeWorkItem> items;       // launch order: longest first, so the tail of the grid is short
  std::vector<int32_t> partial_begin;      // per sequence: its first partial slot (split sequences only)
  std::vector<int32_t> partial_count;      // per sequence: its number of items
  int32_t num_partials = 0;                // slots used by split sequences
  bool any_split() const { return num_partials > 0; }
};

// Pages per item: the smallest chunk whose CTA count stays within target_ctas (as many CTAs as the
// target allows), never below min_item_tokens, never above max_item_pages; no split when the batch
// alone reaches the target or unsplit_ctas. pages_per_seq: each sequence's live pages.
int32_t choose_chunk_pages(std::span<const int64_t> pages_per_seq, const SplitRequest& request);

SplitPlan plan_splits(const SplitRequest& request);

}  // namespace pagedattn::cuda
