#include "model/weight_matrix.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "core/check.h"
#include "model/weight_matrix_kernel.h"

namespace pagedattn::model {

WeightMatrix WeightMatrix::load(const GgufFile& file, const std::vector<std::pair<std::string, int64_t>>& parts,
                                int64_t cols) {
  WeightMatrix w;
  w.cols_ = cols;
  std::vector<const GgufTensorInfo*> infos;
  for (const auto& [name, rows] : parts) {
    const GgufTensorInfo& t = file.tensor(name);
    const std::vector<int64_t> expected{rows, cols};
    PA_CHECK_ARG(t.shape() == expected, "llama: tensor '{}' has shape [{}]: expected [{}]", name,
                 fmt::join(t.shape(), ", "), fmt::join(expected, ", "));
    PA_CHECK_TYPE(ggml_type_traits(t.type).can_dequantize, "llama: tensor '{}' has type {}, which cannot be decoded",
                  name, ggml_type_traits(t.type).name);
    infos.push_back(&t);
    w.rows_ += rows;
  }
  const bool one_type = std::all_of(infos.begin(), infos.end(), [&](auto* t) { return t->type == infos[0]->type; });
  w.type_ = one_type ? infos[0]->type : GgmlType::f32;
  w.row_bytes_ = ggml_row_bytes(w.type_, cols);
  w.bytes_.resize(static_cast<size_t>(w.rows_ * w.row_bytes_));
  uint8_t* dst = w.bytes_.data();
  for (const GgufTensorInfo* t : infos) {
    const auto src = file.tensor_bytes(*t);
    if (one_type) {
      std::memcpy(dst, src.data(), src.size());
      dst += src.size();
    } else {
      dequantize(t->type, src.data(), reinterpret_cast<float*>(dst), t->num_elements);
      dst += t->num_elements * 4;
    }
  }
  return w;
}

void WeightMatrix::dequantize_row(int64_t r, float* dst) const { decode_rows(type_, row(r), row_bytes_, 1, cols_, dst, cols_); }

void matmul(const float* x, int64_t m, const WeightMatrix& w, float* y, bool accumulate) {
  constexpr int64_t kTile = 4;  // weight rows decoded together (dot_tile's width)
  const int64_t n = w.rows(), k = w.cols();
  const int64_t tiles = (n + kTile - 1) / kTile;
#pragma omp parallel
  {
    // The tile's decoded rows: 4 x k floats, in L1 for k up to ~2k.
    thread_local std::vector<float> scratch;
    scratch.resize(static_cast<size_t>(kTile * k));
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t first = t * kTile, rows = std::min(kTile, n - first);
      decode_rows(w.type(), w.row(first), w.row_bytes(), rows, k, scratch.data(), k);
      dot_tile(x, m, k, scratch.data(), rows, k, k, y + first, n, accumulate);
    }
  }
}

}  // namespace pagedattn::model
