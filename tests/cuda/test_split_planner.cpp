// The split-KV planner (host only): items cover every sequence's pages exactly once, stay within the
// shared-memory table slice, fill the GPU to about the target and come longest first; and the fast
// division the kernels use for runtime block sizes.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "attention/cuda/split_planner.h"

namespace pagedattn::cuda {
namespace {

void expect_valid(const SplitRequest& r, const SplitPlan& plan) {
  const size_t B = r.context_lens.size();
  std::map<int32_t, std::vector<const DecodeWorkItem*>> by_seq;
  for (const DecodeWorkItem& item : plan.items) by_seq[item.seq].push_back(&item);
  ASSERT_EQ(by_seq.size(), B);
  int32_t partials = 0;
  for (size_t b = 0; b < B; ++b) {
    auto& items = by_seq[static_cast<int32_t>(b)];
    std::sort(items.begin(), items.end(), [](auto* x, auto* y) { return x->first_page < y->first_page; });
    const int64_t pages = (r.context_lens[b] + r.block_size - 1) / r.block_size;
    int64_t next = 0;
    for (const DecodeWorkItem* item : items) {
      EXPECT_EQ(item->first_page, next);
      EXPECT_LE(item->num_pages, r.max_item_pages);
      EXPECT_LE(item->num_pages, plan.chunk_pages);
      next += item->num_pages;
    }
    EXPECT_EQ(next, pages) << "sequence " << b;
    EXPECT_EQ(plan.partial_count[b], static_cast<int32_t>(items.size()));
    if (items.size() == 1) {
      EXPECT_EQ(items[0]->partial, -1);
    } else {
      for (size_t s = 0; s < items.size(); ++s) EXPECT_EQ(items[s]->partial, plan.partial_begin[b] + static_cast<int32_t>(s));
      partials += static_cast<int32_t>(items.size());
    }
  }
  EXPECT_EQ(plan.num_partials, partials);
  for (size_t i = 1; i < plan.items.size(); ++i) EXPECT_GE(plan.items[i - 1].num_pages, plan.items[i].num_pages);
}

TEST(SplitPlanner, OneLongSequenceFillsTheGpu) {
  const std::vector<int32_t> lens{32768};
  const SplitRequest r{.context_lens = lens, .block_size = 16, .ctas_per_item = 8, .target_ctas = 264};
  const SplitPlan plan = plan_splits(r);
  expect_valid(r, plan);
  EXPECT_LE(static_cast<int64_t>(plan.items.size()) * 8, 264);
  EXPECT_GE(static_cast<int64_t>(plan.items.size()) * 8, 240);
}

TEST(SplitPlanner, LargeBatchesAreNotSplit) {
  const std::vector<int32_t> lens(256, 512);
  const SplitRequest r{.context_lens = lens, .block_size = 16, .ctas_per_item = 8, .target_ctas = 264};
  const SplitPlan plan = plan_splits(r);
  expect_valid(r, plan);
  EXPECT_EQ(plan.items.size(), 256u);
  EXPECT_FALSE(plan.any_split());
}

TEST(SplitPlanner, ABatchWithACtaOnNearlyEverySmIsNotSplit) {
  // 16 sequences x 8 KV heads = 128 CTAs on 132 SMs: splitting in two would only add merge work.
  const std::vector<int32_t> lens(16, 4096);
  const SplitRequest r{.context_lens = lens, .block_size = 16, .ctas_per_item = 8, .target_ctas = 264, .unsplit_ctas = 118};
  const SplitPlan plan = plan_splits(r);
  expect_valid(r, plan);
  EXPECT_FALSE(plan.any_split());
  // 14 sequences (112 CTAs) leave 20 SMs idle: those are split.
  const std::vector<int32_t> fewer(14, 4096);
  const SplitRequest r2{.context_lens = fewer, .block_size = 16, .ctas_per_item = 8, .target_ctas = 264, .unsplit_ctas = 118};
  const SplitPlan plan2 = plan_splits(r2);
  expect_valid(r2, plan2);
  EXPECT_TRUE(plan2.any_split());
  EXPECT_LE(static_cast<int64_t>(plan2.items.size()) * 8, 264);
}

TEST(SplitPlanner, TableSliceBoundsItemsEvenWithoutSplitting) {
  const std::vector<int32_t> lens(300, 5000);
  const SplitRequest r{.context_lens = lens, .block_size = 1, .ctas_per_item = 8, .target_ctas = 264};
  const SplitPlan plan = plan_splits(r);
  expect_valid(r, plan);
  EXPECT_EQ(plan.chunk_pages, kMaxItemPages);
}

TEST(SplitPlanner, RaggedBatchesGiveEvenItems) {
  const std::vector<int32_t> lens{4, 4000, 3, 5};
  const SplitRequest r{.context_lens = lens, .block_size = 16, .ctas_per_item = 8, .target_ctas = 264};
  const SplitPlan plan = plan_splits(r);
  expect_valid(r, plan);
  EXPECT_GT(plan.partial_count[1], 1);
  EXPECT_EQ(plan.items.front().seq, 1) << "the long sequence's pieces start first";
}

TEST(SplitPlanner, RandomBatches) {
  std::mt19937_64 rng(3);
  for (int i = 0; i < 300; ++i) {
    std::vector<int32_t> lens(std::uniform_int_distribution<size_t>(1, 70)(rng));
    for (auto& l : lens) l = std::uniform_int_distribution<int32_t>(0, 40000)(rng);
    const SplitRequest r{.context_lens = lens,
                         .block_size = std::uniform_int_distribution<int64_t>(1, 256)(rng),
                         .ctas_per_item = std::uniform_int_distribution<int64_t>(1, 64)(rng),
                         .target_ctas = std::uniform_int_distribution<int64_t>(16, 600)(rng)};
    expect_valid(r, plan_splits(r));
  }
}

// The decode grid: one CTA per KV head and chunk of up to 16 of its query heads.
TEST(DecodeGrid, OneCtaPerKvHeadAndHeadChunk) {
  EXPECT_EQ(decode_ctas_per_item(/*num_kv_heads=*/8, /*group_size=*/4), 8);
  EXPECT_EQ(decode_ctas_per_item(3, 3), 3);    // SmolLM2
  EXPECT_EQ(decode_ctas_per_item(8, 16), 8);   // one full chunk
  EXPECT_EQ(decode_ctas_per_item(8, 17), 16);  // 16 + 1
  EXPECT_EQ(decode_head_chunks(40), 3);        // 16, 16, 8
  EXPECT_EQ(decode_ctas_per_item(8, 40), 24);
}

TEST(FastDivisor, MatchesIntegerDivision) {
  std::mt19937_64 rng(5);
  for (uint32_t d = 1; d <= 1024; ++d) {
    const FastDivisor f = make_fast_divisor(d);
    for (uint32_t n : {0u, 1u, d - 1, d, d + 1, 2 * d - 1, 2 * d, 1000000u, (1u << 31) - 1}) ASSERT_EQ(fast_divide(n, f), n / d) << n << " / " << d;
    for (int i = 0; i < 200; ++i) {
      const uint32_t n = std::uniform_int_distribution<uint32_t>(0, (1u << 31) - 1)(rng);
      ASSERT_EQ(fast_divide(n, f), n / d) << n << " / " << d;
    }
  }
}

}  // namespace
}  // namespace pagedattn::cuda
