// The fp64 reference against an attention written independently here: gather each sequence's pages
// through its table into dense K/V, then score, mask and softmax the whole matrix at once.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "attention/reference.h"
#include "common/paged_problem.h"

using namespace pagedattn;
using namespace pagedattn::testing;

namespace {

double element(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::f32: return t.data_as<float>()[i];
    case DType::f16: return to_f32(t.data_as<f16>()[i]);
    case DType::bf16: return to_f32(t.data_as<bf16>()[i]);
    default: throw std::invalid_argument("element");
  }
}

// Dense attention over gathered pages: out[T, Hq, D] in fp64.
std::vector<double> gather_then_attend(const Problem& p) {
  const ProblemSpec& s = p.spec;
  const int64_t Hq = s.num_q_heads, Hkv = s.num_kv_heads, D = s.head_dim, bs = s.block_size;
  const int64_t cols = p.block_tables.size(1);
  std::vector<double> out(static_cast<size_t>(s.num_tokens() * Hq * D));
  int64_t row0 = 0;
  for (int64_t b = 0; b < s.num_seqs(); ++b) {
    const int64_t L = s.context_lens[b];
    const int64_t Q = s.varlen() ? s.q_lens[b] : 1;
    // Gather K and V into dense [L, Hkv, D].
    std::vector<double> K(static_cast<size_t>(L * Hkv * D)), V(K.size());
    for (int64_t pos = 0; pos < L; ++pos) {
      const int64_t block = p.block_tables.data_as<int32_t>()[b * cols + pos / bs];
      for (int64_t e = 0; e < Hkv * D; ++e) {
        K[pos * Hkv * D + e] = element(p.key_cache, (block * bs + pos % bs) * Hkv * D + e);
        V[pos * Hkv * D + e] = element(p.value_cache, (block * bs + pos % bs) * Hkv * D + e);
      }
    }
    for (int64_t h = 0; h < Hq; ++h) {
      const int64_t g = h * Hkv / Hq;
      // Scores S[Q, L] with the causal mask applied as -inf, then softmax row by row.
      std::vector<double> S(static_cast<size_t>(Q * L));
      for (int64_t i = 0; i < Q; ++i)
        for (int64_t j = 0; j < L; ++j) {
          const bool masked = s.causal && j > L - Q + i;
          double dot = 0;
          for (int64_t d = 0; d < D; ++d)
            dot += element(p.query, ((row0 + i) * Hq + h) * D + d) * K[(j * Hkv + g) * D + d];
          S[i * L + j] = masked ? -std::numeric_limits<double>::infinity() : dot / std::sqrt(double(D));
        }
      for (int64_t i = 0; i < Q; ++i) {
        double m = -std::numeric_limits<double>::infinity(), z = 0;
        for (int64_t j = 0; j < L; ++j) m = std::max(m, S[i * L + j]);
        for (int64_t j = 0; j < L; ++j) z += std::exp(S[i * L + j] - m);
        for (int64_t d = 0; d < D; ++d) {
          double acc = 0;
          for (int64_t j = 0; j < L; ++j) acc += std::exp(S[i * L + j] - m) / z * V[(j * Hkv + g) * D + d];
          out[((row0 + i) * Hq + h) * D + d] = acc;
        }
      }
    }
    row0 += Q;
  }
  return out;
}

void expect_reference_equals_dense(const ProblemSpec& spec) {
  const Problem p = make_problem(spec);
  const std::vector<double> ref = reference::paged_attention_f64(p.args());
  const std::vector<double> dense = gather_then_attend(p);
  ASSERT_EQ(ref.size(), dense.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    ASSERT_FALSE(std::isnan(ref[i])) << spec.name() << " element " << i;
    ASSERT_NEAR(ref[i], dense[i], 1e-12) << spec.name() << " element " << i;
  }
}

}  // namespace

TEST(Reference, HandComputedCausalRows) {
  // D = 1, K = 0 so every visible position weighs the same; V = 1, 3, 5, 7.
  // Rows at positions 2 and 3 (q_len 2 over context 4) average V[0..2] and V[0..3].
  ProblemSpec spec{.context_lens = {4}, .q_lens = {2}, .num_q_heads = 1, .num_kv_heads = 1, .head_dim = 1,
                   .block_size = 2};
  Problem p = make_problem(spec);
  const auto* table = p.block_tables.data_as<int32_t>();
  for (int pos = 0; pos < 4; ++pos) {
    const int slot = table[pos / 2] * 2 + pos % 2;
    p.key_cache.data_as<float>()[slot] = 0.0f;
    p.value_cache.data_as<float>()[slot] = 1.0f + 2.0f * pos;
  }
  const std::vector<double> out = reference::paged_attention_f64(p.args());
  EXPECT_DOUBLE_EQ(out[0], 3.0);
  EXPECT_DOUBLE_EQ(out[1], 4.0);
  PagedAttentionArgs noncausal = p.args();
  noncausal.causal = false;
  EXPECT_DOUBLE_EQ(reference::paged_attention_f64(noncausal)[0], 4.0);
}

TEST(Reference, ScaleIsApplied) {
  ProblemSpec spec{.context_lens = {9}, .num_q_heads = 2, .num_kv_heads = 1, .head_dim = 4};
  const Problem p = make_problem(spec);
  PagedAttentionArgs a = p.args();
  a.scale = 0.0f;  // uniform weights: the plain mean of V over the context
  const std::vector<double> out = reference::paged_attention_f64(a);
  const int32_t* table = p.block_tables.data_as<int32_t>();
  for (int d = 0; d < 4; ++d) {
    double mean = 0;
    for (int pos = 0; pos < 9; ++pos) mean += p.value_cache.data_as<float>()[(table[pos / 16] * 16 + pos % 16) * 4 + d];
    EXPECT_NEAR(out[d], mean / 9, 1e-12);
  }
}

TEST(Reference, EqualsDenseAttentionOnEdgeCases) {
  for (const ProblemSpec& spec : edge_case_specs(DType::f32)) {
    if (spec.context_lens.size() == 1 && spec.context_lens[0] > 10000) continue;  // 32k: dense copy too slow here
    SCOPED_TRACE(spec.name());
    expect_reference_equals_dense(spec);
  }
}

TEST(Reference, EqualsDenseAttentionOnRandomShapes) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 40; ++i) {
    const ProblemSpec spec = random_spec(rng, i % 3 == 0 ? DType::bf16 : DType::f32, i % 2 == 0);
    SCOPED_TRACE(spec.name());
    expect_reference_equals_dense(spec);
  }
}

TEST(Reference, WriteKvStoresRowsAndSkipsPadding) {
  const int64_t num_blocks = 3, bs = 4, Hkv = 2, D = 3;
  Tensor kc = Tensor::zeros({num_blocks, bs, Hkv, D}, DType::f32);
  Tensor vc = Tensor::zeros({num_blocks, bs, Hkv, D}, DType::f32);
  Tensor k = Tensor::empty({3, Hkv, D}, DType::f32), v = Tensor::empty({3, Hkv, D}, DType::f32);
  for (int i = 0; i < 18; ++i) k.data_as<float>()[i] = 1.0f + i, v.data_as<float>()[i] = -1.0f - i;
  Tensor slots = Tensor::empty({3}, DType::i32);
  slots.data_as<int32_t>()[0] = 9;   // block 2, offset 1
  slots.data_as<int32_t>()[1] = -1;  // padding: skipped
  slots.data_as<int32_t>()[2] = 0;
  reference::write_kv({k, v, kc, vc, slots});
  for (int e = 0; e < Hkv * D; ++e) {
    EXPECT_EQ(kc.data_as<float>()[9 * Hkv * D + e], 1.0f + e);
    EXPECT_EQ(vc.data_as<float>()[9 * Hkv * D + e], -1.0f - e);
    EXPECT_EQ(kc.data_as<float>()[e], 13.0f + e);
  }
  float sum = 0;
  for (int i = 0; i < kc.numel(); ++i) sum += kc.data_as<float>()[i];
  float expected = 0;
  for (int e = 0; e < Hkv * D; ++e) expected += (1.0f + e) + (13.0f + e);
  EXPECT_EQ(sum, expected);  // nothing else written
}

TEST(Reference, WriteKvRoundsToTheCacheDtype) {
  Tensor kc = Tensor::zeros({1, 1, 1, 1}, DType::bf16), vc = Tensor::zeros({1, 1, 1, 1}, DType::bf16);
  Tensor k = Tensor::empty({1, 1, 1}, DType::bf16), v = Tensor::empty({1, 1, 1}, DType::bf16);
  k.data_as<bf16>()[0] = from_f32<bf16>(1.5f);
  v.data_as<bf16>()[0] = from_f32<bf16>(-2.25f);
  Tensor slots = Tensor::zeros({1}, DType::i32);
  reference::write_kv({k, v, kc, vc, slots});
  EXPECT_EQ(to_f32(kc.data_as<bf16>()[0]), 1.5f);
  EXPECT_EQ(to_f32(vc.data_as<bf16>()[0]), -2.25f);
}
