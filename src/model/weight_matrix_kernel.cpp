// SIMD code of WeightMatrix's matmul, compiled once per Highway target and dispatched at run time.
// decode_rows: Q4_1 / Q8_0 blocks of 32 to f32 with dequantize()'s arithmetic (a multiply, then an add:
// no fused multiply-add, so the values are bit-equal to the reference). dot_tile: up to 4 weight rows
// against the rows of x, 4 x 2 (or 4 x 1) vector accumulators per pass over k.
#include <cstring>

#include "core/simd_targets.h"  // before any Highway header

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "model/weight_matrix_kernel.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "model/weight_matrix_kernel.h"
#include "pagedattn/dtype.h"

HWY_BEFORE_NAMESPACE();
namespace pagedattn::model::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

HWY_INLINE float LoadHalf(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return f16_bits_to_f32(bits);
}

// Q4_1 block: d (f16), m (f16), 16 bytes; element j is the low nibble of byte j, element j + 16 the high one.
HWY_INLINE void DecodeQ4_1Block(const uint8_t* HWY_RESTRICT block, float* HWY_RESTRICT y) {
  const DF df;
  const hn::RebindToSigned<DF> di;
  const hn::Rebind<uint8_t, DF> du8;
  const VF d = hn::Set(df, LoadHalf(block));
  const VF m = hn::Set(df, LoadHalf(block + 2));
  const uint8_t* q = block + 4;
  const auto low_mask = hn::Set(du8, uint8_t{0x0F});
  for (size_t j = 0; j < 16; j += hn::Lanes(df)) {
    const auto bytes = hn::LoadU(du8, q + j);
    const VF lo = hn::ConvertTo(df, hn::PromoteTo(di, hn::And(bytes, low_mask)));
    const VF hi = hn::ConvertTo(df, hn::PromoteTo(di, hn::ShiftRight<4>(bytes)));
    hn::StoreU(hn::Add(hn::Mul(d, lo), m), df, y + j);
    hn::StoreU(hn::Add(hn::Mul(d, hi), m), df, y + j + 16);
  }
}

// Q8_0 block: d (f16), 32 signed bytes; x = q * d.
HWY_INLINE void DecodeQ8_0Block(const uint8_t* HWY_RESTRICT block, float* HWY_RESTRICT y) {
  const DF df;
  const hn::RebindToSigned<DF> di;
  const hn::Rebind<int8_t, DF> di8;
  const VF d = hn::Set(df, LoadHalf(block));
  const auto* q = reinterpret_cast<const int8_t*>(block + 2);
  for (size_t j = 0; j < 32; j += hn::Lanes(df)) {
    hn::StoreU(hn::Mul(hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(di8, q + j))), d), df, y + j);
  }
}

void DecodeRows(GgmlType type, const uint8_t* src, int64_t row_bytes, int64_t n, int64_t cols, float* dst,
                int64_t ld) {
  // Blocks of 32 cover whole vectors on every enabled target (at most 16 f32 lanes).
  static_assert(hn::MaxLanes(DF()) <= 16);
  for (int64_t r = 0; r < n; ++r) {
    const uint8_t* row = src + r * row_bytes;
    float* out = dst + r * ld;
    switch (type) {
      case GgmlType::q4_1:
        for (int64_t b = 0; b < cols / 32; ++b) DecodeQ4_1Block(row + b * 20, out + b * 32);
        break;
      case GgmlType::q8_0:
        for (int64_t b = 0; b < cols / 32; ++b) DecodeQ8_0Block(row + b * 34, out + b * 32);
        break;
      case GgmlType::f32:
        std::memcpy(out, row, static_cast<size_t>(cols) * 4);
        break;
      default:
        dequantize(type, row, out, cols);
    }
  }
}

// kW weight rows against kX rows of x: acc[w][i] collects lane-wise products, summed across lanes at the end.
template <size_t kW, size_t kX>
HWY_INLINE void DotBlock(const float* HWY_RESTRICT x, int64_t ldx, const float* HWY_RESTRICT w, int64_t ldw,
                         int64_t k, float* HWY_RESTRICT y, int64_t ldy, bool accumulate) {
  const DF df;
  const auto N = static_cast<int64_t>(hn::Lanes(df));
  VF acc[kW][kX];
  for (size_t a = 0; a < kW; ++a)
    for (size_t b = 0; b < kX; ++b) acc[a][b] = hn::Zero(df);
  int64_t c = 0;
  for (; c + N <= k; c += N) {
    VF wv[kW];
    for (size_t a = 0; a < kW; ++a) wv[a] = hn::LoadU(df, w + static_cast<int64_t>(a) * ldw + c);
    for (size_t b = 0; b < kX; ++b) {
      const VF xv = hn::LoadU(df, x + static_cast<int64_t>(b) * ldx + c);
      for (size_t a = 0; a < kW; ++a) acc[a][b] = hn::MulAdd(wv[a], xv, acc[a][b]);
    }
  }
  for (size_t a = 0; a < kW; ++a) {
    for (size_t b = 0; b < kX; ++b) {
      float sum = hn::GetLane(hn::SumOfLanes(df, acc[a][b]));
      for (int64_t t = c; t < k; ++t) sum += w[static_cast<int64_t>(a) * ldw + t] * x[static_cast<int64_t>(b) * ldx + t];
      float& out = y[static_cast<int64_t>(b) * ldy + static_cast<int64_t>(a)];
      out = accumulate ? out + sum : sum;
    }
  }
}

template <size_t kW>
HWY_INLINE void DotRows(const float* x, int64_t m, int64_t ldx, const float* w, int64_t ldw, int64_t k, float* y,
                        int64_t ldy, bool accumulate) {
  int64_t i = 0;
  for (; i + 2 <= m; i += 2) DotBlock<kW, 2>(x + i * ldx, ldx, w, ldw, k, y + i * ldy, ldy, accumulate);
  if (i < m) DotBlock<kW, 1>(x + i * ldx, ldx, w, ldw, k, y + i * ldy, ldy, accumulate);
}

void DotTile(const float* x, int64_t m, int64_t ldx, const float* w, int64_t n, int64_t ldw, int64_t k, float* y,
             int64_t ldy, bool accumulate) {
  switch (n) {
    case 4:
      return DotRows<4>(x, m, ldx, w, ldw, k, y, ldy, accumulate);
    case 3:
      return DotRows<3>(x, m, ldx, w, ldw, k, y, ldy, accumulate);
    case 2:
      return DotRows<2>(x, m, ldx, w, ldw, k, y, ldy, accumulate);
    default:
      return DotRows<1>(x, m, ldx, w, ldw, k, y, ldy, accumulate);
  }
}

}  // namespace pagedattn::model::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pagedattn::model {

HWY_EXPORT(DecodeRows);
HWY_EXPORT(DotTile);

void decode_rows(GgmlType type, const uint8_t* src, int64_t row_bytes, int64_t n, int64_t cols, float* dst,
                 int64_t ld) {
  HWY_DYNAMIC_DISPATCH(DecodeRows)(type, src, row_bytes, n, cols, dst, ld);
}

void dot_tile(const float* x, int64_t m, int64_t ldx, const float* w, int64_t n, int64_t ldw, int64_t k, float* y,
              int64_t ldy, bool accumulate) {
  HWY_DYNAMIC_DISPATCH(DotTile)(x, m, ldx, w, n, ldw, k, y, ldy, accumulate);
}

}  // namespace pagedattn::model
#endif
