// The CPU backend's host planner: cuts one paged_attention call into independent work items for OpenMP.
// An item is (sequence, range of KV heads, tile of query rows, range of KV positions); sequences too long
// for the batch to fill every core are split over their KV length and merged afterwards by log-sum-exp.
#pragma once

#include <cstdint>
#include <vector>

#include "pagedattn/attention.h"

namespace pagedattn::cpu {

// What an item reads and computes. Its query vectors are every (row, query head) pair of its rows and KV
// heads, ordered head-major: r = ((kv_head - head_begin) * rows + row - row_begin) * group + member.
struct WorkItem {
  int32_t seq = 0;
  int32_t head_begin = 0, head_end = 0;  // KV heads
  int32_t row_begin = 0, row_end = 0;    // query rows (indices into query/out)
  int32_t kv_begin = 0, kv_end = 0;      // KV positions
  // Offset (in floats) of this item's partial result in the plan's partial buffer, or -1 when the item
  // covers its rows' whole visible range and writes `out` directly.
  int64_t partial = -1;
  int64_t cost = 0;  // query vectors x positions, for ordering

  int64_t num_vectors(int64_t group) const { return int64_t{head_end - head_begin} * (row_end - row_begin) * group; }
};

// Items that split one (sequence, heads, rows) range over KV; their partials are merged by log-sum-exp.
// Partial layout per item: o [R][D] (unnormalized), then m [R] (running max), then l [R] (sum of weights).
struct SplitGroup {
  int32_t seq = 0;
  int32_t head_begin = 0, head_end = 0;
  int32_t row_begin = 0, row_end = 0;
  int64_t first_partial = 0;  // offset of the first item's partial; the others follow at slot_floats apart
  int32_t num_splits = 0;
  int64_t slot_floats = 0;
};

struct WorkPlan {
  std::vector<WorkItem> items;  // most expensive first, for dynamic scheduling
  std::vector<SplitGroup> splits;
  int64_t partial_floats = 0;   // size of the partial buffer
  int64_t max_vectors = 0;      // the largest item's query-vector count (sizes the per-thread scratch)
};

// Tuning of the planner (exposed so that tests can force splits and odd tilings).
struct PlanOptions {
  int num_threads = 1;
  int64_t target_vectors = 32;   // query vectors per item: rows x heads x group, at least one row and head
  int64_t items_per_thread = 4;  // split KV until there are about this many items per thread
  int64_t min_chunk = 256;       // never split KV into chunks shorter than this many positions
};

// context_lens [B] and query_start [B+1] (nullptr: decode, row b is sequence b) as validated.
WorkPlan make_plan(const AttentionShape& shape, const int32_t* context_lens, const int32_t* query_start,
                        bool causal, const PlanOptions& options);

}  // namespace pagedattn::cpu
