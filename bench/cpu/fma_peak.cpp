// Compiled once per Highway target, as the CPU kernel is (the same targets, so dispatch picks the same one).
#include "fma_peak.h"

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "core/simd_targets.h"  // before any Highway header

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "fma_peak.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace pagedattn::bench::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Multiply-adds per second of `iterations` rounds of 12 independent MulAdd chains: more chains than FMA
// latency x pipes on current cores (4 x 2), so the pipes, not the chains, set the pace. Each chain starts
// from its own value, or the compiler would merge them.
double TimeFmaChains(int64_t iterations) {
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  const V mul = hn::Set(d, 0.999f), add = hn::Set(d, 0.001f);
  V a0 = hn::Set(d, 1.0f), a1 = hn::Set(d, 1.1f), a2 = hn::Set(d, 1.2f), a3 = hn::Set(d, 1.3f);
  V a4 = hn::Set(d, 1.4f), a5 = hn::Set(d, 1.5f), a6 = hn::Set(d, 1.6f), a7 = hn::Set(d, 1.7f);
  V a8 = hn::Set(d, 1.8f), a9 = hn::Set(d, 1.9f), a10 = hn::Set(d, 2.0f), a11 = hn::Set(d, 2.1f);
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < iterations; ++i) {
    a0 = hn::MulAdd(a0, mul, add), a1 = hn::MulAdd(a1, mul, add), a2 = hn::MulAdd(a2, mul, add);
    a3 = hn::MulAdd(a3, mul, add), a4 = hn::MulAdd(a4, mul, add), a5 = hn::MulAdd(a5, mul, add);
    a6 = hn::MulAdd(a6, mul, add), a7 = hn::MulAdd(a7, mul, add), a8 = hn::MulAdd(a8, mul, add);
    a9 = hn::MulAdd(a9, mul, add), a10 = hn::MulAdd(a10, mul, add), a11 = hn::MulAdd(a11, mul, add);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const V sum = hn::Add(hn::Add(hn::Add(hn::Add(a0, a1), hn::Add(a2, a3)), hn::Add(hn::Add(a4, a5), hn::Add(a6, a7))),
                        hn::Add(hn::Add(a8, a9), hn::Add(a10, a11)));
  // The result is used (it never is negative: each chain converges to 1), so the loop cannot be dropped.
  if (hn::GetLane(sum) < 0.0f) return 0.0;
  return 12.0 * static_cast<double>(hn::Lanes(d)) * static_cast<double>(iterations) / seconds;
}

}  // namespace pagedattn::bench::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pagedattn::bench {

HWY_EXPORT(TimeFmaChains);

double fma_peak_multiply_adds_per_second() {
  double best = 0.0;
  for (int run = 0; run < 5; ++run) best = std::max(best, HWY_DYNAMIC_DISPATCH(TimeFmaChains)(int64_t{20} << 20));
  return best;
}

}  // namespace pagedattn::bench
#endif
