#include "pagedattn/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/check.h"

namespace pagedattn {

Sampler::Sampler(const SamplingParams& params) : params_(params), state_(params.seed) {
  PA_CHECK_ARG(std::isfinite(params.temperature) && params.temperature >= 0.0f,
               "sampler: temperature = {}: expected a finite value >= 0", params.temperature);
  PA_CHECK_ARG(params.top_k >= 0, "sampler: top_k = {}: expected >= 0 (0 = no limit)", params.top_k);
  PA_CHECK_ARG(params.top_p > 0.0f && params.top_p <= 1.0f, "sampler: top_p = {}: expected a value in (0, 1]",
               params.top_p);
}

double Sampler::uniform() {
  // splitmix64: a tiny generator with a fully specified output sequence.
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

int32_t Sampler::sample(std::span<const float> logits) {
  PA_CHECK_ARG(!logits.empty(), "sampler: empty logits");
  for (size_t i = 0; i < logits.size(); ++i) {
    PA_CHECK_ARG(!std::isnan(logits[i]), "sampler: logits[{}] is NaN", i);
  }
  if (params_.temperature == 0.0f) {
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }
  // Weights exp((logit - max) / T) of every token, in double; the candidates are the top_k most likely
  // (ties: lower id first), and top_p keeps the shortest most-likely prefix of them reaching top_p.
  const auto by_logit = [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  const size_t n = logits.size();
  const size_t k = params_.top_k > 0 ? std::min(n, static_cast<size_t>(params_.top_k)) : n;
  std::vector<int32_t> ids(n);
  std::iota(ids.begin(), ids.end(), 0);
  const double top = *std::max_element(logits.begin(), logits.end());
  const auto weight = [&](int32_t id) { return std::exp((static_cast<double>(logits[id]) - top) / params_.temperature); };
  // Only the candidates' order matters, and only as far as the nucleus reaches: sort a prefix, widen it
  // while the nucleus is not inside (a full sort of a 50k vocabulary per token costs more than the rest).
  size_t sorted = k < n ? k : std::min(n, size_t{64});
  std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(sorted), ids.end(), by_logit);
  double total = 0.0;
  if (k == n) {
    for (size_t id = 0; id < n; ++id) total += weight(static_cast<int32_t>(id));
  } else {
    for (size_t i = 0; i < k; ++i) total += weight(ids[i]);  // the top_k are the sorted prefix
  }
  std::vector<double> probs;
  size_t keep = k;
  if (params_.top_p < 1.0f) {
    for (;;) {
      probs.clear();
      double cumulative = 0.0;
      for (size_t i = 0; i < sorted && keep == k; ++i) {
        probs.push_back(weight(ids[i]));
        cumulative += probs.back() / total;
        if (cumulative >= params_.top_p) keep = i + 1;
      }
      if (keep < k || sorted == k) break;
      const size_t wider = std::min(k, sorted * 8);
      std::partial_sort(ids.begin() + static_cast<std::ptrdiff_t>(sorted), ids.begin() + static_cast<std::ptrdiff_t>(wider),
                        ids.end(), by_logit);
      sorted = wider;
    }
  }
  if (keep == k) {  // every candidate stays: their order does not matter (k < n means they are the sorted prefix)
    probs.resize(k);
    for (size_t i = 0; i < k; ++i) probs[i] = weight(ids[i]);
  }
  double kept = 0.0;
  for (size_t i = 0; i < keep; ++i) kept += probs[i];
  const double u = uniform() * kept;
  double acc = 0.0;
  for (size_t i = 0; i < keep; ++i) {
    acc += probs[i];
    if (u < acc) return ids[i];
  }
  return ids[keep - 1];  // u landed in the rounding gap at the very top
}

}  // namespace pagedattn
