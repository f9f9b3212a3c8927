// The ggml tensor types: block layouts and the reference dequantizers (f32 results bit-equal to ggml's
// dequantize_row_* and to the gguf Python package's dequantize, which compute in the same order).
#include <array>
#include <cstring>

#include "core/check.h"
#include "pagedattn/gguf.h"

namespace pagedattn {
namespace {

constexpr int64_t kQK = 256;  // elements per super-block of the K-quants

struct TypeEntry {
  GgmlType type;
  GgmlTypeTraits traits;
};

// Sizes as in ggml.c's type_traits; can_dequantize marks the ones decoded below.
constexpr std::array<TypeEntry, 20> kTypes{{
    {GgmlType::f32, {"F32", 1, 4, true}},
    {GgmlType::f16, {"F16", 1, 2, true}},
    {GgmlType::q4_0, {"Q4_0", 32, 2 + 16, true}},
    {GgmlType::q4_1, {"Q4_1", 32, 2 + 2 + 16, true}},
    {GgmlType::q5_0, {"Q5_0", 32, 2 + 4 + 16, true}},
    {GgmlType::q5_1, {"Q5_1", 32, 2 + 2 + 4 + 16, true}},
    {GgmlType::q8_0, {"Q8_0", 32, 2 + 32, true}},
    {GgmlType::q8_1, {"Q8_1", 32, 4 + 4 + 32, false}},
    {GgmlType::q2_k, {"Q2_K", kQK, 2 + 2 + kQK / 16 + kQK / 4, false}},
    {GgmlType::q3_k, {"Q3_K", kQK, 2 + kQK / 4 + kQK / 8 + 12, false}},
    {GgmlType::q4_k, {"Q4_K", kQK, 2 + 2 + 12 + kQK / 2, true}},
    {GgmlType::q5_k, {"Q5_K", kQK, 2 + 2 + 12 + kQK / 8 + kQK / 2, true}},
    {GgmlType::q6_k, {"Q6_K", kQK, kQK / 2 + kQK / 4 + kQK / 16 + 2, true}},
    {GgmlType::q8_k, {"Q8_K", kQK, 4 + kQK + kQK / 8, false}},
    {GgmlType::i8, {"I8", 1, 1, false}},
    {GgmlType::i16, {"I16", 1, 2, false}},
    {GgmlType::i32, {"I32", 1, 4, false}},
    {GgmlType::i64, {"I64", 1, 8, false}},
    {GgmlType::f64, {"F64", 1, 8, false}},
    {GgmlType::bf16, {"BF16", 1, 2, true}},
}};

const TypeEntry* find_type(uint32_t id) {
  for (const TypeEntry& e : kTypes) {
    if (static_cast<uint32_t>(e.type) == id) return &e;
  }
  return nullptr;
}

float load_f16(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return f16_bits_to_f32(bits);
}

// Q4_0/Q4_1/Q5_0/Q5_1: 32 elements, low nibbles are elements 0..15, high nibbles 16..31; the Q5 types keep
// the fifth bit of element j in bit j of qh. With a minimum (the _1 types) x = d * q + m, else x = d * (q - offset).
template <bool kHasMin, bool kFiveBits>
void dequantize_q4q5(const uint8_t* block, float* y) {
  const float d = load_f16(block);
  const float m = kHasMin ? load_f16(block + 2) : 0.0f;
  const uint8_t* p = block + (kHasMin ? 4 : 2);
  uint32_t qh = 0;
  if constexpr (kFiveBits) {
    std::memcpy(&qh, p, 4);
    p += 4;
  }
  constexpr int kOffset = kHasMin ? 0 : (kFiveBits ? 16 : 8);
  for (int j = 0; j < 16; ++j) {
    int lo = p[j] & 0x0F;
    int hi = p[j] >> 4;
    if constexpr (kFiveBits) {
      lo |= static_cast<int>((qh >> j) & 1u) << 4;
      hi |= static_cast<int>((qh >> (j + 16)) & 1u) << 4;
    }
    if constexpr (kHasMin) {
      y[j] = d * static_cast<float>(lo) + m;
      y[j + 16] = d * static_cast<float>(hi) + m;
    } else {
      y[j] = d * static_cast<float>(lo - kOffset);
      y[j + 16] = d * static_cast<float>(hi - kOffset);
    }
  }
}

void dequantize_q8_0(const uint8_t* block, float* y) {
  const float d = load_f16(block);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(static_cast<int8_t>(block[2 + j])) * d;
}

// The 6-bit scale and minimum of sub-block j of a Q4_K/Q5_K super-block (12 packed bytes).
void scale_min_k4(int j, const uint8_t* q, int& scale, int& min) {
  if (j < 4) {
    scale = q[j] & 63;
    min = q[j + 4] & 63;
  } else {
    scale = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
    min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// Q4_K / Q5_K: 8 sub-blocks of 32 with their own scale and minimum; x = (d * scale) * q - dmin * min.
template <bool kFiveBits>
void dequantize_q4q5_k(const uint8_t* block, float* y) {
  const float d = load_f16(block);
  const float dmin = load_f16(block + 2);
  const uint8_t* scales = block + 4;
  const uint8_t* qh = block + 16;
  const uint8_t* ql = block + 16 + (kFiveBits ? kQK / 8 : 0);
  for (int j = 0; j < 4; ++j) {  // 64 elements share one byte of ql per pair of elements
    for (int half = 0; half < 2; ++half) {
      int sc = 0;
      int mn = 0;
      scale_min_k4(2 * j + half, scales, sc, mn);
      const float d1 = d * static_cast<float>(sc);
      const float m1 = dmin * static_cast<float>(mn);
      for (int l = 0; l < 32; ++l) {
        int q = half == 0 ? (ql[l] & 0x0F) : (ql[l] >> 4);
        if constexpr (kFiveBits) q += ((qh[l] >> (2 * j + half)) & 1) ? 16 : 0;
        *y++ = d1 * static_cast<float>(q) - m1;
      }
    }
    ql += 32;
  }
}

void dequantize_q6_k(const uint8_t* block, float* y) {
  const uint8_t* ql = block;
  const uint8_t* qh = block + kQK / 2;
  const auto* sc = reinterpret_cast<const int8_t*>(block + kQK / 2 + kQK / 4);
  const float d = load_f16(block + kQK / 2 + kQK / 4 + kQK / 16);
  for (int n = 0; n < kQK; n += 128) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
      y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
      y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
      y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

using BlockFn = void (*)(const uint8_t*, float*);

BlockFn block_decoder(GgmlType type) {
  switch (type) {
    case GgmlType::q4_0:
      return dequantize_q4q5<false, false>;
    case GgmlType::q4_1:
      return dequantize_q4q5<true, false>;
    case GgmlType::q5_0:
      return dequantize_q4q5<false, true>;
    case GgmlType::q5_1:
      return dequantize_q4q5<true, true>;
    case GgmlType::q8_0:
      return dequantize_q8_0;
    case GgmlType::q4_k:
      return dequantize_q4q5_k<false>;
    case GgmlType::q5_k:
      return dequantize_q4q5_k<true>;
    case GgmlType::q6_k:
      return dequantize_q6_k;
    default:
      return nullptr;
  }
}

}  // namespace

std::string_view gguf_value_type_name(GgufValueType type) {
  static constexpr std::array<std::string_view, 13> kNames{"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                                           "bool", "string", "array", "u64", "i64", "f64"};
  const auto i = static_cast<uint32_t>(type);
  return i < kNames.size() ? kNames[i] : std::string_view("unknown");
}

bool ggml_type_known(uint32_t type_id) { return find_type(type_id) != nullptr; }

const GgmlTypeTraits& ggml_type_traits(GgmlType type) {
  const TypeEntry* e = find_type(static_cast<uint32_t>(type));
  PA_CHECK_TYPE(e != nullptr, "unknown ggml tensor type {}", static_cast<uint32_t>(type));
  return e->traits;
}

int64_t ggml_row_bytes(GgmlType type, int64_t n) {
  const GgmlTypeTraits& t = ggml_type_traits(type);
  PA_CHECK_ARG(n >= 0 && n % t.block_size == 0, "{}: {} elements is not a multiple of the block size {}", t.name, n,
               t.block_size);
  return n / t.block_size * t.type_size;
}

void dequantize(GgmlType type, const void* src, float* dst, int64_t n) {
  const GgmlTypeTraits& t = ggml_type_traits(type);
  PA_CHECK_TYPE(t.can_dequantize, "dequantize: tensor type {} is not supported", t.name);
  PA_CHECK_ARG(n >= 0 && n % t.block_size == 0, "dequantize: {} elements of {}: expected a multiple of {}", n, t.name,
               t.block_size);
  const auto* p = static_cast<const uint8_t*>(src);
  switch (type) {
    case GgmlType::f32:
      std::memcpy(dst, p, static_cast<size_t>(n) * 4);
      return;
    case GgmlType::f16:
      for (int64_t i = 0; i < n; ++i) dst[i] = load_f16(p + 2 * i);
      return;
    case GgmlType::bf16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t bits;
        std::memcpy(&bits, p + 2 * i, 2);
        dst[i] = bf16_bits_to_f32(bits);
      }
      return;
    default:
      break;
  }
  const BlockFn decode = block_decoder(type);
  const int64_t blocks = n / t.block_size;
#pragma omp parallel for schedule(static) if (blocks > 4096)
  for (int64_t b = 0; b < blocks; ++b) decode(p + b * t.type_size, dst + b * t.block_size);
}

}  // namespace pagedattn
