// Per-instruction-set SIMD code of the CPU attention kernel, included once per Highway target (foreach_target.h)
// by two translation units that dispatch at run time: attention_kernel.cpp for 16-bit storage (f16, bf16) and the
// merge (namespace storage16), attention_kernel_f32.cpp for f32 storage (storage32, PAGEDATTN_CPU_KERNEL_F32).
// They differ only on AVX-512 targets, where f32 runs on 8 lanes (DF).
//
// Decomposition: one work item = (sequence, KV heads, query rows, KV range), walked in tiles of N = f32
// lanes positions. Per tile and KV head, four query vectors at a time (GQA group members, rows of a
// prefill tile) share every K and V vector loaded and converted to f32; the N scores of a query vector
// come out of one ConcatEven/ConcatOdd reduction tree (no per-score horizontal sum) and feed an online
// softmax in the log2 domain; once every head's scores are in, the V rows are accumulated into f32 outputs
// held in registers. The next tile's lines are prefetched into L2 while this one is computed, in small steps
// through both passes; a tile that every query row sees whole is walked in a scrambled row order (TileRow) that
// keeps the hardware stride prefetcher from running past the page. Positions at or past the item's visible
// range are never touched, so no NaN from an unused cache slot can reach the output.
// Bound: memory for f32 decode (each K/V byte read once); FMA throughput for bf16/f16 decode (the same
// work over half the bytes) and for prefill tiles.

#if defined(PAGEDATTN_ATTENTION_KERNEL_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef PAGEDATTN_ATTENTION_KERNEL_INL_H_
#undef PAGEDATTN_ATTENTION_KERNEL_INL_H_
#else
#define PAGEDATTN_ATTENTION_KERNEL_INL_H_
#endif

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>

#include <hwy/cache_control.h>
#include <hwy/contrib/math/math-inl.h>
#include <hwy/highway.h>

#include "attention/cpu/attention_kernel.h"

#ifdef PAGEDATTN_CPU_KERNEL_F32
#define PAGEDATTN_CPU_KERNEL_NS storage32
#else
#define PAGEDATTN_CPU_KERNEL_NS storage16
#endif

HWY_BEFORE_NAMESPACE();
namespace pagedattn::cpu::PAGEDATTN_CPU_KERNEL_NS::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if defined(PAGEDATTN_CPU_KERNEL_F32) && HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
// f32 on AVX-512 takes 256-bit vectors, so tiles of 8 positions. From memory that reads faster: on Zen 5, one
// thread 1974-1984 against 3110-3325 µs per call (bench_kernel_compute --context 8192), two threads 0.82-0.98 of
// the time on every bench_decode shape, though 33% slower with K/V in cache (ctx 512: 100-104 against 75-78 µs;
// decode reads from memory). Why the 16-lane pass reads slower is not known (no PMU counters there); bf16 and f16
// keep 16 lanes, which are faster for them where the group is 3 or 8 (8 lanes: 1.3-1.6x slower).
using DF = hn::CappedTag<float, 8>;
#else
using DF = hn::ScalableTag<float>;
#endif
using VF = hn::Vec<DF>;
// Fixed-width targets only (attention_kernel.cpp disables SVE/RVV): the tile and the reduction tree
// are sized at compile time.
constexpr size_t kLanes = hn::MaxLanes(DF());
// Vector registers of the target: x86 before AVX-512 has 16, the others 32. The accumulators of one V pass
// may take half of them; the rest holds the weights, the loaded row and the compiler's temporaries.
constexpr size_t kVectorRegisters = HWY_ARCH_X86 && HWY_TARGET > HWY_AVX3 ? 16 : 32;
constexpr size_t kAccumulatorRegisters = kVectorRegisters / 2;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// pagedattn's 16-bit floats as Highway spells them (the same bits).
template <class T>
struct HwyStorage {
  using type = T;
};
template <>
struct HwyStorage<f16> {
  using type = hwy::float16_t;
};
template <>
struct HwyStorage<bf16> {
  using type = hwy::bfloat16_t;
};

// Rows converted to f32 for the kernel ("staged" rows: queries, K/V tiles, outputs) keep the element order
// except for bf16: there each run of 2N elements is split into its even then its odd elements, which makes
// the conversion one load and two in-lane ops per 2N elements. Queries, keys, values and the output
// accumulators all use the same order (a dot product and an axpy do not care), and StoreRow restores it.
template <class T>
HWY_INLINE size_t StagedToElement(size_t k, size_t n) {
  if constexpr (std::is_same_v<T, bf16>) {
    const size_t pairs_end = n / (2 * kLanes) * (2 * kLanes);
    if (k < pairs_end) {
      const size_t base = k / (2 * kLanes) * (2 * kLanes), within = k - base;
      return within < kLanes ? base + 2 * within : base + 2 * (within - kLanes) + 1;
    }
  }
  return k;
}

// dst[0, padded) = f32(src[0, n)) * mul in staged order, then zeros; dst aligned, padded a multiple of N.
// kScaled = false skips the multiply (mul must be 1).
template <bool kScaled, class T>
HWY_INLINE void ConvertRow(const T* HWY_RESTRICT src, size_t n, float mul, float* HWY_RESTRICT dst, size_t padded) {
  const DF df;
  const VF vmul = hn::Set(df, mul);
  auto scaled = [&](VF v) { return kScaled ? hn::Mul(v, vmul) : v; };
  size_t i = 0;
  if constexpr (std::is_same_v<T, float>) {
    for (; i + kLanes <= n; i += kLanes) hn::Store(scaled(hn::LoadU(df, src + i)), df, dst + i);
  } else {
    using H = typename HwyStorage<T>::type;
    const H* h = reinterpret_cast<const H*>(src);
    if constexpr (std::is_same_v<T, bf16>) {
      // A bf16 is the upper half of an f32: the even element of each 32-bit pair shifts up, the odd one
      // is masked in place.
      const hn::RebindToUnsigned<DF> du;
      const auto upper = hn::Set(du, 0xFFFF0000u);
      for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
        const auto pairs = hn::LoadU(du, reinterpret_cast<const uint32_t*>(h + i));
        hn::Store(scaled(hn::BitCast(df, hn::ShiftLeft<16>(pairs))), df, dst + i);
        hn::Store(scaled(hn::BitCast(df, hn::And(pairs, upper))), df, dst + i + kLanes);
      }
    }
    const hn::Rebind<H, DF> dh;
    for (; i + kLanes <= n; i += kLanes) hn::Store(scaled(hn::PromoteTo(df, hn::LoadU(dh, h + i))), df, dst + i);
  }
  for (; i < n; ++i) dst[i] = to_f32(src[i]) * mul;
  for (; i < padded; ++i) dst[i] = 0.0f;
}

// dst[0, n) = T(src * mul) back in element order. Output rows are a small share of the traffic: the
// scalar rounding keeps the result bit-identical to from_f32 (the reference's rounding) on every target.
template <class T>
HWY_INLINE void StoreRow(const float* HWY_RESTRICT src, size_t n, float mul, T* HWY_RESTRICT dst) {
  if constexpr (std::is_same_v<T, float>) {
    const DF df;
    const VF vmul = hn::Set(df, mul);
    size_t i = 0;
    for (; i + kLanes <= n; i += kLanes) hn::StoreU(hn::Mul(hn::LoadU(df, src + i), vmul), df, dst + i);
    for (; i < n; ++i) dst[i] = src[i] * mul;
  } else {
    for (size_t k = 0; k < n; ++k) dst[StagedToElement<T>(k, n)] = from_f32<T>(src[k] * mul);
  }
}

// acc[0, n) += a * src[0, n) (unaligned, any n).
HWY_INLINE void AxpyRow(float a, const float* HWY_RESTRICT src, size_t n, float* HWY_RESTRICT acc) {
  const DF df;
  const VF va = hn::Set(df, a);
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) hn::StoreU(hn::MulAdd(va, hn::LoadU(df, src + i), hn::LoadU(df, acc + i)), df, acc + i);
  for (; i < n; ++i) acc[i] += a * src[i];
}

// Chunk pair c2 of a row (elements [2N * c2, 2N * c2 + 2N)) as two f32 vectors in staged order: rows
// of the cache are converted as they are loaded, rows already staged (float) are loaded as they are.
template <class T>
HWY_INLINE void LoadPair(const T* HWY_RESTRICT row, size_t c2, VF& lo, VF& hi) {
  const DF df;
  const T* src = row + 2 * kLanes * c2;
  if constexpr (std::is_same_v<T, float>) {
    lo = hn::LoadU(df, src);
    hi = hn::LoadU(df, src + kLanes);
  } else if constexpr (std::is_same_v<T, bf16>) {
    const hn::RebindToUnsigned<DF> du;
    const auto pairs = hn::LoadU(du, reinterpret_cast<const uint32_t*>(src));
    lo = hn::BitCast(df, hn::ShiftLeft<16>(pairs));
    hi = hn::BitCast(df, hn::And(pairs, hn::Set(du, 0xFFFF0000u)));
  } else {
    const hn::Rebind<hwy::float16_t, DF> dh;
    const auto* h = reinterpret_cast<const hwy::float16_t*>(src);
    lo = hn::PromoteTo(df, hn::LoadU(dh, h));
    hi = hn::PromoteTo(df, hn::LoadU(dh, h + kLanes));
  }
}

// Chunk c of a row in element order (the odd last chunk of a head dim that is an odd number of vectors).
template <class T>
HWY_INLINE VF LoadChunk(const T* HWY_RESTRICT row, size_t c) {
  const DF df;
  if constexpr (std::is_same_v<T, float>) {
    return hn::LoadU(df, row + c * kLanes);
  } else {
    using H = typename HwyStorage<T>::type;
    const hn::Rebind<H, DF> dh;
    return hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const H*>(row + c * kLanes)));
  }
}

// Makes the compiler hold v in a register. Without it GCC 12 folds a query vector that feeds several FMAs
// into each of them as a memory operand, loading it once per FMA: the AVX2 K pass then issued 20 vector
// loads per 16 FMAs, more than Zen 1's two 128-bit load ports keep up with (bench_kernel_compute bf16 -5%,
// f32 -7% with it).
HWY_INLINE void InRegister(VF& v) {
#if HWY_ARCH_X86 && HWY_COMPILER_GCC && HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128
  asm("" : "+v"(v.raw));  // "v": any vector register the target has (zmm16-31 included on AVX-512)
#else
  (void)v;
#endif
}

// K rows a dot-product pass takes at once for kR query vectors: each query vector loaded then feeds kRows
// FMAs. The most (a power of two dividing N) whose kRows x kR accumulators, two converted vectors per row
// and the query vector fit the register file with two to spare.
template <size_t kR>
constexpr size_t ScoreRows() {
  size_t rows = 1;
  while (rows * 2 <= kLanes && (rows * 2) * (kR + 2) + 1 <= kVectorRegisters - 2) rows *= 2;
  return rows;
}

// Partial sums of q_j . k_i for the kR query vectors q_j = q + j * q_stride (f32, staged order) and the
// kRows rows k_i = rows[i], over kChunks vectors of the head dim; a row is a cache row of any storage type
// or a staged f32 row. Each K vector is loaded (and converted) once for all kR query vectors and each
// query vector once for all kRows rows. One row keeps two accumulators per query vector (even and odd
// chunks) so that enough FMA chains are in flight. kChunks = 0: a runtime count, one staged row.
template <size_t kRows, size_t kR, size_t kChunks, class RowT>
HWY_INLINE void DotPartial(const float* HWY_RESTRICT q, size_t q_stride, const RowT* const* rows, size_t chunks,
                           VF (&out)[kRows][kR]) {
  const DF df;
  constexpr size_t kSplit = kRows == 1 ? 2 : 1;
  VF acc[kRows][kR][kSplit];
  for (size_t i = 0; i < kRows; ++i)
    for (size_t j = 0; j < kR; ++j)
      for (size_t s = 0; s < kSplit; ++s) acc[i][j][s] = hn::Zero(df);
  if constexpr (kChunks != 0) {
    HWY_UNROLL(8)
    for (size_t c2 = 0; c2 < kChunks / 2; ++c2) {
      VF lo[kRows], hi[kRows];
      for (size_t i = 0; i < kRows; ++i) LoadPair(rows[i], c2, lo[i], hi[i]);
      for (size_t j = 0; j < kR; ++j) {
        VF q_lo = hn::Load(df, q + j * q_stride + 2 * c2 * kLanes);
        if constexpr (kRows > 1) InRegister(q_lo);
        for (size_t i = 0; i < kRows; ++i) acc[i][j][0] = hn::MulAdd(q_lo, lo[i], acc[i][j][0]);
        VF q_hi = hn::Load(df, q + j * q_stride + (2 * c2 + 1) * kLanes);
        if constexpr (kRows > 1) InRegister(q_hi);
        for (size_t i = 0; i < kRows; ++i) acc[i][j][kSplit - 1] = hn::MulAdd(q_hi, hi[i], acc[i][j][kSplit - 1]);
      }
    }
    if constexpr (kChunks % 2 != 0) {
      for (size_t i = 0; i < kRows; ++i) {
        const VF last = LoadChunk(rows[i], kChunks - 1);
        for (size_t j = 0; j < kR; ++j)
          acc[i][j][0] = hn::MulAdd(hn::Load(df, q + j * q_stride + (kChunks - 1) * kLanes), last, acc[i][j][0]);
      }
    }
  } else {
    static_assert(kRows == 1 && std::is_same_v<RowT, float>, "the runtime head-dim path reads one staged row");
    for (size_t c = 0; c < chunks; ++c) {
      const VF kc = hn::LoadU(df, rows[0] + c * kLanes);
      for (size_t j = 0; j < kR; ++j) {
        VF& a = acc[0][j][c & 1];
        a = hn::MulAdd(hn::Load(df, q + j * q_stride + c * kLanes), kc, a);
      }
    }
  }
  for (size_t i = 0; i < kRows; ++i)
    for (size_t j = 0; j < kR; ++j) out[i][j] = kSplit == 2 ? hn::Add(acc[i][j][0], acc[i][j][kSplit - 1]) : acc[i][j][0];
}

#if HWY_TARGET != HWY_SCALAR  // one lane: a tile is one position, its score one dot product
// Lane i of out = the sum of the lanes of vectors[i], for kCount stored vectors (kLanes apart). Each level
// adds neighbouring lanes of two vectors and packs both halves into one, so kCount vectors of partial sums
// become one vector of kCount sums with no per-score horizontal sum.
template <size_t kCount, class D = DF>
HWY_INLINE hn::Vec<D> LaneSums(const float* HWY_RESTRICT vectors) {
  const D d;
  if constexpr (kCount == 1) {
    if constexpr (hn::MaxLanes(d) == kLanes) return hn::Load(d, vectors);
    else return hn::Add(hn::Load(d, vectors), hn::Load(d, vectors + hn::MaxLanes(d)));  // a 256-bit vector's halves
  } else {
    const auto lo = LaneSums<kCount / 2, D>(vectors), hi = LaneSums<kCount / 2, D>(vectors + kCount / 2 * kLanes);
    return hn::Add(hn::ConcatEven(d, hi, lo), hn::ConcatOdd(d, hi, lo));
  }
}
#if HWY_TARGET == HWY_AVX2
// On AVX2 each vector's two 128-bit halves are added first and the tree runs on 128-bit vectors, whose
// shuffles stay within a lane (the 256-bit ConcatEven/ConcatOdd cross lanes: 2-3 uops each on Zen 1 and 2).
template <>
HWY_INLINE VF LaneSums<kLanes, DF>(const float* HWY_RESTRICT vectors) {
  using D4 = hn::Full128<float>;
  return hn::Combine(DF(), LaneSums<kLanes / 2, D4>(vectors + kLanes / 2 * kLanes), LaneSums<kLanes / 2, D4>(vectors));
}
#endif
#endif

// Row groups ScoreTile walks a tile in (each group one call of `step`).
template <size_t kR, size_t kChunks>
constexpr size_t ScoreSteps() {
  return HWY_TARGET == HWY_SCALAR ? 1 : kLanes / (kChunks != 0 ? ScoreRows<kR>() : 1);
}

// Lane i of out[j] = q_j . rows[i] for the tile's kLanes rows. The rows are walked in a loop that is not
// unrolled, their partial sums parked in `partials` ([kR][kLanes][kLanes] floats, aligned): fully unrolled,
// the compiler interleaves the rows, converts all of them up front and spills them (x86 before AVX-512 has
// 16 vector registers). A row's loads then stay next to its FMAs. step() runs before each group of rows
// (ScoreSteps in all), so that the caller's prefetches spread over the computation.
template <size_t kR, size_t kChunks, class RowT, class Step>
HWY_INLINE void ScoreTile(const float* HWY_RESTRICT q, size_t q_stride, const RowT* const* rows, size_t chunks,
                          float* HWY_RESTRICT partials, VF (&out)[kR], Step&& step) {
#if HWY_TARGET == HWY_SCALAR  // one lane: a tile is one position
  (void)partials;
  step();
  VF sums[1][kR];
  DotPartial<1, kR, kChunks>(q, q_stride, rows, chunks, sums);
  for (size_t j = 0; j < kR; ++j) out[j] = sums[0][j];
#else
  const DF df;
  constexpr size_t kRows = kChunks != 0 ? ScoreRows<kR>() : 1;
#pragma GCC unroll 1
  for (size_t i = 0; i < kLanes; i += kRows) {
    step();
    VF sums[kRows][kR];
    DotPartial<kRows, kR, kChunks>(q, q_stride, rows + i, chunks, sums);
    for (size_t r = 0; r < kRows; ++r)
      for (size_t j = 0; j < kR; ++j) hn::Store(sums[r][j], df, partials + (j * kLanes + i + r) * kLanes);
  }
  for (size_t j = 0; j < kR; ++j) out[j] = LaneSums<kLanes>(partials + j * kLanes * kLanes);
#endif
}

// Scores live in the log2 domain (log2(e) is folded into the query scale with the softmax scale), so a
// weight is 2^(s - m).
constexpr float kLog2e = 1.4426950408889634f;

// How far a score may rise above a vector's reference max before the reference moves: weights up to
// 2^8 are harmless in f32, and most tiles then need no max reduction, no scalar exp and no rescale.
constexpr float kRescaleSlack = 8.0f;

// 2^x for x <= kRescaleSlack; x <= -126.5 (masked lanes: -inf) gives 0. x = n + f with n an integer and
// |f| <= 1/2: 2^f by a degree-6 polynomial (relative error 8e-8 in f32, a near-minimax fit), 2^n built in
// the exponent bits. Adding 1.5 * 2^23 + 127 rounds x to an integer n in the low bits of the sum's
// mantissa, already biased: shifted up by 23 they are 2^n's bits (n = -127 gives 0). About half the
// operations of a general exp (no range checks, no split power for large n, no float-to-int conversion).
HWY_INLINE VF Exp2Weights(VF x) {
  const DF df;
  const hn::RebindToSigned<DF> di;
  const VF kShifter = hn::Set(df, 12582912.0f + 127.0f);  // 1.5 * 2^23 + the exponent bias
  x = hn::Max(hn::Set(df, -127.0f), x);  // x86 returns the second operand when one is NaN: a NaN score stays NaN
  const VF biased = hn::Add(x, kShifter);
  const VF f = hn::Sub(x, hn::Sub(biased, kShifter));
  VF poly = hn::Set(df, 1.534579933e-4f);
  poly = hn::MulAdd(poly, f, hn::Set(df, 1.339992741e-3f));
  poly = hn::MulAdd(poly, f, hn::Set(df, 9.618489072e-3f));
  poly = hn::MulAdd(poly, f, hn::Set(df, 5.550328642e-2f));
  poly = hn::MulAdd(poly, f, hn::Set(df, 2.402264625e-1f));
  poly = hn::MulAdd(poly, f, hn::Set(df, 6.931471825e-1f));
  poly = hn::MulAdd(poly, f, hn::Set(df, 1.0f));
  return hn::Mul(poly, hn::BitCast(df, hn::ShiftLeft<23>(hn::BitCast(di, biased))));
}

// Online-softmax update of kB query vectors with the scores of a tile; vector b may see the first
// visible[b] lanes. m[b] is a reference max (within kRescaleSlack of the true one), l_lanes the per-lane sums
// of weights (reduced once at the end), w receives 2^(s - m) (0 on masked lanes); vector b's state sits at
// l_lanes / w + b * kLanes and o + b * o_floats. When m moves, the vector's output is rescaled here, so the
// V pass never has to (m rarely moves: see kRescaleSlack). A vector that sees nothing of the tile keeps its
// state. The kB weight computations are independent chains written side by side, so that they overlap.
template <size_t kB>
HWY_INLINE void SoftmaxUpdate(VF (&s)[kB], const int32_t* visible, float* m, float* HWY_RESTRICT l_lanes,
                              float* HWY_RESTRICT w, float* HWY_RESTRICT o, size_t o_floats) {
  const DF df;
  VF shifted[kB];
  for (size_t b = 0; b < kB; ++b) {
    const size_t seen = static_cast<size_t>(visible[b]);
    if (seen < kLanes) s[b] = hn::IfThenElse(hn::FirstN(df, seen), s[b], hn::Set(df, kNegInf));
    if (seen != 0 && !hn::AllFalse(df, hn::Gt(s[b], hn::Set(df, m[b] + kRescaleSlack)))) {  // first tile: m = -inf
      const float m_new = std::max(m[b], hn::GetLane(hn::MaxOfLanes(df, s[b])));
      if (m[b] != kNegInf) {  // before the first visible tile the sums and the output are still zero
        const VF alpha = hn::Set(df, std::exp2(m[b] - m_new));
        hn::Store(hn::Mul(hn::Load(df, l_lanes + b * kLanes), alpha), df, l_lanes + b * kLanes);
        float* ob = o + b * o_floats;
        for (size_t i = 0; i < o_floats; i += kLanes) hn::Store(hn::Mul(hn::Load(df, ob + i), alpha), df, ob + i);
      }
      m[b] = m_new;
    }
    // seen = 0: every lane is -inf (the weights come out 0 and the sums stay), even while m is still -inf.
    shifted[b] = hn::Sub(s[b], hn::Set(df, m[b] == kNegInf ? 0.0f : m[b]));
  }
  VF weights[kB];
  for (size_t b = 0; b < kB; ++b) weights[b] = Exp2Weights(shifted[b]);
  for (size_t b = 0; b < kB; ++b) {
    hn::Store(hn::Add(hn::Load(df, l_lanes + b * kLanes), weights[b]), df, l_lanes + b * kLanes);
    hn::Store(weights[b], df, w + b * kLanes);
  }
}

// Chunks of the head dim one AccumulateV part takes: the widest part (whole chunk pairs, at least one) whose
// kR x kPart accumulators fit the register budget (a spill inside the loop over the tile's rows would cost a
// load and a store per FMA).
template <size_t kR, size_t kChunks>
constexpr size_t VPartChunks() {
  constexpr size_t kFit = kAccumulatorRegisters / kR / 2 * 2, kWidest = kFit < 2 ? 2 : kFit;
  return kWidest < kChunks ? kWidest : kChunks;
}
// Rows of the V pass between two steps, counted through its parts (a part walks all the tile's rows): as many
// multiply-adds as one row group of the K pass, where ScoreTile steps, so that the next tile's prefetches go out
// at one even rate through both passes; rounded down to a power of two. On AVX-512 at D = 128 and a group of 4
// that is a step every 8 rows (the V pass had one step per two parts before, and the K pass issued four fifths
// of the prefetches in bursts of ~50 lines: bench_decode on Zen 5, A/B within each repeat, 9-19% slower for bf16;
// for f32 4-5%, within that harness's bias toward the variant, found later: cpu_decode.md, stop 26). On AVX2 at
// D = 128 and a group of 4 it is a step every two parts, as before (Zen 1 measured a step per part 6% slower
// there); a group of 3 at D = 64, or of 1 at D = 128, steps once per part (not measured on the AVX2 machines).
template <size_t kR, size_t kChunks>
constexpr size_t VRowsPerStep() {
  constexpr size_t kStepFmas = ScoreRows<kR>() * kR * kChunks, kRowFmas = kR * VPartChunks<kR, kChunks>();
  size_t rows = 1;
  while (rows * 2 * kRowFmas <= kStepFmas) rows *= 2;
  return rows;
}

// Chunks [kFirst, kFirst + kCount) of AccumulateV: kFirst is even, so the part holds whole chunk pairs
// plus, when it ends the head dim and kChunks is odd, the single last chunk. step() runs before the rows that
// VRowsPerStep picks.
template <size_t kR, size_t kFirst, size_t kCount, size_t kChunks, class RowT, class Step>
HWY_INLINE void AccumulateVPart(float* HWY_RESTRICT o, size_t o_stride, const float* HWY_RESTRICT w,
                                const RowT* const* rows, size_t count, Step&& step) {
  const DF df;
  constexpr size_t kFirstRow = kFirst / VPartChunks<kR, kChunks>() * kLanes;  // rows of the parts before this one
  constexpr size_t kRowsPerStep = VRowsPerStep<kR, kChunks>();
  constexpr size_t kPairs = (kFirst + kCount <= kChunks / 2 * 2 ? kCount : kCount - 1) / 2;
  constexpr bool kLast = kFirst + 2 * kPairs < kFirst + kCount;  // the odd last chunk of the head dim
  // The part of the output rows stays in registers while the tile's V rows stream past.
  VF acc[kR][kCount];
  for (size_t j = 0; j < kR; ++j) {
    HWY_UNROLL(16)
    for (size_t c = 0; c < kCount; ++c) acc[j][c] = hn::Load(df, o + j * o_stride + (kFirst + c) * kLanes);
  }
  // count >= 1 (ForEachBlock skips blocks that see nothing): with a loop that may run zero times GCC 12 keeps
  // a memory copy of acc for the skipped path, storing all of it twice per part and reloading it (on Zen 1 the
  // compute side then ran 8-10% slower, bench_kernel_compute).
  size_t i = 0;
  do {
    if ((kFirstRow + i) % kRowsPerStep == 0) step();
    VF wi[kR];
    for (size_t j = 0; j < kR; ++j) wi[j] = hn::Set(df, w[j * kLanes + i]);
    HWY_UNROLL(8)
    for (size_t p = 0; p < kPairs; ++p) {
      VF lo, hi;
      LoadPair(rows[i], kFirst / 2 + p, lo, hi);
      for (size_t j = 0; j < kR; ++j) {
        acc[j][2 * p] = hn::MulAdd(wi[j], lo, acc[j][2 * p]);
        acc[j][2 * p + 1] = hn::MulAdd(wi[j], hi, acc[j][2 * p + 1]);
      }
    }
    if constexpr (kLast) {
      const VF last = LoadChunk(rows[i], kChunks - 1);
      for (size_t j = 0; j < kR; ++j) acc[j][kCount - 1] = hn::MulAdd(wi[j], last, acc[j][kCount - 1]);
    }
  } while (++i < count);
  for (size_t j = 0; j < kR; ++j) {
    HWY_UNROLL(16)
    for (size_t c = 0; c < kCount; ++c) hn::Store(acc[j][c], df, o + j * o_stride + (kFirst + c) * kLanes);
  }
}

// Steps of AccumulateV (calls of `step`) over a whole tile.
template <size_t kR, size_t kChunks>
constexpr size_t VSteps() {
  if constexpr (kChunks == 0) {
    return 1;
  } else {
    constexpr size_t kParts = (kChunks + VPartChunks<kR, kChunks>() - 1) / VPartChunks<kR, kChunks>();
    return (kParts * kLanes + VRowsPerStep<kR, kChunks>() - 1) / VRowsPerStep<kR, kChunks>();
  }
}

// o_j += sum_{i < count} w_j[i] * rows[i] (count >= 1) for the kR vectors o_j = o + j * o_stride with
// weights w_j = w + j * kLanes; o aligned, `chunks` vectors long; rows as for DotPartial. The head dim is
// walked in parts of VPartChunks chunks so that kR x kPart accumulators fit in registers; each V vector is
// loaded (and converted) once for all kR vectors. step() runs VSteps times over a whole tile (fewer when count
// is short of it: the caller's finish() issues the rest).
template <size_t kR, size_t kChunks, class RowT, size_t kFirst = 0, class Step>
HWY_INLINE void AccumulateV(float* HWY_RESTRICT o, size_t o_stride, const float* HWY_RESTRICT w,
                            const RowT* const* rows, size_t count, size_t chunks, Step&& step) {
  const DF df;
  if constexpr (kChunks == 0) step();
  if constexpr (kChunks != 0) {
    constexpr size_t kPart = VPartChunks<kR, kChunks>();
    constexpr size_t kCount = kChunks - kFirst < kPart ? kChunks - kFirst : kPart;
    static_assert(kPart % 2 == 0 || kPart >= kChunks, "parts start on chunk pairs");
    AccumulateVPart<kR, kFirst, kCount, kChunks>(o, o_stride, w, rows, count, step);
    if constexpr (kFirst + kCount < kChunks)
      AccumulateV<kR, kChunks, RowT, kFirst + kCount>(o, o_stride, w, rows, count, chunks, step);
  } else {
    static_assert(kR == 1 && std::is_same_v<RowT, float>, "the runtime head-dim path: one vector, staged rows");
    for (size_t c = 0; c < chunks; ++c) {
      VF a = hn::Load(df, o + c * kLanes);
      VF b = hn::Zero(df);
      size_t i = 0;
      for (; i + 1 < count; i += 2) {
        a = hn::MulAdd(hn::Set(df, w[i]), hn::LoadU(df, rows[i] + c * kLanes), a);
        b = hn::MulAdd(hn::Set(df, w[i + 1]), hn::LoadU(df, rows[i + 1] + c * kLanes), b);
      }
      if (i < count) a = hn::MulAdd(hn::Set(df, w[i]), hn::LoadU(df, rows[i] + c * kLanes), a);
      hn::Store(hn::Add(a, b), df, o + c * kLanes);
    }
  }
}

// Prefetch steps of one tile per KV head: ForEachBlock cuts a head's per_head query vectors into blocks of kR
// and one block of the rest (a GQA group of 3 is one block of 3), and each block's passes step ScoreSteps +
// VSteps times. Counting blocks of kR instead gave the cursor too few steps for groups of 1 to 3, so that it
// issued everything in the first part of the tile (a group of 3 at D = 64: in the K passes) or left half for
// finish() (a group of 1).
template <size_t kB, size_t kChunks>
constexpr size_t BlockSteps() {
  return ScoreSteps<kB, kChunks>() + VSteps<kB, kChunks>();
}
template <size_t kR, size_t kChunks>
size_t HeadSteps(int64_t per_head) {
  static_assert(kR == 1 || kR == 4, "blocks of kR, then one block of the rest (ForEachBlock)");
  constexpr size_t kRest[4] = {0, BlockSteps<1, kChunks>(), BlockSteps<2, kChunks>(), BlockSteps<3, kChunks>()};
  const size_t n = static_cast<size_t>(per_head);
  return n / kR * BlockSteps<kR, kChunks>() + kRest[n % kR];
}

// The sequence-level facts an item needs.
struct SeqView {
  int64_t context = 0;
  int64_t row0 = 0;   // first query row of the sequence
  int64_t q_len = 0;
  const int32_t* table = nullptr;

  SeqView(const KernelParams& p, int64_t b)
      : context(p.context_lens[b]),
        row0(p.query_start ? p.query_start[b] : b),
        q_len(p.query_start ? p.query_start[b + 1] - row0 : 1),
        table(p.block_tables + b * p.max_blocks_per_seq) {}

  // Last position that `row` may attend to.
  int64_t limit(const KernelParams& p, int64_t row) const { return p.causal ? context - q_len + (row - row0) : context - 1; }
};

// Query vector r of an item (head-major order, see WorkItem) -> its (row, query head).
struct VectorIndex {
  int64_t row, head;
};
inline VectorIndex vector_index(const KernelParams& p, const WorkItem& it, int64_t r) {
  const int64_t group = p.group(), per_head = int64_t{it.row_end - it.row_begin} * group;
  return {it.row_begin + (r % per_head) / group, (it.head_begin + r / per_head) * group + r % group};
}

template <class T, class Base>
T* element_ptr(Base* base, const int64_t (&strides)[2], VectorIndex v) {
  return static_cast<T*>(base) + v.row * strides[0] + v.head * strides[1];
}

// Hands out 64-byte aligned typed regions of one thread-local scratch buffer.
class ScratchCarver {
 public:
  explicit ScratchCarver(size_t bytes) : next_(static_cast<char*>(detail::thread_scratch(bytes))) {}
  template <class U>
  U* take(size_t count) {
    U* region = reinterpret_cast<U*>(next_);
    next_ += (count * sizeof(U) + 63) / 64 * 64;
    return region;
  }
  static size_t bytes(size_t count, size_t size) { return (count * size + 63) / 64 * 64; }

 private:
  char* next_;
};

// Pages are scattered, so hardware prefetchers cannot run ahead across them. The next tile's K and V lines
// are requested into L2 while this tile is computed, spread evenly over its steps (a burst would fill the
// core's miss buffers and stall the computation). Measured on Zen 4 (bench_decode, f32 B=16 ctx=4096):
// L2 prefetches halve the time; L1 prefetches (hwy::Prefetch, prefetcht0) are no better than none.
class PrefetchCursor {
 public:
  template <class T>
  void reset(const T* key_cache, const T* value_cache, const int64_t* tokens, size_t count, size_t token_lines,
             size_t steps) {
    for (size_t i = 0; i < count; ++i) {
      bases_[2 * i] = reinterpret_cast<const char*>(key_cache + tokens[i]);
      bases_[2 * i + 1] = reinterpret_cast<const char*>(value_cache + tokens[i]);
    }
    num_bases_ = 2 * count;
    token_bytes_ = token_lines * 64;
    per_step_ = (num_bases_ * token_lines + steps - 1) / std::max<size_t>(steps, 1);
    base_ = 0;
    offset_ = 0;
  }
  void step() { issue(per_step_); }
  void finish() { issue(~size_t{0}); }

 private:
  void issue(size_t lines) {
    while (lines != 0 && base_ < num_bases_) {
      // The rest of the current run, or `lines` of it, in a loop whose state stays in registers.
      const size_t take = std::min(lines, (token_bytes_ - offset_) / 64);
      const char* line = bases_[base_] + offset_;
      for (size_t i = 0; i < take; ++i, line += 64) {
#if HWY_COMPILER_GCC  // includes clang
        // prefetcht1: into L2 where the core has an L2-only hint (Zen 4, Intel), so L1 stays with the tile; Zen 3
        // fills L1 too (bench/results/cpu_decode.md).
        __builtin_prefetch(line, /*rw=*/0, /*locality=*/2);
#else
        hwy::Prefetch(line);
#endif
      }
      lines -= take;
      offset_ += take * 64;
      if (offset_ == token_bytes_) {
        offset_ = 0;
        ++base_;
      }
    }
  }
  const char* bases_[2 * kLanes] = {};
  size_t num_bases_ = 0, token_bytes_ = 64, per_step_ = 0, base_ = 0, offset_ = 0;
};

// Calls f(std::integral_constant<size_t, kB>, r, count) for vectors [r, r + kB) of [begin, end): blocks of
// kR, then one block of the rest (a GQA group of 3 is one block of 3); count = the most positions any of
// them sees, and blocks that see none are skipped.
template <size_t kR, class F>
HWY_INLINE void ForEachBlock(int64_t begin, int64_t end, const int32_t* visible, F&& f) {
  auto block = [&](auto size, int64_t r) {
    const size_t count = static_cast<size_t>(*std::max_element(visible + r, visible + r + decltype(size)::value));
    if (count != 0) f(size, r, count);
  };
  int64_t r = begin;
  for (; r + static_cast<int64_t>(kR) <= end; r += kR) block(std::integral_constant<size_t, kR>(), r);
  static_assert(kR <= 4, "one remainder block of at most 3");
  switch (end - r) {
    case 3: if constexpr (kR > 3) block(std::integral_constant<size_t, 3>(), r); break;
    case 2: if constexpr (kR > 2) block(std::integral_constant<size_t, 2>(), r); break;
    case 1: if constexpr (kR > 1) block(std::integral_constant<size_t, 1>(), r); break;
    default: break;
  }
}

// The order in which the passes walk the rows of a tile that every query row sees whole: lane i holds row
// TileRow(i). In token order each load of a pass steps through the tile's rows at one stride (a token's size in
// the cache); the core's stride prefetcher learns it and runs on past the page's last row into other blocks'
// memory, which nobody reads (Zen 5, bench_decode, A/B within each repeat: the rows scrambled, 12-20% faster on
// every reference shape). In these orders no load sees two equal strides in a row, whether the pass steps through
// the rows one, two, four or eight at a time (ScoreRows), so there is nothing to learn. The software prefetch
// brings the tile into L2 in any order, and attention does not depend on the order of its keys.
constexpr uint8_t kRowOrder16[16] = {0, 13, 9, 4, 8, 6, 1, 12, 7, 11, 5, 2, 14, 3, 10, 15};
constexpr uint8_t kRowOrder8[8] = {0, 5, 3, 7, 4, 2, 6, 1};
template <size_t kN>
constexpr bool HasNoRepeatedStride(const uint8_t (&order)[kN]) {
  bool seen[kN] = {};
  for (size_t i = 0; i < kN; ++i) {
    if (order[i] >= kN || seen[order[i]]) return false;  // a permutation
    seen[order[i]] = true;
  }
  for (size_t by = 1; by < kN; by *= 2)
    for (size_t first = 0; first < by; ++first)
      for (size_t i = first; i + 2 * by < kN; i += by)
        if (order[i + by] - order[i] == order[i + 2 * by] - order[i + by]) return false;
  return true;
}
static_assert(HasNoRepeatedStride(kRowOrder16) && HasNoRepeatedStride(kRowOrder8));
HWY_INLINE size_t TileRow(size_t lane) {
  if constexpr (kLanes == 16) return kRowOrder16[lane];
  else if constexpr (kLanes == 8) return kRowOrder8[lane];
  else return lane;  // 128-bit targets and the scalar one: in order (not measured there)
}

// One work item; T is the storage type, kChunks the padded head dim in vectors (0 = runtime).
template <class T, size_t kChunks>
void RunItemT(const KernelParams& p, const WorkItem& it, float* partials) {
  const size_t D = static_cast<size_t>(p.head_dim);
  const size_t chunks = kChunks != 0 ? kChunks : (D + kLanes - 1) / kLanes;
  const size_t Dp = chunks * kLanes;
  // With a compile-time head dim (a whole number of vectors) rows are read and converted straight from the
  // cache; the runtime path converts them into a zero-padded f32 tile first.
  constexpr bool kStaged = kChunks == 0;
  // Query vectors per pass over a tile: four share every K and V load (and conversion).
  constexpr size_t kR = kChunks != 0 ? 4 : 1;
  const int64_t group = p.group(), rows = it.row_end - it.row_begin, heads = it.head_end - it.head_begin;
  const int64_t per_head = rows * group, R = it.num_vectors(group);
  const int64_t HkvD = p.num_kv_heads * p.head_dim, bs = p.block_size;
  const SeqView seq(p, it.seq);

  // Scratch: q and o [R][Dp], weights and lane sums of weights [R][N], the K and V tiles of one head
  // [N][Dp], per-vector m, l and the number of positions of the current tile that the vector sees,
  // per row the same, and the partial dot products of one pass over a tile [kR][N][N].
  const size_t vec_floats = static_cast<size_t>(R) * Dp, nR = static_cast<size_t>(R);
  const size_t tile_floats = kStaged ? kLanes * Dp : 0;
  ScratchCarver scratch(2 * ScratchCarver::bytes(vec_floats, 4) + 2 * ScratchCarver::bytes(nR * kLanes, 4) +
                        2 * ScratchCarver::bytes(tile_floats, 4) + 3 * ScratchCarver::bytes(nR, 4) +
                        ScratchCarver::bytes(static_cast<size_t>(rows), 8) +
                        ScratchCarver::bytes(kR * kLanes * kLanes, 4));
  float* q = scratch.take<float>(vec_floats);
  float* o = scratch.take<float>(vec_floats);
  float* w = scratch.take<float>(nR * kLanes);
  float* l_lanes = scratch.take<float>(nR * kLanes);
  float* k_tile = scratch.take<float>(tile_floats);
  float* v_tile = scratch.take<float>(tile_floats);
  float* m = scratch.take<float>(nR);
  float* l = scratch.take<float>(nR);
  int32_t* visible_count = scratch.take<int32_t>(nR);
  int64_t* row_visible = scratch.take<int64_t>(static_cast<size_t>(rows));  // per row, for the current tile
  float* row_sums = scratch.take<float>(kR * kLanes * kLanes);

  for (int64_t r = 0; r < R; ++r) {
    const T* src = element_ptr<const T>(p.query, p.query_strides, vector_index(p, it, r));
    ConvertRow<true>(src, D, p.scale * kLog2e, q + r * Dp, Dp);  // the scale (log2 domain) folded into q
    std::fill(o + r * Dp, o + (r + 1) * Dp, 0.0f);
    m[r] = kNegInf;
    std::fill(l_lanes + r * kLanes, l_lanes + (r + 1) * kLanes, 0.0f);
  }

  const T* key_cache = static_cast<const T*>(p.key_cache);
  const T* value_cache = static_cast<const T*>(p.value_cache);
  const int64_t first_head = int64_t{it.head_begin} * p.head_dim;
  // Cache offsets of the item's positions in order: one division, then a walk through the pages.
  int64_t walk_page = it.kv_begin / bs, walk_slot = it.kv_begin % bs;
  auto next_token_offset = [&] {
    const int64_t offset = (int64_t{seq.table[walk_page]} * bs + walk_slot) * HkvD + first_head;
    if (++walk_slot == bs) walk_slot = 0, ++walk_page;
    return offset;
  };
  // Converts head h of the tile's first `count` tokens into an f32 tile [N][Dp] that stays in L1 while
  // the head's query vectors pass over it (the lines come from L2, prefetched during the previous tile).
  auto stage = [&](const T* cache, const int64_t* lane_toks, size_t count, int64_t h, float* tile) {
    for (size_t i = 0; i < count; ++i)
      ConvertRow<false>(cache + lane_toks[i] + h * p.head_dim, D, 1.0f, tile + i * Dp, Dp);
  };
  // The item's heads of one token are contiguous (NHD): heads * D elements at token_offset(pos).
  const size_t token_lines = (static_cast<size_t>(heads) * D * sizeof(T) + 63) / 64;
  // Steps of a tile that issue a share of the next tile's prefetches: per head and block of vectors, the row
  // groups of its K pass and the rows of its V pass that VRowsPerStep picks (HeadSteps). A step of a few lines,
  // not a pass's worth (64-128 lines at D = 128): a longer burst fills the core's miss buffers and stalls the
  // loads of the computation behind it (Zen 1, K/V from memory: f32 5.0 -> 7.2, bf16 6.5 -> 7.9 G multiply-adds/s
  // per core, bench_kernel_compute --context 8192).
  const size_t steps_per_tile = static_cast<size_t>(heads) * HeadSteps<kR, kChunks>(per_head);
  PrefetchCursor prefetch;

  int64_t tokens[kLanes] = {}, next_tokens[kLanes] = {};
  size_t next_n = static_cast<size_t>(std::min<int64_t>(kLanes, it.kv_end - it.kv_begin));
  for (size_t i = 0; i < next_n; ++i) next_tokens[i] = next_token_offset();

  for (int64_t t0 = it.kv_begin; t0 < it.kv_end; t0 += kLanes) {
    const size_t n = next_n;
    std::copy(next_tokens, next_tokens + n, tokens);
    next_n = static_cast<size_t>(std::clamp<int64_t>(it.kv_end - t0 - kLanes, 0, kLanes));
    for (size_t i = 0; i < next_n; ++i) next_tokens[i] = next_token_offset();

    // How much of the tile each row sees (causal rows of a prefill tile see less); V rows past the
    // furthest one are never read.
    size_t v_count = 0, least_visible = n;
    for (int64_t j = 0; j < rows; ++j) {
      row_visible[j] = std::clamp<int64_t>(seq.limit(p, it.row_begin + j) - t0 + 1, 0, static_cast<int64_t>(n));
      v_count = std::max(v_count, static_cast<size_t>(row_visible[j]));
      least_visible = std::min(least_visible, static_cast<size_t>(row_visible[j]));
    }
    // The cache offset of each lane's row: in TileRow order when every row sees the whole tile (the masks then
    // mask nothing), else in order, lanes past the tile pointing at its first row.
    const bool scrambled = least_visible == kLanes;
    int64_t lane_tokens[kLanes];
    for (size_t i = 0; i < kLanes; ++i) lane_tokens[i] = tokens[scrambled ? TileRow(i) : i < n ? i : 0];
    prefetch.reset(key_cache, value_cache, next_tokens, next_n, token_lines, steps_per_tile);

    for (int64_t h = 0; h < heads; ++h)
      for (int64_t j = 0; j < rows; ++j)
        std::fill_n(visible_count + h * per_head + j * group, group, static_cast<int32_t>(row_visible[j]));

    // f(rows) with the lanes' rows of head h in `cache` (the first `count` read; lanes past the tile point at
    // its first row: scored, then masked, never accumulated), staged into `tile` on the runtime head-dim path.
    auto with_rows = [&](const T* cache, int64_t h, size_t count, float* tile, auto&& f) {
      if constexpr (kStaged) {
        stage(cache, lane_tokens, count, h, tile);
        const float* rows_of_tile[kLanes];
        for (size_t i = 0; i < kLanes; ++i) rows_of_tile[i] = tile + (i < n ? i : 0) * Dp;
        f(rows_of_tile);
      } else {
        const T* rows_of_tile[kLanes];
        for (size_t i = 0; i < kLanes; ++i) rows_of_tile[i] = cache + lane_tokens[i] + h * p.head_dim;
        f(rows_of_tile);
      }
    };
    const auto step = [&] { prefetch.step(); };
    // Scores and the online-softmax update of every head, then the V accumulations, kR vectors per pass over
    // the tile: the softmax of one head (a chain of dependent operations its V pass waits for) overlaps the
    // K pass of the next.
    for (int64_t h = 0; h < heads; ++h) {
      with_rows(key_cache, h, n, k_tile, [&](const auto* const* k_rows) {
        ForEachBlock<kR>(h * per_head, (h + 1) * per_head, visible_count, [&](auto block, int64_t r, size_t) {
          constexpr size_t kB = decltype(block)::value;
          VF s[kB];
          ScoreTile<kB, kChunks>(q + r * Dp, Dp, k_rows, chunks, row_sums, s, step);
          SoftmaxUpdate(s, visible_count + r, m + r, l_lanes + r * kLanes, w + r * kLanes, o + r * Dp, Dp);
        });
      });
    }
    for (int64_t h = 0; h < heads; ++h) {
      with_rows(value_cache, h, v_count, v_tile, [&](const auto* const* v_rows) {
        ForEachBlock<kR>(h * per_head, (h + 1) * per_head, visible_count, [&](auto block, int64_t r, size_t count) {
          constexpr size_t kB = decltype(block)::value;
          AccumulateV<kB, kChunks>(o + r * Dp, Dp, w + r * kLanes, v_rows, count, chunks, step);
        });
      });
    }
    prefetch.finish();
  }

  const DF df;
  for (int64_t r = 0; r < R; ++r) l[r] = hn::GetLane(hn::SumOfLanes(df, hn::Load(df, l_lanes + r * kLanes)));
  if (it.partial < 0) {
    // The item saw its rows' whole visible range (at least position 0), so l > 0.
    for (int64_t r = 0; r < R; ++r)
      StoreRow(o + r * Dp, D, 1.0f / l[r], element_ptr<T>(p.out, p.out_strides, vector_index(p, it, r)));
    return;
  }
  float* part = partials + it.partial;
  for (int64_t r = 0; r < R; ++r) std::copy(o + r * Dp, o + r * Dp + D, part + r * D);
  std::copy(m, m + R, part + R * D);
  std::copy(l, l + R, part + R * D + R);
}

template <class T>
void RunItemTyped(const KernelParams& p, const WorkItem& it, float* partials) {
  // Head dims 64/80/96/128/256 get register-resident rows on 512-bit targets; others take the runtime loop
  // (so does the one-lane fallback target, where a "vector" is a float).
#if HWY_TARGET == HWY_SCALAR
  return RunItemT<T, 0>(p, it, partials);
#endif
  if (static_cast<size_t>(p.head_dim) % kLanes != 0) return RunItemT<T, 0>(p, it, partials);
  switch (static_cast<size_t>(p.head_dim) / kLanes) {
    case 4: return RunItemT<T, 4>(p, it, partials);
    case 5: return RunItemT<T, 5>(p, it, partials);
    case 6: return RunItemT<T, 6>(p, it, partials);
    case 8: return RunItemT<T, 8>(p, it, partials);
    case 16: return RunItemT<T, 16>(p, it, partials);
    default: return RunItemT<T, 0>(p, it, partials);
  }
}

#ifdef PAGEDATTN_CPU_KERNEL_F32
void RunItem(const KernelParams& p, const WorkItem& it, float* partials) { RunItemTyped<float>(p, it, partials); }
#else
// f32 items never come here: run_work_item sends them to attention_kernel_f32.cpp.
void RunItem(const KernelParams& p, const WorkItem& it, float* partials) {
  if (p.dtype == DType::f16) return RunItemTyped<f16>(p, it, partials);
  return RunItemTyped<bf16>(p, it, partials);
}

// Log-sum-exp merge (log2 domain): out = sum_i 2^(m_i - M) o_i / sum_i 2^(m_i - M) l_i with M = max_i m_i.
template <class T>
void MergeT(const KernelParams& p, const SplitGroup& g, const float* partials) {
  const WorkItem shape{.seq = g.seq, .head_begin = g.head_begin, .head_end = g.head_end, .row_begin = g.row_begin,
                       .row_end = g.row_end};
  const int64_t R = shape.num_vectors(p.group()), D = p.head_dim;
  float* acc = ScratchCarver(ScratchCarver::bytes(static_cast<size_t>(D), 4)).take<float>(static_cast<size_t>(D));
  for (int64_t r = 0; r < R; ++r) {
    float max_m = kNegInf;
    for (int32_t i = 0; i < g.num_splits; ++i) max_m = std::max(max_m, partials[g.first_partial + i * g.slot_floats + R * D + r]);
    std::fill(acc, acc + D, 0.0f);
    float denom = 0.0f;
    for (int32_t i = 0; i < g.num_splits; ++i) {
      const float* part = partials + g.first_partial + i * g.slot_floats;
      const float m_i = part[R * D + r];
      if (m_i == kNegInf) continue;  // this split saw nothing of this row (causal)
      const float weight = std::exp2(m_i - max_m);
      denom += weight * part[R * D + R + r];
      AxpyRow(weight, part + r * D, static_cast<size_t>(D), acc);
    }
    StoreRow(acc, static_cast<size_t>(D), 1.0f / denom, element_ptr<T>(p.out, p.out_strides, vector_index(p, shape, r)));
  }
}

void MergeSplitGroup(const KernelParams& p, const SplitGroup& g, const float* partials) {
  switch (p.dtype) {
    case DType::f16: return MergeT<f16>(p, g, partials);
    case DType::bf16: return MergeT<bf16>(p, g, partials);
    default: return MergeT<float>(p, g, partials);
  }
}
#endif  // PAGEDATTN_CPU_KERNEL_F32

}  // namespace pagedattn::cpu::PAGEDATTN_CPU_KERNEL_NS::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // include guard toggled per target
