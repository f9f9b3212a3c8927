// The Llama forward's consistency on the real model: chunked prefill (chunks of 7) equals one-shot
// prefill, a batch of sequences equals each sequence alone, decode equals the matching prefill row, mixed
// prefill+decode steps work, f16/bf16 caches stay close to f32, and bad arguments are refused with a
// message. (Agreement with an independent implementation: python/test_forward_oracle.py.)
#include <gtest/gtest.h>

#include <cmath>

#include "model_file.h"
#include "paged_kv_for_tests.h"
#include "pagedattn/error.h"
#include "pagedattn/gguf.h"
#include "pagedattn/model.h"

using namespace pagedattn;
using pagedattn::testing::all_rows;
using pagedattn::testing::PagedKvForTests;

namespace {

// "The quick brown fox jumps over the lazy dog." and a code snippet, as llama.cpp tokenizes them, plus a
// longer ChatML prompt.
const std::vector<int32_t> kFox{504, 2365, 6354, 16438, 27003, 690, 260, 23790, 2767, 30};
const std::vector<int32_t> kCode{1604, 275, 24, 104, 727, 472, 1003, 1792, 1672, 216, 34, 198};
const std::vector<int32_t> kChat{1,   9690, 198, 2683, 359,   253,  5356, 5646, 11173, 3365, 3511, 308,  34519,
                                 28,  7018, 411, 407,  19712, 8182, 2,    198,  1,     4093, 198,  1780, 314,
                                 260, 3575, 282, 4649, 47,    2,    198,  1,    520,   9531, 198};

class LlamaTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (std::filesystem::exists(pagedattn::testing::model_file())) {
      model_ = std::make_unique<LlamaModel>(LlamaModel::load(pagedattn::testing::model_file()));
    }
  }
  static void TearDownTestSuite() { model_.reset(); }
  void SetUp() override { PA_REQUIRE_MODEL(); }

  static const LlamaModel& model() { return *model_; }
  static std::unique_ptr<LlamaModel> model_;
};
std::unique_ptr<LlamaModel> LlamaTest::model_;

// max |a - b| / max |b| over one row of logits.
double relative_error(const float* a, const float* b, int64_t n) {
  double diff = 0.0;
  double scale = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::abs(static_cast<double>(b[i])));
  }
  return diff / scale;
}

int64_t argmax(const float* p, int64_t n) { return std::max_element(p, p + n) - p; }

// Logits of every row of one-shot prefill of `tokens` (one sequence).
Tensor prefill_all_rows(const LlamaModel& model, const std::vector<int32_t>& tokens, int64_t block_size = 16) {
  PagedKvForTests kv(model.config(), 1, static_cast<int64_t>(tokens.size()), block_size);
  const auto step = kv.step({tokens});
  const std::vector<int32_t> rows = all_rows(tokens.size());
  return model.forward(kv.args(step, rows));
}

}  // namespace

TEST_F(LlamaTest, ConfigFromGguf) {
  const LlamaConfig& c = model().config();
  EXPECT_EQ(c.num_layers, 30);
  EXPECT_EQ(c.hidden_size, 576);
  EXPECT_EQ(c.num_q_heads, 9);
  EXPECT_EQ(c.num_kv_heads, 3);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.intermediate_size, 1536);
  EXPECT_EQ(c.vocab_size, 49152);
  EXPECT_FLOAT_EQ(c.rope_theta, 100000.0f);
  EXPECT_FLOAT_EQ(c.rms_norm_eps, 1e-5f);
  EXPECT_TRUE(c.tied_embeddings);
}

TEST_F(LlamaTest, ChunkedPrefillEqualsOneShot) {
  const int64_t V = model().config().vocab_size;
  const Tensor one_shot = prefill_all_rows(model(), kChat);
  PagedKvForTests kv(model().config(), 1, static_cast<int64_t>(kChat.size()), 16);
  for (size_t begin = 0; begin < kChat.size(); begin += 7) {
    const size_t end = std::min(kChat.size(), begin + 7);
    const auto step = kv.step({std::vector<int32_t>(kChat.begin() + begin, kChat.begin() + end)});
    const std::vector<int32_t> rows = all_rows(end - begin);
    const Tensor chunk = model().forward(kv.args(step, rows));
    for (size_t r = begin; r < end; ++r) {
      EXPECT_LT(relative_error(chunk.data_as<float>() + (r - begin) * V, one_shot.data_as<float>() + r * V, V), 1e-4)
          << "row " << r;
    }
  }
}

TEST_F(LlamaTest, BatchOfSequencesEqualsEachAlone) {
  const int64_t V = model().config().vocab_size;
  const std::vector<std::vector<int32_t>> prompts{kFox, kCode, kChat};
  PagedKvForTests kv(model().config(), 3, 64, 8);
  const auto prefill = kv.step(prompts);
  const Tensor batch = model().forward(kv.args(prefill, prefill.last_rows));
  // Then 4 decode steps of all three together, feeding the same token to each.
  std::vector<Tensor> decoded;
  for (int32_t token : {28, 314, 30, 198}) {
    const auto s = kv.step({{token}, {token}, {token}}, /*varlen=*/false);
    decoded.push_back(model().forward(kv.args(s, s.last_rows)));
  }
  for (size_t b = 0; b < prompts.size(); ++b) {
    std::vector<int32_t> full = prompts[b];
    full.insert(full.end(), {28, 314, 30, 198});
    const Tensor alone = prefill_all_rows(model(), full, /*block_size=*/32);
    const int64_t last = static_cast<int64_t>(prompts[b].size()) - 1;
    EXPECT_LT(relative_error(batch.data_as<float>() + b * V, alone.data_as<float>() + last * V, V), 1e-4) << b;
    for (size_t s = 0; s < decoded.size(); ++s) {
      EXPECT_LT(relative_error(decoded[s].data_as<float>() + b * V, alone.data_as<float>() + (last + 1 + s) * V, V),
                1e-4)
          << "sequence " << b << " decode step " << s;
    }
  }
}

TEST_F(LlamaTest, MixedStepOfPrefillChunkAndDecode) {
  // Sequence 0 decodes while sequence 1 prefills its second chunk in the same forward.
  const int64_t V = model().config().vocab_size;
  PagedKvForTests kv(model().config(), 2, 64, 16);
  const std::vector<int32_t> chat_head(kChat.begin(), kChat.begin() + 20);
  const std::vector<int32_t> chat_tail(kChat.begin() + 20, kChat.end());
  (void)model().forward(kv.args(kv.step({kFox, chat_head}), {}));
  const auto mixed = kv.step({{28}, chat_tail});
  const Tensor out = model().forward(kv.args(mixed, mixed.last_rows));
  std::vector<int32_t> fox = kFox;
  fox.push_back(28);
  const Tensor fox_alone = prefill_all_rows(model(), fox);
  const Tensor chat_alone = prefill_all_rows(model(), kChat);
  EXPECT_LT(relative_error(out.data_as<float>(), fox_alone.data_as<float>() + (fox.size() - 1) * V, V), 1e-4);
  EXPECT_LT(relative_error(out.data_as<float>() + V, chat_alone.data_as<float>() + (kChat.size() - 1) * V, V), 1e-4);
}

TEST_F(LlamaTest, HalfPrecisionCachesStayClose) {
  const int64_t V = model().config().vocab_size;
  const Tensor ref = prefill_all_rows(model(), kChat);
  const int64_t last = static_cast<int64_t>(kChat.size()) - 1;
  for (DType dtype : {DType::f16, DType::bf16}) {
    PagedKvForTests kv(model().config(), 1, static_cast<int64_t>(kChat.size()), 16, dtype);
    const auto step = kv.step({kChat});
    const Tensor out = model().forward(kv.args(step, step.last_rows));
    const double tolerance = dtype == DType::f16 ? 5e-3 : 5e-2;
    EXPECT_LT(relative_error(out.data_as<float>(), ref.data_as<float>() + last * V, V), tolerance) << dtype_name(dtype);
    EXPECT_EQ(argmax(out.data_as<float>(), V), argmax(ref.data_as<float>() + last * V, V)) << dtype_name(dtype);
  }
}

TEST_F(LlamaTest, RefusesInconsistentArguments) {
  PagedKvForTests kv(model().config(), 1, 16, 16);
  auto step = kv.step({kFox});
  const std::vector<int32_t> rows{0};
  auto error_of = [&](const ForwardArgs& a) -> std::string {
    try {
      (void)model().forward(a);
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  ForwardArgs a = kv.args(step, rows);
  std::vector<int32_t> positions = step.positions;
  positions[3] = 9;
  a.positions = positions;
  EXPECT_NE(error_of(a).find("positions[3] = 9: expected 3"), std::string::npos) << error_of(a);

  a = kv.args(step, rows);
  std::vector<int32_t> tokens = step.tokens;
  tokens[2] = 49152;
  a.tokens = tokens;
  EXPECT_NE(error_of(a).find("tokens[2] = 49152: expected an id in [0, 49152)"), std::string::npos) << error_of(a);

  a = kv.args(step, rows);
  a.kv_cache = a.kv_cache.subspan(1);
  EXPECT_NE(error_of(a).find("kv_cache has 29 layers: expected 30"), std::string::npos) << error_of(a);

  a = kv.args(step, rows);
  const std::vector<int32_t> bad_rows{10};
  a.logit_rows = bad_rows;
  EXPECT_NE(error_of(a).find("logit_rows[0] = 10: expected a row in [0, 10)"), std::string::npos) << error_of(a);

  a = kv.args(step, rows);
  a.positions = std::span<const int32_t>(step.positions).first(9);
  EXPECT_NE(error_of(a).find("9 positions for 10 tokens"), std::string::npos) << error_of(a);
}
