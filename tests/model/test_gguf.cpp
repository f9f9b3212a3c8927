// The GGUF reader on small files written by the test: every metadata value type, the tensor table,
// alignment, dequantization of hand-built blocks, and one test per kind of malformed file, each asserting
// that the error names the field and its byte offset.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>

#include "gguf_builder.h"
#include "pagedattn/dtype.h"
#include "pagedattn/error.h"
#include "pagedattn/gguf.h"

using namespace pagedattn;
using pagedattn::testing::GgufBuilder;

namespace {

constexpr uint32_t kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7, kString = 8,
                   kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12;
constexpr uint32_t kTypeF32 = 0, kTypeQ8_0 = 8;

// A valid file: every value type, alignment 64, an F32 [2 x 4] and a Q8_0 [32] tensor.
GgufBuilder valid_file() {
  GgufBuilder b;
  b.header(2, 17);
  b.key("general.alignment", kU32).put<uint32_t>(64);
  b.key("v.u8", kU8).put<uint8_t>(200);
  b.key("v.i8", kI8).put<int8_t>(-100);
  b.key("v.u16", kU16).put<uint16_t>(60000);
  b.key("v.i16", kI16).put<int16_t>(-30000);
  b.key("v.u32", kU32).put<uint32_t>(4000000000u);
  b.key("v.i32", kI32).put<int32_t>(-2000000000);
  b.key("v.f32", kF32).put<float>(1.5f);
  b.key("v.bool", kBool).put<uint8_t>(1);
  b.key("v.string", kString).str("héllo");
  b.key("v.u64", kU64).put<uint64_t>(1ull << 40);
  b.key("v.i64", kI64).put<int64_t>(-(1ll << 40));
  b.key("v.f64", kF64).put<double>(-0.25);
  b.key("v.ints", kArray).put<uint32_t>(kI32).put<uint64_t>(3).put<int32_t>(1).put<int32_t>(-2).put<int32_t>(3);
  b.key("v.strings", kArray).put<uint32_t>(kString).put<uint64_t>(2).str("a").str("bc");
  b.key("v.empty", kArray).put<uint32_t>(kF32).put<uint64_t>(0);
  b.key("v.nested", kArray).put<uint32_t>(kArray).put<uint64_t>(2);
  b.put<uint32_t>(kU8).put<uint64_t>(1).put<uint8_t>(7);
  b.put<uint32_t>(kU8).put<uint64_t>(0);
  b.tensor("w", {4, 2}, kTypeF32, 0);
  b.tensor("q", {32}, kTypeQ8_0, 64);
  b.pad_to(64);
  for (int i = 0; i < 8; ++i) b.put<float>(static_cast<float>(i) - 3.5f);
  b.pad_to(64);
  b.put<uint16_t>(f32_to_f16_bits(0.5f));
  for (int i = 0; i < 32; ++i) b.put<int8_t>(static_cast<int8_t>(i - 16));
  return b;
}

std::string open_error(const std::string& path, ErrorKind kind = ErrorKind::invalid_argument) {
  try {
    GgufFile::open(path);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "GgufFile::open accepted " << path;
  return {};
}

std::string open_error(const GgufBuilder& b, const std::string& name) { return open_error(b.write(name)); }

// The header plus one key whose value bytes the caller writes.
GgufBuilder one_key(std::string_view key, uint32_t type) {
  GgufBuilder b;
  b.header(0, 1).key(key, type);
  return b;
}

}  // namespace

TEST(Gguf, ReadsEveryValueType) {
  const GgufFile f = GgufFile::open(valid_file().write("valid.gguf"));
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.metadata().size(), 17u);
  EXPECT_EQ(f.get_uint("v.u8"), 200u);
  EXPECT_EQ(f.get_int("v.i8"), -100);
  EXPECT_EQ(f.get_uint("v.u16"), 60000u);
  EXPECT_EQ(f.get_int("v.i16"), -30000);
  EXPECT_EQ(f.get_uint("v.u32"), 4000000000u);
  EXPECT_EQ(f.get_int("v.i32"), -2000000000);
  EXPECT_EQ(f.get_float("v.f32"), 1.5);
  EXPECT_TRUE(f.get_bool("v.bool"));
  EXPECT_EQ(f.get_string("v.string"), "héllo");
  EXPECT_EQ(f.get_uint("v.u64"), 1ull << 40);
  EXPECT_EQ(f.get_int("v.i64"), -(1ll << 40));
  EXPECT_EQ(f.get_float("v.f64"), -0.25);
  EXPECT_EQ(f.get_int_array("v.ints"), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(f.get_string_array("v.strings"), (std::vector<std::string>{"a", "bc"}));
  EXPECT_EQ(f.find("v.empty")->element_type, GgufValueType::f32);
  EXPECT_TRUE(std::get<std::vector<GgufValue>>(f.find("v.empty")->data).empty());
  const auto& nested = std::get<std::vector<GgufValue>>(f.find("v.nested")->data);
  ASSERT_EQ(nested.size(), 2u);
  EXPECT_EQ(std::get<uint64_t>(std::get<std::vector<GgufValue>>(nested[0].data).at(0).data), 7u);
  EXPECT_EQ(f.find("v.missing"), nullptr);
  EXPECT_EQ(f.get_uint("v.missing", 9), 9u);
  EXPECT_EQ(f.get_string("v.missing", "dflt"), "dflt");
}

TEST(Gguf, ReadsTensorTableWithAlignment) {
  const GgufFile f = GgufFile::open(valid_file().write("valid.gguf"));
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  ASSERT_EQ(f.tensors().size(), 2u);
  const GgufTensorInfo& w = f.tensor("w");
  EXPECT_EQ(w.type, GgmlType::f32);
  EXPECT_EQ(w.shape(), (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(w.num_bytes, 32);
  const Tensor wt = f.tensor_f32("w");
  for (int i = 0; i < 8; ++i) EXPECT_EQ(wt.data_as<float>()[i], static_cast<float>(i) - 3.5f);
  const Tensor qt = f.tensor_f32("q");
  EXPECT_EQ(f.tensor("q").offset, 64u);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(qt.data_as<float>()[i], 0.5f * static_cast<float>(i - 16));
}

TEST(Gguf, AcceptsVersion2AndDefaultAlignment) {
  GgufBuilder b;
  b.header(1, 0, 2).tensor("t", {1}, kTypeF32, 0).pad_to(32).put<float>(2.0f);
  const GgufFile f = GgufFile::open(b.write("v2.gguf"));
  EXPECT_EQ(f.version(), 2u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.data_offset(), 64u);  // 24-byte header + 37-byte tensor info, rounded up to 32
  EXPECT_EQ(f.tensor_f32("t").data_as<float>()[0], 2.0f);
}

TEST(Gguf, TypedGettersNameKeyAndTypes) {
  const GgufFile f = GgufFile::open(valid_file().write("valid.gguf"));
  EXPECT_THROW(
      {
        try {
          (void)f.get_string("v.u32");
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("metadata 'v.u32' has type u32: expected string"), std::string::npos)
              << e.what();
          throw;
        }
      },
      Error);
  EXPECT_THROW((void)f.get_uint("v.nope"), Error);
  EXPECT_THROW((void)f.get_uint("v.i8"), Error);  // negative
  EXPECT_THROW((void)f.tensor("nope"), Error);
}

// --- dequantization of hand-built blocks --------------------------------------------------------------

TEST(Dequantize, Q4AndQ5BlocksDecodeNibblesAndHighBits) {
  // Element j < 16 is the low nibble of byte j, element j + 16 its high nibble; qh bit j is the 5th bit.
  std::vector<uint8_t> q4_0{0, 0};
  const uint16_t d = f32_to_f16_bits(0.5f);
  const uint16_t m = f32_to_f16_bits(-1.0f);
  std::memcpy(q4_0.data(), &d, 2);
  for (int j = 0; j < 16; ++j) q4_0.push_back(static_cast<uint8_t>(j | ((15 - j) << 4)));
  std::vector<float> y(32);
  dequantize(GgmlType::q4_0, q4_0.data(), y.data(), 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.5f * static_cast<float>(j - 8));
    EXPECT_EQ(y[j + 16], 0.5f * static_cast<float>(15 - j - 8));
  }

  std::vector<uint8_t> q4_1(4);
  std::memcpy(q4_1.data(), &d, 2);
  std::memcpy(q4_1.data() + 2, &m, 2);
  q4_1.insert(q4_1.end(), q4_0.begin() + 2, q4_0.end());
  dequantize(GgmlType::q4_1, q4_1.data(), y.data(), 32);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(y[j], 0.5f * static_cast<float>(j) - 1.0f);

  const uint32_t qh = 0x80000001u;  // element 0 and element 31 get bit 4
  std::vector<uint8_t> q5_0(2 + 4);
  std::memcpy(q5_0.data(), &d, 2);
  std::memcpy(q5_0.data() + 2, &qh, 4);
  q5_0.insert(q5_0.end(), q4_0.begin() + 2, q4_0.end());
  dequantize(GgmlType::q5_0, q5_0.data(), y.data(), 32);
  EXPECT_EQ(y[0], 0.5f * static_cast<float>((0 | 16) - 16));
  EXPECT_EQ(y[1], 0.5f * static_cast<float>(1 - 16));
  EXPECT_EQ(y[31], 0.5f * static_cast<float>((0 | 16) - 16));  // high nibble of byte 15 is 0
  EXPECT_EQ(y[30], 0.5f * static_cast<float>(1 - 16));

  std::vector<uint8_t> q5_1(4 + 4);
  std::memcpy(q5_1.data(), &d, 2);
  std::memcpy(q5_1.data() + 2, &m, 2);
  std::memcpy(q5_1.data() + 4, &qh, 4);
  q5_1.insert(q5_1.end(), q4_0.begin() + 2, q4_0.end());
  dequantize(GgmlType::q5_1, q5_1.data(), y.data(), 32);
  EXPECT_EQ(y[0], 0.5f * 16.0f - 1.0f);
  EXPECT_EQ(y[5], 0.5f * 5.0f - 1.0f);
}

TEST(Dequantize, FloatTypesAndQ6K) {
  const std::vector<uint16_t> h{f32_to_f16_bits(1.0f), f32_to_f16_bits(-2.5f)};
  std::vector<float> y(256);
  dequantize(GgmlType::f16, h.data(), y.data(), 2);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[1], -2.5f);
  const std::vector<uint16_t> bf{f32_to_bf16_bits(3.0f), f32_to_bf16_bits(-0.5f)};
  dequantize(GgmlType::bf16, bf.data(), y.data(), 2);
  EXPECT_EQ(y[0], 3.0f);
  EXPECT_EQ(y[1], -0.5f);

  // Q6_K: ql (128) | qh (64) | scales int8 (16) | d f16. Element l (< 32) = d * scale[l / 16] * (q - 32)
  // with q = low nibble of ql[l] | bits 0-1 of qh[l] << 4.
  std::vector<uint8_t> q6(210, 0);
  q6[0] = 0x05;                                // element 0: low 4 bits 5
  q6[128] = 0x02;                              // element 0: high bits 2 -> q = 5 | 32 = 37
  q6[192] = static_cast<uint8_t>(int8_t{-3});  // scale of elements 0..15
  const uint16_t d = f32_to_f16_bits(0.25f);
  std::memcpy(q6.data() + 208, &d, 2);
  dequantize(GgmlType::q6_k, q6.data(), y.data(), 256);
  EXPECT_EQ(y[0], 0.25f * -3.0f * 5.0f);
  EXPECT_EQ(y[1], 0.25f * -3.0f * -32.0f);
  EXPECT_EQ(y[16], 0.0f);  // scale[1] = 0
}

TEST(Dequantize, RejectsUnsupportedTypesAndPartialBlocks) {
  std::vector<uint8_t> buf(512);
  std::vector<float> y(256);
  EXPECT_THROW(dequantize(GgmlType::q2_k, buf.data(), y.data(), 256), Error);
  EXPECT_THROW(dequantize(GgmlType::q8_0, buf.data(), y.data(), 31), Error);
}

// --- malformed files -------------------------------------------------------------------------------------

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE((haystack).find(needle), std::string::npos) << "message: " << (haystack)

TEST(GgufMalformed, MissingAndEmptyFiles) {
  EXPECT_CONTAINS(open_error(::testing::TempDir() + "does-not-exist.gguf", ErrorKind::runtime), "cannot open");
  EXPECT_CONTAINS(open_error(GgufBuilder{}, "empty.gguf"),
                  "truncated: header.magic at byte 0 needs 4 bytes but the file ends at byte 0");
}

TEST(GgufMalformed, BadMagicAndVersion) {
  GgufBuilder b = valid_file();
  b.bytes[0] = 'X';
  EXPECT_CONTAINS(open_error(b, "magic.gguf"), "header.magic at byte 0 = 0x46554758: expected 0x46554747");
  for (uint32_t version : {0u, 1u, 4u}) {
    GgufBuilder v;
    v.header(0, 0, version);
    EXPECT_CONTAINS(open_error(v, "version.gguf"),
                    fmt::format("header.version at byte 4 = {}: expected 2 or 3", version));
  }
  GgufBuilder big;
  big.header(0, 0, 0x03000000u);
  EXPECT_CONTAINS(open_error(big, "bigendian.gguf"), "big-endian");
}

TEST(GgufMalformed, TruncationAtEveryByteIsAnErrorNamingAnOffset) {
  const GgufBuilder b = valid_file();
  for (size_t size = 0; size < b.bytes.size(); ++size) {
    const std::string message = open_error(b.write("truncated.gguf", size));
    ASSERT_FALSE(message.empty()) << "size " << size;
    const bool names_place =
        message.find(" at byte ") != std::string::npos || message.find("at bytes ") != std::string::npos;
    EXPECT_TRUE(names_place) << "size " << size << ": " << message;
  }
}

TEST(GgufMalformed, CountsPastTheEnd) {
  GgufBuilder tensors;
  tensors.header(1ull << 60, 0);
  EXPECT_CONTAINS(open_error(tensors, "tensor_count.gguf"), "header.tensor_count at byte 8 = 1152921504606846976");
  GgufBuilder kvs;
  kvs.header(0, 1000);
  EXPECT_CONTAINS(open_error(kvs, "kv_count.gguf"), "header.kv_count at byte 16 = 1000: more than the 0 bytes left");
  GgufBuilder key;
  key.header(0, 1).put<uint64_t>(1000).raw("abcdefghijklmnopqrst", 20);
  EXPECT_CONTAINS(open_error(key, "keylen.gguf"),
                  "metadata[0].key at byte 24: string length 1000 runs past the end of the file (20 bytes left)");
  GgufBuilder str = one_key("s", kString);
  str.put<uint64_t>(~0ull);
  EXPECT_CONTAINS(open_error(str, "strlen.gguf"),
                  "metadata[0] 's' value at byte 37: string length 18446744073709551615");
  GgufBuilder arr = one_key("a", kArray);
  arr.put<uint32_t>(kU32).put<uint64_t>(1ull << 62).put<uint32_t>(1);
  EXPECT_CONTAINS(open_error(arr, "arrlen.gguf"), "metadata[0] 'a' value count at byte 41 = 4611686018427387904");
}

TEST(GgufMalformed, UnknownTypes) {
  GgufBuilder value = one_key("k", 13);
  EXPECT_CONTAINS(open_error(value, "vtype.gguf"), "metadata[0] 'k' type at byte 33: unknown value type 13");
  GgufBuilder element = one_key("k", kArray);
  element.put<uint32_t>(77).put<uint64_t>(0);
  EXPECT_CONTAINS(open_error(element, "etype.gguf"), "element type at byte 37: unknown value type 77");
  GgufBuilder tensor;
  tensor.header(1, 0).tensor("t", {32}, 99, 0).pad_to(32).raw(std::vector<uint8_t>(64).data(), 64);
  EXPECT_CONTAINS(open_error(tensor, "ttype.gguf"), "tensor_infos[0] 't'.type at byte 45 = 99: unknown tensor type");
  GgufBuilder boolean = one_key("b", kBool);
  boolean.put<uint8_t>(2);
  EXPECT_CONTAINS(open_error(boolean, "bool.gguf"), "metadata[0] 'b' value at byte 37: bool value 2");
  GgufBuilder deep = one_key("d", kArray);
  for (int i = 0; i < 12; ++i) deep.put<uint32_t>(kArray).put<uint64_t>(1);
  EXPECT_CONTAINS(open_error(deep, "deep.gguf"), "arrays nested deeper than 8");
}

TEST(GgufMalformed, BadDims) {
  auto with_tensor = [](std::vector<uint64_t> dims, uint32_t type) {
    GgufBuilder b;
    b.header(1, 0).tensor("t", std::move(dims), type, 0).pad_to(32).raw(std::vector<uint8_t>(64).data(), 64);
    return b;
  };
  EXPECT_CONTAINS(open_error(with_tensor({1, 1, 1, 1, 1}, kTypeF32), "ndims.gguf"),
                  "tensor_infos[0] 't'.n_dims at byte 33 = 5: expected at most 4");
  EXPECT_CONTAINS(open_error(with_tensor({1ull << 63}, kTypeF32), "negdim.gguf"),
                  "tensor_infos[0] 't'.dims[0] at byte 37 = 9223372036854775808: the element count overflows int64");
  EXPECT_CONTAINS(open_error(with_tensor({1ull << 32, 1ull << 32}, kTypeF32), "overflow.gguf"),
                  "'t'.dims[1] at byte 45 = 4294967296: the element count overflows int64");
  EXPECT_CONTAINS(open_error(with_tensor({48}, kTypeQ8_0), "block.gguf"),
                  "tensor_infos[0] 't'.dims[0] = 48: expected a multiple of the Q8_0 block size 32");
}

TEST(GgufMalformed, OffsetsAndSizesPastTheEnd) {
  GgufBuilder misaligned;
  misaligned.header(1, 0).tensor("t", {1}, kTypeF32, 4).pad_to(32).put<float>(0).put<float>(0);
  EXPECT_CONTAINS(open_error(misaligned, "misaligned.gguf"),
                  "tensor_infos[0] 't'.offset at byte 49 = 4: expected a multiple of the alignment 32");
  GgufBuilder past;
  past.header(1, 0).tensor("t", {16}, kTypeF32, 0).pad_to(32).put<float>(0);
  EXPECT_CONTAINS(open_error(past, "past.gguf"),
                  "tensor_infos[0] 't': data at bytes 64..128 runs past the end of the file (68 bytes; data section "
                  "starts at byte 64)");
  GgufBuilder far;
  far.header(1, 0).tensor("t", {1}, kTypeF32, 1ull << 62).pad_to(32).put<float>(0);
  EXPECT_CONTAINS(open_error(far, "far.gguf"), "runs past the end of the file");
}

TEST(GgufMalformed, BadAlignmentAndDuplicates) {
  GgufBuilder npot = one_key("general.alignment", kU32);
  npot.put<uint32_t>(48);
  EXPECT_CONTAINS(open_error(npot, "npot.gguf"), "general.alignment = 48: expected a power of two");
  GgufBuilder wrong = one_key("general.alignment", kU64);
  wrong.put<uint64_t>(32);
  EXPECT_CONTAINS(open_error(wrong, "aligntype.gguf"), "general.alignment has type u64: expected u32");
  GgufBuilder keys;
  keys.header(0, 2).key("k", kU8).put<uint8_t>(1).key("k", kU8).put<uint8_t>(2);
  EXPECT_CONTAINS(open_error(keys, "dupkey.gguf"), "metadata[1].key at byte 38: duplicate key 'k'");
  GgufBuilder names;
  names.header(2, 0).tensor("t", {1}, kTypeF32, 0).tensor("t", {1}, kTypeF32, 32).pad_to(32);
  names.put<float>(0);
  EXPECT_CONTAINS(open_error(names, "dupname.gguf"), "tensor_infos[1].name at byte 57: duplicate tensor name 't'");
}
