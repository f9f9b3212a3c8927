// WeightMatrix: weights kept in their GGUF encoding multiply like their dequantize()d f32 values (checked
// against an fp64 product, per type: F32, F16, Q8_0, Q4_1 through the SIMD decoders, Q5_0 through the
// generic one), the decoded rows are bit-equal to dequantize(), a row of a batch equals that row alone bit for
// bit, accumulate adds, parts of mixed types stack (decoded to F32), and a wrong shape is refused.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <hwy/targets.h>

#include "gguf_builder.h"
#include "model/weight_matrix.h"
#include "pagedattn/dtype.h"
#include "pagedattn/error.h"
#include "pagedattn/gguf.h"

using namespace pagedattn;
using pagedattn::model::WeightMatrix;
using pagedattn::testing::GgufBuilder;

namespace {

constexpr int64_t kCols = 256;  // 8 blocks of 32

struct Part {
  std::string name;
  GgmlType type;
  int64_t rows;
};

// Random but valid encodings: f16 scales in a sane range, any quant bytes.
std::vector<uint8_t> random_tensor(GgmlType type, int64_t rows, std::mt19937& rng) {
  const GgmlTypeTraits& t = ggml_type_traits(type);
  std::vector<uint8_t> bytes(static_cast<size_t>(ggml_row_bytes(type, kCols) * rows));
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  for (auto& b : bytes) b = static_cast<uint8_t>(byte(rng));
  auto put_half = [&](size_t at, float v) {
    const uint16_t h = from_f32<f16>(v).bits;
    std::memcpy(bytes.data() + at, &h, 2);
  };
  const size_t blocks = bytes.size() / static_cast<size_t>(t.type_size);
  for (size_t b = 0; b < blocks; ++b) {
    const size_t at = b * static_cast<size_t>(t.type_size);
    switch (type) {
      case GgmlType::f32: {
        const float v = value(rng);
        std::memcpy(bytes.data() + at, &v, 4);
        break;
      }
      case GgmlType::f16:
        put_half(at, value(rng));
        break;
      case GgmlType::q4_1:
        put_half(at, value(rng) * 0.1f);
        put_half(at + 2, value(rng));
        break;
      default:  // Q8_0, Q5_0: d first
        put_half(at, value(rng) * 0.05f);
    }
  }
  return bytes;
}

// A GGUF file holding `parts` (each [rows, kCols]); returns its path.
std::string write_file(const std::vector<Part>& parts, std::vector<std::vector<uint8_t>>& data, const std::string& name) {
  std::mt19937 rng(5);
  GgufBuilder b;
  b.header(parts.size(), 0);
  uint64_t offset = 0;
  for (const Part& p : parts) {
    data.push_back(random_tensor(p.type, p.rows, rng));
    b.tensor(p.name, {static_cast<uint64_t>(kCols), static_cast<uint64_t>(p.rows)}, static_cast<uint32_t>(p.type),
             offset);
    offset += (data.back().size() + 31) / 32 * 32;
  }
  b.pad_to(32);
  for (const auto& d : data) b.raw(d.data(), d.size()).pad_to(32);
  return b.write(name);
}

std::vector<float> random_rows(int64_t m, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(m * kCols));
  for (float& v : x) v = value(rng);
  return x;
}

// Checks one type on the target runtime dispatch picks now.
void check_type(GgmlType type) {
  constexpr int64_t kRows = 19;  // 4 full tiles and a tile of 3
  std::vector<std::vector<uint8_t>> data;
  const GgufFile file = GgufFile::open(write_file({{"w", type, kRows}}, data, "weights.gguf"));
  const WeightMatrix w = WeightMatrix::load(file, {{"w", kRows}}, kCols);
  EXPECT_EQ(w.type(), type);

  std::vector<float> reference(static_cast<size_t>(kRows * kCols));
  dequantize(type, data[0].data(), reference.data(), kRows * kCols);
  std::vector<float> row(kCols);
  for (int64_t r = 0; r < kRows; ++r) {
    w.dequantize_row(r, row.data());
    for (int64_t c = 0; c < kCols; ++c)
      ASSERT_EQ(row[c], reference[r * kCols + c]) << "row " << r << " col " << c << ": not bit-equal to dequantize()";
  }

  constexpr int64_t kM = 7;
  const std::vector<float> x = random_rows(kM, 9);
  std::vector<float> y(kM * kRows);
  model::matmul(x.data(), kM, w, y.data());
  for (int64_t i = 0; i < kM; ++i) {
    for (int64_t j = 0; j < kRows; ++j) {
      double dot = 0.0, magnitude = 0.0;
      for (int64_t c = 0; c < kCols; ++c) {
        dot += static_cast<double>(x[i * kCols + c]) * reference[j * kCols + c];
        magnitude += std::abs(static_cast<double>(x[i * kCols + c]) * reference[j * kCols + c]);
      }
      EXPECT_NEAR(y[i * kRows + j], dot, 1e-6 * magnitude + 1e-30) << "y[" << i << "][" << j << "]";
    }
  }

  // Each row of the batch equals that row alone, bit for bit (the engine's batch invariance rests on it).
  for (int64_t i = 0; i < kM; ++i) {
    std::vector<float> alone(kRows);
    model::matmul(x.data() + i * kCols, 1, w, alone.data());
    for (int64_t j = 0; j < kRows; ++j) ASSERT_EQ(alone[j], y[i * kRows + j]) << "row " << i << " col " << j;
  }

  // accumulate adds the product to y.
  std::vector<float> acc(y.size(), 1.5f);
  model::matmul(x.data(), kM, w, acc.data(), /*accumulate=*/true);
  for (size_t k = 0; k < y.size(); ++k) EXPECT_FLOAT_EQ(acc[k], y[k] + 1.5f);
}

}  // namespace

class WeightMatrixByType : public ::testing::TestWithParam<GgmlType> {};

// Every SIMD target compiled in and supported here (the decoders' nibble and lane handling differ by width).
TEST_P(WeightMatrixByType, MultipliesLikeItsDequantizedValuesOnEveryTarget) {
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    check_type(GetParam());
  }
  hwy::SetSupportedTargetsForTest(0);
}

INSTANTIATE_TEST_SUITE_P(Types, WeightMatrixByType,
                         ::testing::Values(GgmlType::f32, GgmlType::f16, GgmlType::q8_0, GgmlType::q4_1,
                                           GgmlType::q5_0),
                         [](const auto& p) { return std::string(ggml_type_traits(p.param).name); });

TEST(WeightMatrix, PartsOfOneTypeStayEncodedAndMixedTypesBecomeF32) {
  std::vector<std::vector<uint8_t>> data;
  const GgufFile file = GgufFile::open(
      write_file({{"a", GgmlType::q4_1, 5}, {"b", GgmlType::q4_1, 3}, {"c", GgmlType::q8_0, 2}}, data, "parts.gguf"));
  const WeightMatrix same = WeightMatrix::load(file, {{"a", 5}, {"b", 3}}, kCols);
  EXPECT_EQ(same.type(), GgmlType::q4_1);
  EXPECT_EQ(same.rows(), 8);
  const WeightMatrix mixed = WeightMatrix::load(file, {{"a", 5}, {"c", 2}}, kCols);
  EXPECT_EQ(mixed.type(), GgmlType::f32);
  EXPECT_EQ(mixed.rows(), 7);
  std::vector<float> expected(kCols), got(kCols);
  dequantize(GgmlType::q8_0, data[2].data() + ggml_row_bytes(GgmlType::q8_0, kCols), expected.data(), kCols);
  mixed.dequantize_row(6, got.data());  // c's second row
  EXPECT_EQ(got, expected);
  dequantize(GgmlType::q4_1, data[1].data(), expected.data(), kCols);
  same.dequantize_row(5, got.data());  // b's first row
  EXPECT_EQ(got, expected);
}

TEST(WeightMatrix, RefusesAWrongShape) {
  std::vector<std::vector<uint8_t>> data;
  const GgufFile file = GgufFile::open(write_file({{"a", GgmlType::q8_0, 5}}, data, "shape.gguf"));
  try {
    (void)WeightMatrix::load(file, {{"a", 6}}, kCols);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "llama: tensor 'a' has shape [5, 256]: expected [6, 256]");
  }
}
