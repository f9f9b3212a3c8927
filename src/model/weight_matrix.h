// Weight matrices kept in their GGUF encoding (Q4_1, Q8_0, ...) and multiplied in f32:
//   y[m, rows] (+)= x[m, cols] W^T
// Each tile of 4 weight rows is decoded once per call into an f32 scratch in L1 (with the exact arithmetic
// of dequantize(), so the weights are the same f32 values the reference dequantizer gives) and multiplied
// with every row of x there. A decode step thus streams the quantized bytes (0.6 bytes per Q4_1 weight
// instead of 4 for f32) once, whatever the batch size. Each y element is one dot product over cols in a fixed
// order, independent of m: a batch of sequences gets bit-identical results to each sequence alone.
// Bound: memory for a few rows of x; FMA throughput from ~8 rows on.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "pagedattn/gguf.h"

namespace pagedattn::model {

class WeightMatrix {
 public:
  WeightMatrix() = default;
  // Tensors `parts` (name, rows) of `file`, each [rows, cols], stacked along rows. Parts of one type stay
  // encoded; parts of different types are decoded to F32. Throws for a missing tensor or a wrong shape.
  static WeightMatrix load(const GgufFile& file, const std::vector<std::pair<std::string, int64_t>>& parts,
                           int64_t cols);

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  GgmlType type() const { return type_; }
  const uint8_t* row(int64_t r) const { return bytes_.data() + r * row_bytes_; }
  int64_t row_bytes() const { return row_bytes_; }

  void dequantize_row(int64_t r, float* dst) const;

 private:
  GgmlType type_ = GgmlType::f32;
  int64_t rows_ = 0, cols_ = 0, row_bytes_ = 0;
  std::vector<uint8_t> bytes_;
};

// y[m, w.rows()] = x[m, w.cols()] W^T, or y += that when accumulate. Work split over weight-row tiles across
// the OpenMP threads.
void matmul(const float* x, int64_t m, const WeightMatrix& w, float* y, bool accumulate = false);

}  // namespace pagedattn::model
