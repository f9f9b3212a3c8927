// Properties of the CPU planner: whatever the batch and thread count, the items cover every (row, query
// head, visible position) exactly once, splits are consistent with their groups, and work is ordered.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <map>
#include <tuple>

#include "attention/cpu/attention_plan.h"

using namespace pagedattn;
using namespace pagedattn::cpu;

namespace {

struct Batch {
  AttentionShape shape;
  std::vector<int32_t> context_lens, query_start;  // query_start empty: decode
  bool causal = true;
};

Batch random_batch() {
  Batch b;
  const auto num_seqs = *rc::gen::inRange(1, 7);
  b.shape.num_kv_heads = *rc::gen::inRange(1, 5);
  b.shape.num_q_heads = b.shape.num_kv_heads * *rc::gen::element(1, 2, 3, 4, 8, 16);
  b.shape.head_dim = *rc::gen::element(8, 64, 128);
  b.shape.num_seqs = num_seqs;
  b.causal = *rc::gen::element(true, true, false);
  const bool varlen = *rc::gen::arbitrary<bool>();
  int32_t rows = 0;
  if (varlen) b.query_start.push_back(0);
  for (int i = 0; i < num_seqs; ++i) {
    const int32_t ctx = *rc::gen::inRange(varlen ? 0 : 1, 3000);
    b.context_lens.push_back(ctx);
    if (varlen) {
      rows += *rc::gen::inRange(0, std::min(ctx, 70) + 1);
      b.query_start.push_back(rows);
    }
  }
  b.shape.num_tokens = varlen ? rows : num_seqs;
  b.shape.varlen = varlen;
  return b;
}

// coverage[(row, kv head)] = positions seen, as (begin, end) ranges
void check_plan(const Batch& b, const PlanOptions& options) {
  const AttentionShape& s = b.shape;
  const int32_t* qs = b.query_start.empty() ? nullptr : b.query_start.data();
  const WorkPlan plan = make_plan(s, b.context_lens.data(), qs, b.causal, options);
  std::map<std::pair<int64_t, int64_t>, std::vector<std::pair<int32_t, int32_t>>> seen;
  int64_t max_vectors = 0;
  for (size_t i = 0; i < plan.items.size(); ++i) {
    const WorkItem& it = plan.items[i];
    if (i > 0) RC_ASSERT(plan.items[i - 1].cost >= it.cost);
    RC_ASSERT(it.kv_begin < it.kv_end);
    RC_ASSERT(it.row_begin < it.row_end);
    RC_ASSERT(it.head_begin < it.head_end);
    max_vectors = std::max(max_vectors, it.num_vectors(s.group_size()));
    const int64_t row0 = qs ? qs[it.seq] : it.seq, q_len = qs ? qs[it.seq + 1] - row0 : 1;
    RC_ASSERT(it.row_begin >= row0 && it.row_end <= row0 + q_len);
    RC_ASSERT(it.kv_end <= b.context_lens[static_cast<size_t>(it.seq)]);  // never past the sequence
    if (it.partial >= 0) RC_ASSERT(it.partial + it.num_vectors(s.group_size()) * (s.head_dim + 2) <= plan.partial_floats);
    for (int64_t row = it.row_begin; row < it.row_end; ++row)
      for (int64_t h = it.head_begin; h < it.head_end; ++h) seen[{row, h}].push_back({it.kv_begin, it.kv_end});
  }
  RC_ASSERT(plan.max_vectors == max_vectors);
  // Every (row, kv head) of every sequence: its ranges tile [0, visible end) where the visible end is at
  // least the row's own limit + 1 (a row tile shares its last row's range; later positions are masked).
  for (int64_t seq = 0; seq < s.num_seqs; ++seq) {
    const int64_t row0 = qs ? qs[seq] : seq, q_len = qs ? qs[seq + 1] - row0 : 1;
    const int64_t ctx = b.context_lens[static_cast<size_t>(seq)];
    for (int64_t row = row0; row < row0 + q_len; ++row) {
      const int64_t limit = b.causal ? ctx - q_len + (row - row0) : ctx - 1;
      for (int64_t h = 0; h < s.num_kv_heads; ++h) {
        auto ranges = seen[{row, h}];
        RC_ASSERT(!ranges.empty());
        std::sort(ranges.begin(), ranges.end());
        RC_ASSERT(ranges.front().first == 0);
        for (size_t i = 1; i < ranges.size(); ++i) RC_ASSERT(ranges[i].first == ranges[i - 1].second);
        RC_ASSERT(ranges.back().second >= limit + 1);
        seen.erase({row, h});
      }
    }
  }
  RC_ASSERT(seen.empty());  // nothing for rows that do not exist
  // Split groups: their items write disjoint partial slots, one per split.
  for (const SplitGroup& g : plan.splits) {
    int32_t items = 0;
    for (const WorkItem& it : plan.items)
      if (it.partial >= g.first_partial && it.partial < g.first_partial + g.num_splits * g.slot_floats) {
        RC_ASSERT((it.partial - g.first_partial) % g.slot_floats == 0);
        RC_ASSERT(it.seq == g.seq && it.row_begin == g.row_begin && it.head_begin == g.head_begin);
        ++items;
      }
    RC_ASSERT(items == g.num_splits);
    RC_ASSERT(g.num_splits >= 2);
  }
}

RC_GTEST_PROP(CpuPlan, ItemsCoverEveryVisiblePositionOnce, ()) {
  const Batch b = random_batch();
  PlanOptions options;
  options.num_threads = *rc::gen::inRange(1, 33);
  options.target_vectors = *rc::gen::element(1, 8, 32, 64);
  options.min_chunk = *rc::gen::element(1, 64, 256);
  check_plan(b, options);
}

TEST(CpuPlan, OneLongSequenceIsSplitAcrossThreads) {
  AttentionShape s{.num_seqs = 1, .num_tokens = 1, .num_q_heads = 32, .num_kv_heads = 8, .head_dim = 128};
  const int32_t ctx = 32768;
  const WorkPlan plan = make_plan(s, &ctx, nullptr, true, PlanOptions{.num_threads = 2});
  ASSERT_EQ(plan.splits.size(), 1u);  // all 8 KV heads share each token row read: one group
  EXPECT_GE(plan.items.size(), 4u);   // at least two items per thread
  EXPECT_EQ(plan.items.front().cost, plan.items.back().cost);  // equal chunks
}

TEST(CpuPlan, LargeDecodeBatchIsNotSplit) {
  AttentionShape s{.num_seqs = 16, .num_tokens = 16, .num_q_heads = 32, .num_kv_heads = 8, .head_dim = 128};
  const std::vector<int32_t> ctx(16, 4096);
  const WorkPlan plan = make_plan(s, ctx.data(), nullptr, true, PlanOptions{.num_threads = 2});
  EXPECT_TRUE(plan.splits.empty());
  EXPECT_EQ(plan.items.size(), 16u);
  EXPECT_EQ(plan.partial_floats, 0);
}

}  // namespace
