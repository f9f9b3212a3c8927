// GGUF files: a memory-mapped reader (versions 2 and 3) and dequantization of ggml tensor types to f32.
//
// Layout of a GGUF file (all little-endian):
//   magic "GGUF" | version u32 | tensor_count u64 | kv_count u64
//   kv_count x (key: string, value_type u32, value)       string = u64 length + bytes, arrays nest
//   tensor_count x (name: string, n_dims u32, dims u64[n_dims] (dims[0] varies fastest), type u32, offset u64)
//   padding to `general.alignment` (default 32) | tensor data, each tensor at data_start + offset
//
// Every length, count, offset and size is checked against the file before it is used: a malformed file
// throws pagedattn::Error naming the field and its byte offset, never reads out of bounds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "pagedattn/tensor.h"

namespace pagedattn {

enum class GgufValueType : uint32_t {
  u8 = 0,
  i8 = 1,
  u16 = 2,
  i16 = 3,
  u32 = 4,
  i32 = 5,
  f32 = 6,
  boolean = 7,
  string = 8,
  array = 9,
  u64 = 10,
  i64 = 11,
  f64 = 12,
};
std::string_view gguf_value_type_name(GgufValueType type);

// One metadata value. Arrays hold their items as values of `element_type` (arrays may nest).
struct GgufValue {
  GgufValueType type = GgufValueType::u8;
  GgufValueType element_type = GgufValueType::u8;  // arrays only
  std::variant<uint64_t, int64_t, double, bool, std::string, std::vector<GgufValue>> data;

  bool is_integer() const;  // u8..u64 and i8..i64
  bool is_float() const { return type == GgufValueType::f32 || type == GgufValueType::f64; }
};

// ggml tensor types (the numbering of ggml.h). Types the reader knows the block layout of are listed;
// dequantize() decodes those whose traits say can_dequantize.
enum class GgmlType : uint32_t {
  f32 = 0,
  f16 = 1,
  q4_0 = 2,
  q4_1 = 3,
  q5_0 = 6,
  q5_1 = 7,
  q8_0 = 8,
  q8_1 = 9,
  q2_k = 10,
  q3_k = 11,
  q4_k = 12,
  q5_k = 13,
  q6_k = 14,
  q8_k = 15,
  i8 = 24,
  i16 = 25,
  i32 = 26,
  i64 = 27,
  f64 = 28,
  bf16 = 30,
};

struct GgmlTypeTraits {
  std::string_view name;   // "Q4_1"
  int64_t block_size = 0;  // elements per block
  int64_t type_size = 0;   // bytes per block
  bool can_dequantize = false;
};
// Throws for a type id the reader does not know.
const GgmlTypeTraits& ggml_type_traits(GgmlType type);
bool ggml_type_known(uint32_t type_id);

// Bytes that `n` elements of `type` occupy (n must be a multiple of the block size).
int64_t ggml_row_bytes(GgmlType type, int64_t n);

// Decodes `n` elements (a multiple of the block size) of `type` from `src` into `dst` (f32), with the
// arithmetic of ggml's reference dequantizers (and of the gguf Python package's). Throws for types it
// cannot decode.
void dequantize(GgmlType type, const void* src, float* dst, int64_t n);

struct GgufTensorInfo {
  std::string name;
  GgmlType type = GgmlType::f32;
  std::vector<int64_t> dims;  // GGUF order: dims[0] varies fastest (ggml's ne[])
  uint64_t offset = 0;        // from the start of the data section
  int64_t num_elements = 0;
  int64_t num_bytes = 0;
  // dims reversed: the row-major (torch) shape, e.g. a [576 in, 192 out] matrix is {192, 576}.
  std::vector<int64_t> shape() const { return {dims.rbegin(), dims.rend()}; }
};

class GgufFile {
 public:
  // Maps and parses `path`. Throws pagedattn::Error for a missing or malformed file.
  static GgufFile open(const std::string& path);

  GgufFile(GgufFile&&) noexcept;
  GgufFile& operator=(GgufFile&&) noexcept;
  ~GgufFile();

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // byte offset of the data section in the file

  // Metadata, in file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return metadata_; }
  const GgufValue* find(std::string_view key) const;  // nullptr when absent
  bool contains(std::string_view key) const { return find(key) != nullptr; }
  // Typed getters: throw naming the key when it is absent or of another type (integers of any width are
  // accepted where they fit; f32 and f64 both read as floating point).
  uint64_t get_uint(std::string_view key) const;
  int64_t get_int(std::string_view key) const;
  double get_float(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  const std::string& get_string(std::string_view key) const;
  std::vector<std::string> get_string_array(std::string_view key) const;
  std::vector<int64_t> get_int_array(std::string_view key) const;
  // With a default when the key is absent (still throws when present with another type).
  uint64_t get_uint(std::string_view key, uint64_t fallback) const;
  double get_float(std::string_view key, double fallback) const;
  bool get_bool(std::string_view key, bool fallback) const;
  std::string get_string(std::string_view key, std::string_view fallback) const;

  // Tensors, in file order.
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;  // nullptr when absent
  const GgufTensorInfo& tensor(std::string_view name) const;       // throws when absent
  // The tensor's raw bytes inside the mapping (valid while this GgufFile lives).
  std::span<const std::byte> tensor_bytes(const GgufTensorInfo& info) const;
  // The tensor dequantized into a new f32 tensor of shape info.shape().
  Tensor tensor_f32(const GgufTensorInfo& info) const;
  Tensor tensor_f32(std::string_view name) const { return tensor_f32(tensor(name)); }

 private:
  struct Mapping;
  GgufFile() = default;
  void parse();

  std::string path_;
  std::unique_ptr<Mapping> mapping_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<GgufTensorInfo> tensors_;
};

}  // namespace pagedattn
