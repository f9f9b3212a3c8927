// The scheduler over a real KV cache, without a model: the token budget and chunked prefill, running
// requests before waiting ones, max_num_seqs, preemption of the newest request when blocks run out (its
// blocks freed, recomputed later from the start), no admission in a step that preempted, prefix-cache hits,
// and the cache's invariants after every step.
#include <gtest/gtest.h>

#include <memory>
#include <numeric>
#include <vector>

#include "pagedattn/error.h"
#include "pagedattn/kv_cache.h"
#include "runtime/scheduler.h"

using namespace pagedattn;

namespace {

KvCacheConfig tiny_cache(int32_t num_blocks, int32_t block_size = 4) {
  return {.num_blocks = num_blocks, .block_size = block_size, .num_layers = 1, .num_kv_heads = 1, .head_dim = 8,
          .dtype = DType::f32};
}

std::vector<int32_t> iota_tokens(int64_t n, int32_t first) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), first);
  return t;
}

struct Harness {
  explicit Harness(int32_t num_blocks, SchedulerConfig config, int32_t block_size = 4)
      : cache(tiny_cache(num_blocks, block_size)), scheduler(cache, config) {}

  Request* add(int64_t prompt_len, int32_t first_token = 100) {
    requests.push_back(std::make_unique<Request>(static_cast<RequestId>(requests.size()),
                                                 iota_tokens(prompt_len, first_token), GenerationParams{}));
    scheduler.add(requests.back().get());
    return requests.back().get();
  }

  // What the engine does after the forward: the chunks are computed; each request whose tokens are all
  // computed gets a new token.
  std::vector<ScheduledChunk> step() {
    std::vector<ScheduledChunk> chunks = scheduler.schedule();
    for (const ScheduledChunk& c : chunks) {
      c.request->num_computed += c.num_new_tokens;
      if (c.request->num_uncomputed() == 0) c.request->tokens.push_back(7);
    }
    cache.manager().check_invariants();
    return chunks;
  }

  KvCache cache;
  Scheduler scheduler;
  std::vector<std::unique_ptr<Request>> requests;
};

int64_t tokens_of(const std::vector<ScheduledChunk>& chunks) {
  int64_t n = 0;
  for (const ScheduledChunk& c : chunks) n += c.num_new_tokens;
  return n;
}

}  // namespace

TEST(Scheduler, ChunkedPrefillUnderTheTokenBudget) {
  Harness h(64, {.max_num_seqs = 8, .max_num_batched_tokens = 10});
  Request* a = h.add(23, 100);
  Request* b = h.add(5, 200);
  auto s1 = h.step();  // a's first 10 tokens fill the budget; b waits
  ASSERT_EQ(s1.size(), 1u);
  EXPECT_EQ(s1[0].request, a);
  EXPECT_EQ(s1[0].num_new_tokens, 10);
  EXPECT_EQ(b->status, RequestStatus::waiting);
  auto s2 = h.step();  // a's next 10
  ASSERT_EQ(s2.size(), 1u);
  EXPECT_EQ(s2[0].num_new_tokens, 10);
  auto s3 = h.step();  // a's last 3, then b's 5 in the same step
  ASSERT_EQ(s3.size(), 2u);
  EXPECT_EQ(s3[0].request, a);
  EXPECT_EQ(s3[0].num_new_tokens, 3);
  EXPECT_EQ(s3[1].request, b);
  EXPECT_EQ(s3[1].num_new_tokens, 5);
  EXPECT_EQ(a->num_generated(), 1);
  auto s4 = h.step();  // both decode
  ASSERT_EQ(s4.size(), 2u);
  EXPECT_EQ(tokens_of(s4), 2);
  EXPECT_EQ(h.cache.manager().num_tokens(*a->seq), 24);
}

TEST(Scheduler, RunningRequestsComeFirstAndMaxNumSeqsCaps) {
  Harness h(64, {.max_num_seqs = 2, .max_num_batched_tokens = 100});
  Request* a = h.add(3, 100);
  Request* b = h.add(3, 200);
  Request* c = h.add(3, 300);
  auto s1 = h.step();
  ASSERT_EQ(s1.size(), 2u);
  EXPECT_EQ(c->status, RequestStatus::waiting);
  h.scheduler.finish(a);
  EXPECT_EQ(a->status, RequestStatus::finished);
  EXPECT_FALSE(a->seq.has_value());
  auto s2 = h.step();  // b decodes first, then c is admitted
  ASSERT_EQ(s2.size(), 2u);
  EXPECT_EQ(s2[0].request, b);
  EXPECT_EQ(s2[1].request, c);
  EXPECT_EQ(h.scheduler.num_running(), 2u);
}

TEST(Scheduler, PreemptsTheNewestWhenBlocksRunOutAndRecomputesIt) {
  // 4 blocks of 4 tokens: a and b take 2 blocks each with 7-token prompts; a's 9th token needs a third.
  Harness h(4, {.max_num_seqs = 8, .max_num_batched_tokens = 100});
  Request* a = h.add(7, 100);
  Request* b = h.add(7, 200);
  h.step();  // both prefill (8 tokens each after sampling: 7 computed)
  EXPECT_EQ(h.cache.manager().num_available_blocks(), 0);
  auto s2 = h.step();  // both decode their 8th token: fits in their second blocks
  EXPECT_EQ(s2.size(), 2u);
  auto s3 = h.step();  // a's 9th token needs a block: b (newest) is preempted
  ASSERT_EQ(s3.size(), 1u);
  EXPECT_EQ(s3[0].request, a);
  EXPECT_EQ(h.scheduler.num_preemptions(), 1);
  EXPECT_EQ(b->status, RequestStatus::waiting);
  EXPECT_FALSE(b->seq.has_value());
  EXPECT_EQ(b->num_computed, 0);
  EXPECT_EQ(b->num_tokens(), 9);  // its prompt and the 2 tokens it generated survive for the recompute
  h.scheduler.finish(a);
  // b recomputes its 9 tokens, except its first block, still in the prefix cache (a's new block evicted
  // b's deepest one, the least recently used).
  auto s4 = h.step();
  ASSERT_EQ(s4.size(), 1u);
  EXPECT_EQ(s4[0].request, b);
  EXPECT_EQ(s4[0].num_new_tokens, 5);
  EXPECT_EQ(h.scheduler.num_cached_tokens(), 4);
}

TEST(Scheduler, NoAdmissionInAStepThatPreempted) {
  Harness h(4, {.max_num_seqs = 8, .max_num_batched_tokens = 100});
  h.add(7, 100);
  h.add(7, 200);
  h.step();
  h.step();
  Request* c = h.add(1, 300);
  h.step();  // preempts b; c must not be admitted in the same step
  EXPECT_EQ(c->status, RequestStatus::waiting);
  EXPECT_EQ(h.scheduler.num_waiting(), 2u);
}

TEST(Scheduler, ARequestTooLargeForAnEmptyPoolIsAnError) {
  Harness h(2, {.max_num_seqs = 8, .max_num_batched_tokens = 100});
  Request* a = h.add(8);  // exactly 2 blocks, then a 9th token that can never fit
  h.step();
  EXPECT_EQ(a->num_tokens(), 9);
  try {
    h.scheduler.schedule();
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::runtime);
    EXPECT_NE(std::string(e.what()).find("request 0 needs 9 tokens of a 2-block pool"), std::string::npos) << e.what();
  }
}

TEST(Scheduler, WaitingRequestThatDoesNotFitWaitsWithoutHoldingBlocks) {
  Harness h(3, {.max_num_seqs = 8, .max_num_batched_tokens = 100});
  h.add(8, 100);
  Request* b = h.add(8, 200);
  h.step();  // a takes 2 blocks (+ 1 for its sampled token later); b's 8 tokens need 2, only 1 left
  EXPECT_EQ(b->status, RequestStatus::waiting);
  EXPECT_FALSE(b->seq.has_value());
  EXPECT_EQ(h.cache.manager().num_sequences(), 1u);
}

TEST(Scheduler, PrefixCacheHitsSkipComputedBlocks) {
  Harness h(32, {.max_num_seqs = 8, .max_num_batched_tokens = 100});
  Request* a = h.add(10, 100);
  h.step();
  h.scheduler.finish(a);  // its two full blocks stay cached
  Request* b = h.add(10, 100);  // same prompt
  auto s = h.step();
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].num_new_tokens, 2);  // 8 tokens from the cache, 2 computed
  EXPECT_EQ(h.scheduler.num_cached_tokens(), 8);
  EXPECT_EQ(b->num_computed, 10);
}
