// SIMD entry points of WeightMatrix's matmul (weight_matrix_kernel-inl.h, dispatched at run time).
#pragma once

#include <cstdint>

#include "pagedattn/gguf.h"

namespace pagedattn::model {

// Decodes rows [0, n) of a weight tile (row_bytes apart, `cols` elements each) into dst (f32, rows `ld`
// floats apart), with dequantize()'s arithmetic. Q4_1, Q8_0 and F32 have SIMD paths; other types go
// through dequantize().
void decode_rows(GgmlType type, const uint8_t* src, int64_t row_bytes, int64_t n, int64_t cols, float* dst,
                 int64_t ld);

// y[i, j] (+)= dot(x[i, :k], w[j, :k]) for i < m, j < n (n <= 4): x rows ldx apart, w rows ldw apart, y rows
// ldy apart. The sum over k runs in the same order for every (i, j), whatever m is.
void dot_tile(const float* x, int64_t m, int64_t ldx, const float* w, int64_t n, int64_t ldw, int64_t k,
              float* y, int64_t ldy, bool accumulate);

}  // namespace pagedattn::model
