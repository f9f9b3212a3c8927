// f16/bf16 conversions: exact round-to-nearest-even, checked against the compiler's _Float16 and
// against a brute-force nearest-value search for bfloat16.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "pagedattn/dtype.h"

using namespace pagedattn;

TEST(DType, SizesAndNames) {
  EXPECT_EQ(dtype_size(DType::bf16), 2u);
  EXPECT_EQ(dtype_size(DType::i64), 8u);
  EXPECT_EQ(dtype_name(DType::f16), "float16");
}

TEST(F16, EveryBitPatternRoundTrips) {
  for (uint32_t bits = 0; bits < 0x10000u; ++bits) {
    const float f = f16_bits_to_f32(static_cast<uint16_t>(bits));
    const float oracle = static_cast<float>(std::bit_cast<_Float16>(static_cast<uint16_t>(bits)));
    if (std::isnan(oracle)) {
      EXPECT_TRUE(std::isnan(f)) << bits;
      EXPECT_TRUE(std::isnan(f16_bits_to_f32(f32_to_f16_bits(f)))) << bits;
      continue;
    }
    ASSERT_EQ(std::bit_cast<uint32_t>(f), std::bit_cast<uint32_t>(oracle)) << "bits " << bits;
    ASSERT_EQ(f32_to_f16_bits(f), bits) << "bits " << bits;
  }
}

TEST(F16, RoundsToNearestEvenLikeTheCompiler) {
  std::mt19937 rng(7);
  auto check = [](float f) {
    const uint16_t oracle = std::bit_cast<uint16_t>(static_cast<_Float16>(f));
    ASSERT_EQ(f32_to_f16_bits(f), oracle) << "value " << f << " bits " << std::bit_cast<uint32_t>(f);
  };
  // Random bit patterns cover normals, subnormals, overflow and ties across the whole float range.
  for (int i = 0; i < 2'000'000; ++i) {
    const float f = std::bit_cast<float>(static_cast<uint32_t>(rng()));
    if (!std::isnan(f)) check(f);
  }
  // Exact ties and edges.
  for (float f : {65504.0f, 65519.99f, 65520.0f, 6.1035156e-05f, 5.9604645e-08f, 2.9802322e-08f, 2.9802326e-08f,
                  1.0009765625f + 0.00048828125f, -0.0f, std::numeric_limits<float>::infinity(),
                  std::numeric_limits<float>::denorm_min()})
    check(f);
}

namespace {
// The bfloat16 nearest to x, ties to even, by searching the neighbours of the truncation.
uint16_t nearest_bf16(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  const uint16_t lo = static_cast<uint16_t>(bits >> 16);
  const uint16_t hi = static_cast<uint16_t>(lo + 1);
  const double dlo = std::abs(static_cast<double>(bf16_bits_to_f32(lo)) - x);
  const double dhi = std::abs(static_cast<double>(bf16_bits_to_f32(hi)) - x);
  if (dlo < dhi) return lo;
  if (dhi < dlo) return hi;
  return (lo & 1) ? hi : lo;
}
}  // namespace

TEST(BF16, RoundsToNearestEven) {
  std::mt19937 rng(11);
  for (int i = 0; i < 2'000'000; ++i) {
    const float f = std::bit_cast<float>(static_cast<uint32_t>(rng()));
    if (std::isnan(f) || std::isinf(f) || std::abs(f) > 3.3e38f) continue;
    ASSERT_EQ(f32_to_bf16_bits(f), nearest_bf16(f)) << "value " << f;
  }
  EXPECT_EQ(f32_to_bf16_bits(1.0f), 0x3f80);
  EXPECT_EQ(bf16_bits_to_f32(0x3f80), 1.0f);
  EXPECT_TRUE(std::isnan(bf16_bits_to_f32(f32_to_bf16_bits(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_EQ(f32_to_bf16_bits(std::numeric_limits<float>::infinity()), 0x7f80);
}

TEST(BF16, EveryBitPatternRoundTrips) {
  for (uint32_t bits = 0; bits < 0x10000u; ++bits) {
    const float f = bf16_bits_to_f32(static_cast<uint16_t>(bits));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_bf16_bits(f), bits);
  }
}
