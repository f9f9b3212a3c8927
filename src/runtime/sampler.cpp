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
  // Candidates by decreasing logit (ties: lower id first), cut to top_k.
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  const auto by_logit = [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  size_t k = ids.size();
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < k) {
    k = static_cast<size_t>(params_.top_k);
    std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end(), by_logit);
    ids.resize(k);
  } else {
    std::sort(ids.begin(), ids.end(), by_logit);
  }
  // Softmax at the temperature, in double, relative to the largest logit.
  std::vector<double> probs(k);
  const double top = logits[ids[0]];
  double total = 0.0;
  for (size_t i = 0; i < k; ++i) {
    probs[i] = std::exp((static_cast<double>(logits[ids[i]]) - top) / params_.temperature);
    total += probs[i];
  }
  // Nucleus: the shortest prefix whose probability reaches top_p (at least one token).
  size_t keep = k;
  if (params_.top_p < 1.0f) {
    double cumulative = 0.0;
    for (size_t i = 0; i < k; ++i) {
      cumulative += probs[i] / total;
      if (cumulative >= params_.top_p) {
        keep = i + 1;
        break;
      }
    }
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
