// The sampler's distributions: greedy is the argmax, temperature reshapes softmax, top-k and top-p cut the
// candidate set, draws follow the renormalized probabilities (checked by frequencies over many draws), and
// a seed reproduces the same tokens.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "pagedattn/error.h"
#include "pagedattn/sampler.h"

using namespace pagedattn;

namespace {

const std::vector<float> kLogits{1.0f, 3.0f, 2.0f, 0.0f, 2.5f};

std::vector<double> softmax(const std::vector<float>& logits, double temperature, const std::vector<int>& keep) {
  std::vector<double> p(logits.size(), 0.0);
  double total = 0.0;
  for (int i : keep) total += (p[i] = std::exp(logits[i] / temperature));
  for (double& v : p) v /= total;
  return p;
}

std::vector<double> frequencies(Sampler& s, const std::vector<float>& logits, int draws) {
  std::vector<double> f(logits.size(), 0.0);
  for (int i = 0; i < draws; ++i) f[s.sample(logits)] += 1.0 / draws;
  return f;
}

// Each frequency within 4.5 standard errors of its probability (a false alarm about once in 10^5 runs;
// the seeds are fixed, so the test is deterministic anyway).
void expect_distribution(const std::vector<double>& freq, const std::vector<double>& prob, int draws) {
  for (size_t i = 0; i < prob.size(); ++i) {
    const double sigma = std::sqrt(prob[i] * (1 - prob[i]) / draws);
    if (prob[i] == 0.0) {
      EXPECT_EQ(freq[i], 0.0) << "token " << i << " is outside the candidate set";
    } else {
      EXPECT_NEAR(freq[i], prob[i], 4.5 * sigma + 1e-12) << "token " << i;
    }
  }
}

}  // namespace

TEST(Sampler, GreedyIsArgmaxLowestIdOnTies) {
  Sampler s({});
  EXPECT_EQ(s.sample(kLogits), 1);
  EXPECT_EQ(s.sample(std::vector<float>{0.5f, 2.0f, 2.0f}), 1);
  EXPECT_EQ(s.sample(std::vector<float>{-INFINITY, -1.0f}), 1);
}

TEST(Sampler, TemperatureDrawsFollowSoftmax) {
  constexpr int kDraws = 200000;
  for (float t : {1.0f, 0.5f, 2.0f}) {
    Sampler s({.temperature = t, .seed = 11});
    expect_distribution(frequencies(s, kLogits, kDraws), softmax(kLogits, t, {0, 1, 2, 3, 4}), kDraws);
  }
}

TEST(Sampler, TopKKeepsTheKMostLikely) {
  constexpr int kDraws = 100000;
  Sampler s({.temperature = 1.0f, .top_k = 2, .seed = 3});
  expect_distribution(frequencies(s, kLogits, kDraws), softmax(kLogits, 1.0, {1, 4}), kDraws);
  Sampler one({.temperature = 1.0f, .top_k = 1, .seed = 3});
  for (int i = 0; i < 100; ++i) EXPECT_EQ(one.sample(kLogits), 1);
}

TEST(Sampler, TopPKeepsTheSmallestSetReachingP) {
  // Probabilities at T=1, by rank: 3.0 -> .43, 2.5 -> .26, 2.0 -> .16, 1.0 -> .06, 0.0 -> .02.
  const std::vector<double> p = softmax(kLogits, 1.0, {0, 1, 2, 3, 4});
  ASSERT_LT(p[1] + p[4], 0.75);
  ASSERT_GT(p[1] + p[4] + p[2], 0.75);
  constexpr int kDraws = 100000;
  Sampler s({.temperature = 1.0f, .top_p = 0.75f, .seed = 5});
  expect_distribution(frequencies(s, kLogits, kDraws), softmax(kLogits, 1.0, {1, 4, 2}), kDraws);
  // A tiny top_p still keeps the most likely token.
  Sampler tiny({.temperature = 1.0f, .top_p = 1e-6f, .seed = 5});
  for (int i = 0; i < 100; ++i) EXPECT_EQ(tiny.sample(kLogits), 1);
}

TEST(Sampler, TopKThenTopP) {
  constexpr int kDraws = 100000;
  // top_k = 3 leaves {1, 4, 2} with renormalized probabilities .51, .31, .19: top_p = 0.6 keeps {1, 4}.
  Sampler s({.temperature = 1.0f, .top_k = 3, .top_p = 0.6f, .seed = 9});
  expect_distribution(frequencies(s, kLogits, kDraws), softmax(kLogits, 1.0, {1, 4}), kDraws);
}

// A vocabulary large enough that the nucleus and top_k reach past the first sorted prefix the sampler
// looks at (64 tokens): logits on a gentle slope, shuffled, so hundreds of tokens share the mass.
TEST(Sampler, LargeVocabularyNucleusAndTopK) {
  constexpr int kVocab = 2000;
  std::vector<float> logits(kVocab);
  std::vector<int> order(kVocab);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937(1));
  for (int i = 0; i < kVocab; ++i) logits[order[i]] = -0.004f * static_cast<float>(i);  // order[0] most likely
  std::vector<int> all(kVocab);
  std::iota(all.begin(), all.end(), 0);
  const std::vector<double> p = softmax(logits, 1.0, all);
  // The expected nucleus for top_p = 0.5: the most likely tokens until their mass reaches 0.5.
  double mass = 0.0;
  int nucleus = 0;
  while (mass < 0.5) mass += p[order[nucleus++]];
  ASSERT_GT(nucleus, 64);  // the sorted prefix must widen
  std::vector<int> kept(order.begin(), order.begin() + nucleus);
  constexpr int kDraws = 20000;
  Sampler s({.temperature = 1.0f, .top_p = 0.5f, .seed = 21});
  expect_distribution(frequencies(s, logits, kDraws), softmax(logits, 1.0, kept), kDraws);
  std::vector<int> top100(order.begin(), order.begin() + 100);
  Sampler k({.temperature = 1.0f, .top_k = 100, .seed = 22});
  expect_distribution(frequencies(k, logits, kDraws), softmax(logits, 1.0, top100), kDraws);
}

TEST(Sampler, SeedReproducesTheSequence) {
  Sampler a({.temperature = 1.0f, .seed = 42});
  Sampler b({.temperature = 1.0f, .seed = 42});
  Sampler c({.temperature = 1.0f, .seed = 43});
  std::vector<int32_t> ta, tb, tc;
  for (int i = 0; i < 64; ++i) {
    ta.push_back(a.sample(kLogits));
    tb.push_back(b.sample(kLogits));
    tc.push_back(c.sample(kLogits));
  }
  EXPECT_EQ(ta, tb);
  EXPECT_NE(ta, tc);
}

TEST(Sampler, RefusesBadParametersAndLogits) {
  EXPECT_THROW(Sampler({.temperature = -1.0f}), Error);
  EXPECT_THROW(Sampler({.temperature = NAN}), Error);
  EXPECT_THROW(Sampler({.top_k = -1}), Error);
  EXPECT_THROW(Sampler({.top_p = 0.0f}), Error);
  EXPECT_THROW(Sampler({.top_p = 1.5f}), Error);
  Sampler s({.temperature = 1.0f});
  EXPECT_THROW(s.sample(std::vector<float>{}), Error);
  EXPECT_THROW(s.sample(std::vector<float>{1.0f, NAN}), Error);
}
