// Choosing the next token from a row of logits: greedy, or a draw at a temperature from the top-k / top-p
// (nucleus) candidates, with a seeded generator so that a request's output is reproducible.
#pragma once

#include <cstdint>
#include <span>

namespace pagedattn {

struct SamplingParams {
  float temperature = 0.0f;  // 0 = greedy (argmax, lowest id on ties)
  int32_t top_k = 0;         // keep the k most likely tokens; 0 = all
  float top_p = 1.0f;        // keep the smallest most-likely set whose probability reaches top_p; 1 = all
  uint64_t seed = 0;
};

// One per sequence: holds the generator state, advanced by every draw.
class Sampler {
 public:
  // Throws pagedattn::Error for temperature < 0 or not finite, top_k < 0, top_p outside (0, 1].
  explicit Sampler(const SamplingParams& params);

  // Throws for an empty row or a NaN logit.
  int32_t sample(std::span<const float> logits);
  const SamplingParams& params() const { return params_; }

 private:
  double uniform();  // [0, 1), 53 random bits: the same draws on every platform
  SamplingParams params_;
  uint64_t state_;
};

}  // namespace pagedattn
