// The engine on the real model (SmolLM2-135M): generating several prompts together gives exactly the
// tokens of generating each alone (greedy and seeded sampling), and so do chunked prefill, preemption under
// a small KV cache and prefix-cache hits; requests end at max_tokens, end-of-generation tokens and stop
// strings; cancel frees blocks; bad requests are refused with a message and change nothing.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model_file.h"
#include "pagedattn/engine.h"
#include "pagedattn/error.h"
#include "pagedattn/gguf.h"
#include "pagedattn/model.h"
#include "pagedattn/tokenizer.h"

using namespace pagedattn;

namespace {

struct Generated {
  std::vector<int32_t> tokens;
  std::string text;
  FinishReason finish = FinishReason::none;
};

class EngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!std::filesystem::exists(pagedattn::testing::model_file())) return;
    const GgufFile file = GgufFile::open(pagedattn::testing::model_file());
    model_ = std::make_unique<LlamaModel>(LlamaModel::load(file));
    tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::from_gguf(file));
  }
  static void TearDownTestSuite() {
    model_.reset();
    tokenizer_.reset();
  }
  void SetUp() override { PA_REQUIRE_MODEL(); }

  static std::vector<int32_t> chat(const std::string& user) {
    return tokenizer_->encode(tokenizer_->apply_chat_template(std::vector<ChatMessage>{{"user", user}}, true));
  }

  // Runs every prompt to completion in one engine; results in prompt order.
  static std::vector<Generated> generate(Engine& engine, const std::vector<std::vector<int32_t>>& prompts,
                                         const GenerationParams& params) {
    std::map<RequestId, size_t> index;
    for (size_t i = 0; i < prompts.size(); ++i) {
      GenerationParams p = params;
      p.sampling.seed = params.sampling.seed + i;
      index[engine.add_request(prompts[i], p)] = i;
    }
    std::vector<Generated> out(prompts.size());
    while (engine.has_unfinished()) {
      for (const RequestOutput& o : engine.step()) {
        Generated& g = out[index.at(o.id)];
        EXPECT_EQ(g.finish, FinishReason::none) << "output after the request finished";
        g.tokens.push_back(o.token);
        g.text += o.text;
        g.finish = o.finish;
        EXPECT_EQ(o.num_generated, static_cast<int64_t>(g.tokens.size()));
      }
    }
    return out;
  }

  static std::vector<Generated> generate(const EngineConfig& config, const std::vector<std::vector<int32_t>>& prompts,
                                         const GenerationParams& params, EngineStats* stats = nullptr) {
    Engine engine(*model_, *tokenizer_, config);
    auto out = generate(engine, prompts, params);
    if (stats) *stats = engine.stats();
    return out;
  }

  static std::vector<std::vector<int32_t>> prompts() {
    return {chat("What is paged attention?"), tokenizer_->encode("The capital of France is"),
            chat("Write a haiku about the sea."), tokenizer_->encode("def fibonacci(n):")};
  }

  static std::unique_ptr<LlamaModel> model_;
  static std::unique_ptr<Tokenizer> tokenizer_;
};
std::unique_ptr<LlamaModel> EngineTest::model_;
std::unique_ptr<Tokenizer> EngineTest::tokenizer_;

// The tests that generate many tokens several times over (token equality across configurations). The
// sanitizer run of scripts/test.sh leaves them out by this name: its engine paths run there in the
// EngineTest cases, and the optimized run has them all.
class EngineGeneration : public EngineTest {};

GenerationParams greedy(int32_t max_tokens) {
  GenerationParams p;
  p.max_tokens = max_tokens;
  p.ignore_eos = true;
  return p;
}

void expect_same_tokens(const std::vector<Generated>& a, const std::vector<Generated>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].tokens, b[i].tokens) << "prompt " << i;
    EXPECT_EQ(a[i].text, b[i].text) << "prompt " << i;
  }
}

}  // namespace

TEST_F(EngineGeneration, BatchedGenerationEqualsEachPromptAlone) {
  const auto ps = prompts();
  EngineStats stats;
  const auto together = generate(EngineConfig{}, ps, greedy(24), &stats);
  // All four prefill in the first step, then decode together: one step per token, not per (prompt, token).
  EXPECT_EQ(stats.steps, 24);
  EXPECT_EQ(stats.generated_tokens, 4 * 24);
  for (size_t i = 0; i < ps.size(); ++i) {
    const auto alone = generate(EngineConfig{}, {ps[i]}, greedy(24));
    EXPECT_EQ(together[i].tokens, alone[0].tokens) << "prompt " << i;
    EXPECT_EQ(together[i].finish, FinishReason::length);
    EXPECT_EQ(together[i].tokens.size(), 24u);
  }
}

TEST_F(EngineGeneration, SeededSamplingIsReproducibleAndIndependentOfBatching) {
  GenerationParams p = greedy(16);
  p.sampling = {.temperature = 0.9f, .top_k = 40, .top_p = 0.95f, .seed = 11};
  const auto ps = prompts();
  const auto together = generate(EngineConfig{}, ps, p);
  const auto again = generate(EngineConfig{}, ps, p);
  expect_same_tokens(together, again);
  GenerationParams second = p;
  second.sampling.seed = p.sampling.seed + 2;  // prompt 2's seed in the batch
  const auto alone = generate(EngineConfig{}, {ps[2]}, second);
  EXPECT_EQ(together[2].tokens, alone[0].tokens);
}

TEST_F(EngineGeneration, ChunkedPrefillGivesTheSameTokens) {
  const auto ps = prompts();
  const auto one_shot = generate(EngineConfig{}, ps, greedy(12));
  EngineConfig chunked;
  chunked.max_num_batched_tokens = 7;  // prompts of 10-40 tokens in chunks of at most 7, mixed with decodes
  EngineStats stats;
  expect_same_tokens(generate(chunked, ps, greedy(12), &stats), one_shot);
  EXPECT_GT(stats.steps, 12 + 10);
}

TEST_F(EngineGeneration, PreemptionUnderASmallCacheGivesTheSameTokens) {
  const auto ps = prompts();
  const auto ample = generate(EngineConfig{}, ps, greedy(24));
  EngineConfig small;
  small.block_size = 4;
  // 30 layers x K,V x 3 heads x 64 x 4 bytes = 46 KiB a token: room for 72 tokens, enough for any one
  // request (at most 40 + 24), far from the four together.
  small.kv_memory_bytes = 72 * 30 * 2 * 3 * 64 * 4;
  small.prefix_caching = false;
  EngineStats stats;
  expect_same_tokens(generate(small, ps, greedy(24), &stats), ample);
  EXPECT_GT(stats.preemptions, 0);
}

TEST_F(EngineGeneration, PrefixCacheHitsGiveTheSameTokens) {
  // Two chats share the system prompt: the second finds its blocks cached.
  const std::vector<std::vector<int32_t>> ps{chat("Name a colour."), chat("Name a fruit.")};
  EngineConfig cached;
  cached.block_size = 8;
  Engine engine(*model_, *tokenizer_, cached);
  const auto first = generate(engine, {ps[0]}, greedy(8));
  const auto second = generate(engine, {ps[1]}, greedy(8));
  EXPECT_GE(engine.stats().cached_tokens, 24);  // the system prompt is ~30 tokens
  EngineConfig uncached = cached;
  uncached.prefix_caching = false;
  EXPECT_EQ(second[0].tokens, generate(uncached, {ps[1]}, greedy(8))[0].tokens);
  EXPECT_EQ(first[0].tokens, generate(uncached, {ps[0]}, greedy(8))[0].tokens);
}

TEST_F(EngineTest, EndOfGenerationTokenEndsTheRequest) {
  GenerationParams p;
  p.max_tokens = 200;
  const auto out = generate(EngineConfig{}, {chat("Say hello.")}, p);
  ASSERT_EQ(out[0].finish, FinishReason::stop);
  EXPECT_TRUE(tokenizer_->is_end_of_generation(out[0].tokens.back()));
  EXPECT_LT(out[0].tokens.size(), 200u);
  EXPECT_EQ(out[0].text.find("<|im_end|>"), std::string::npos);
  EXPECT_EQ(out[0].text, tokenizer_->decode(out[0].tokens, /*render_special=*/false));
}

TEST_F(EngineGeneration, StopStringEndsTheTextBeforeIt) {
  const auto ps = prompts();
  const auto full = generate(EngineConfig{}, {ps[0]}, greedy(24));
  // A word from the middle of the greedy text becomes the stop string.
  const std::string& text = full[0].text;
  const size_t cut = text.find(' ', text.size() / 2);
  ASSERT_NE(cut, std::string::npos) << text;
  const std::string stop = text.substr(cut, 4);
  GenerationParams p = greedy(24);
  p.stop = {stop};
  const auto stopped = generate(EngineConfig{}, {ps[0]}, p);
  EXPECT_EQ(stopped[0].finish, FinishReason::stop);
  EXPECT_EQ(stopped[0].text, text.substr(0, text.find(stop)));
  EXPECT_LT(stopped[0].tokens.size(), 24u);
}

TEST_F(EngineTest, CancelFreesTheBlocks) {
  Engine engine(*model_, *tokenizer_, EngineConfig{});
  const int32_t all = engine.num_available_blocks();
  const auto ps = prompts();
  const RequestId a = engine.add_request(ps[0], greedy(100));
  const RequestId b = engine.add_request(ps[1], greedy(100));
  engine.step();
  EXPECT_EQ(engine.num_running(), 2u);
  EXPECT_LT(engine.num_available_blocks(), all);
  engine.cancel(a);
  EXPECT_EQ(engine.num_running(), 1u);
  engine.cancel(a);  // already gone: ignored
  engine.cancel(b);
  EXPECT_FALSE(engine.has_unfinished());
  EXPECT_TRUE(engine.step().empty());
  // Released blocks are free or cached-evictable: all of them are available again.
  EXPECT_EQ(engine.num_available_blocks(), all);
}

TEST_F(EngineTest, RefusesBadRequestsAndQueuesNothing) {
  EngineConfig config;
  config.kv_memory_bytes = 64 * 30 * 2 * 3 * 64 * 4;  // 64 tokens: max_model_len 64
  Engine engine(*model_, *tokenizer_, config);
  EXPECT_EQ(engine.max_model_len(), 64);
  auto error_of = [&](std::vector<int32_t> prompt, const GenerationParams& p) -> std::string {
    try {
      engine.add_request(std::move(prompt), p);
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::invalid_argument);
      return e.what();
    }
    return "(no error)";
  };
  EXPECT_EQ(error_of({}, greedy(4)), "add_request: the prompt is empty: expected at least one token");
  EXPECT_EQ(error_of({1, 49152}, greedy(4)), "add_request: prompt[1] = 49152: expected a token id in [0, 49152)");
  EXPECT_EQ(error_of({1, -3}, greedy(4)), "add_request: prompt[1] = -3: expected a token id in [0, 49152)");
  EXPECT_EQ(error_of(std::vector<int32_t>(64, 1), greedy(4)),
            "add_request: the prompt has 64 tokens: expected fewer than max_model_len = 64");
  EXPECT_EQ(error_of({1}, greedy(0)), "add_request: max_tokens = 0: expected > 0");
  GenerationParams bad = greedy(4);
  bad.sampling.top_p = 0.0f;
  EXPECT_EQ(error_of({1}, bad), "sampler: top_p = 0: expected a value in (0, 1]");
  bad = greedy(4);
  bad.stop = {""};
  EXPECT_EQ(error_of({1}, bad), "stop[0] is empty: expected a non-empty stop string");
  EXPECT_FALSE(engine.has_unfinished());
  EXPECT_EQ(engine.num_waiting(), 0u);
}

TEST_F(EngineTest, GenerationStopsAtMaxModelLen) {
  EngineConfig config;
  config.kv_memory_bytes = 64 * 30 * 2 * 3 * 64 * 4;
  const auto out = generate(config, {std::vector<int32_t>(60, 28)}, greedy(100));
  EXPECT_EQ(out[0].finish, FinishReason::length);
  EXPECT_EQ(out[0].tokens.size(), 4u);  // 60 + 4 = max_model_len
}
