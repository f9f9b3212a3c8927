// GGUF parsing. Every read goes through Cursor, which checks the bytes exist and names the field being
// read and its offset when they do not; counts are checked against what the rest of the file can hold
// before anything is allocated for them.
#include "pagedattn/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <unordered_set>

#include "core/check.h"

namespace pagedattn {

struct GgufFile::Mapping {
  const uint8_t* data = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (data != nullptr) munmap(const_cast<uint8_t*>(data), size);
  }
};

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr int kMaxArrayDepth = 8;        // deeper nesting than any real file: refuse rather than recurse
constexpr int kMaxDims = 4;              // GGML_MAX_DIMS

[[noreturn]] void malformed(const std::string& path, const std::string& what) {
  detail::fail(ErrorKind::invalid_argument, fmt::format("gguf: {}: {}", path, what));
}

class Cursor {
 public:
  Cursor(const std::string& path, const uint8_t* data, size_t size) : path_(path), data_(data), size_(size) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  // Throws naming `field` unless n more bytes exist.
  void need(uint64_t n, const std::string& field) const {
    if (n > remaining()) {
      malformed(path_, fmt::format("truncated: {} at byte {} needs {} bytes but the file ends at byte {}", field, pos_,
                                   n, size_));
    }
  }

  template <class T>
  T read(const std::string& field) {
    need(sizeof(T), field);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(const std::string& field) {
    const size_t at = pos_;
    const auto len = read<uint64_t>(field + " length");
    if (len > remaining()) {
      malformed(path_, fmt::format("{} at byte {}: string length {} runs past the end of the file ({} bytes left)",
                                   field, at, len, remaining()));
    }
    std::string s(reinterpret_cast<const char*>(data_ + pos_), len);
    pos_ += len;
    return s;
  }

  // A count of items each taking at least min_item_bytes must fit in the rest of the file.
  void check_count(uint64_t count, uint64_t min_item_bytes, const std::string& field, size_t at) const {
    if (count > remaining() / min_item_bytes) {
      malformed(path_, fmt::format("{} at byte {} = {}: more than the {} bytes left in the file can hold", field, at,
                                   count, remaining()));
    }
  }

  const std::string& path() const { return path_; }

 private:
  const std::string& path_;
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// The fewest bytes a value of this type takes (array: element type + count).
uint64_t min_value_bytes(GgufValueType t) {
  switch (t) {
    case GgufValueType::u8:
    case GgufValueType::i8:
    case GgufValueType::boolean:
      return 1;
    case GgufValueType::u16:
    case GgufValueType::i16:
      return 2;
    case GgufValueType::u32:
    case GgufValueType::i32:
    case GgufValueType::f32:
      return 4;
    case GgufValueType::u64:
    case GgufValueType::i64:
    case GgufValueType::f64:
    case GgufValueType::string:
      return 8;
    case GgufValueType::array:
      return 12;
  }
  return 1;
}

GgufValueType read_value_type(Cursor& in, const std::string& field) {
  const size_t at = in.pos();
  const auto raw = in.read<uint32_t>(field);
  if (raw > static_cast<uint32_t>(GgufValueType::f64)) {
    malformed(in.path(), fmt::format("{} at byte {}: unknown value type {} (expected 0..12)", field, at, raw));
  }
  return static_cast<GgufValueType>(raw);
}

GgufValue read_value(Cursor& in, GgufValueType type, const std::string& field, int depth) {
  GgufValue v;
  v.type = type;
  switch (type) {
    case GgufValueType::u8:
      v.data = uint64_t{in.read<uint8_t>(field)};
      break;
    case GgufValueType::u16:
      v.data = uint64_t{in.read<uint16_t>(field)};
      break;
    case GgufValueType::u32:
      v.data = uint64_t{in.read<uint32_t>(field)};
      break;
    case GgufValueType::u64:
      v.data = in.read<uint64_t>(field);
      break;
    case GgufValueType::i8:
      v.data = int64_t{in.read<int8_t>(field)};
      break;
    case GgufValueType::i16:
      v.data = int64_t{in.read<int16_t>(field)};
      break;
    case GgufValueType::i32:
      v.data = int64_t{in.read<int32_t>(field)};
      break;
    case GgufValueType::i64:
      v.data = in.read<int64_t>(field);
      break;
    case GgufValueType::f32:
      v.data = double{in.read<float>(field)};
      break;
    case GgufValueType::f64:
      v.data = in.read<double>(field);
      break;
    case GgufValueType::boolean: {
      const size_t at = in.pos();
      const auto b = in.read<uint8_t>(field);
      if (b > 1) malformed(in.path(), fmt::format("{} at byte {}: bool value {} (expected 0 or 1)", field, at, b));
      v.data = b == 1;
      break;
    }
    case GgufValueType::string:
      v.data = in.read_string(field);
      break;
    case GgufValueType::array: {
      if (depth >= kMaxArrayDepth) {
        malformed(in.path(),
                  fmt::format("{} at byte {}: arrays nested deeper than {}", field, in.pos(), kMaxArrayDepth));
      }
      v.element_type = read_value_type(in, field + " element type");
      const size_t at = in.pos();
      const auto count = in.read<uint64_t>(field + " count");
      in.check_count(count, min_value_bytes(v.element_type), field + " count", at);
      std::vector<GgufValue> items;
      items.reserve(count);
      for (uint64_t i = 0; i < count; ++i) {
        items.push_back(read_value(in, v.element_type, fmt::format("{}[{}]", field, i), depth + 1));
      }
      v.data = std::move(items);
      break;
    }
  }
  return v;
}

}  // namespace

bool GgufValue::is_integer() const {
  return std::holds_alternative<uint64_t>(data) || std::holds_alternative<int64_t>(data);
}

GgufFile::GgufFile(GgufFile&&) noexcept = default;
GgufFile& GgufFile::operator=(GgufFile&&) noexcept = default;
GgufFile::~GgufFile() = default;

GgufFile GgufFile::open(const std::string& path) {
  GgufFile f;
  f.path_ = path;
  f.mapping_ = std::make_unique<Mapping>();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  PA_CHECK(fd >= 0, ErrorKind::runtime, "gguf: cannot open {}: {}", path, std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    PA_CHECK(false, ErrorKind::runtime, "gguf: {} is not a regular file", path);
  }
  f.mapping_->size = static_cast<size_t>(st.st_size);
  if (f.mapping_->size > 0) {
    void* p = mmap(nullptr, f.mapping_->size, PROT_READ, MAP_PRIVATE, fd, 0);
    const int err = errno;
    ::close(fd);
    PA_CHECK(p != MAP_FAILED, ErrorKind::runtime, "gguf: cannot map {}: {}", path, std::strerror(err));
    f.mapping_->data = static_cast<const uint8_t*>(p);
  } else {
    ::close(fd);
  }
  f.parse();
  return f;
}

void GgufFile::parse() {
  static constexpr uint8_t kEmpty = 0;
  const uint8_t* base = mapping_->data != nullptr ? mapping_->data : &kEmpty;
  Cursor in(path_, base, mapping_->size);

  const auto magic = in.read<uint32_t>("header.magic");
  if (magic != kMagic) {
    malformed(path_, fmt::format("header.magic at byte 0 = 0x{:08x}: expected 0x{:08x} (\"GGUF\")", magic, kMagic));
  }
  version_ = in.read<uint32_t>("header.version");
  if (version_ != 2 && version_ != 3) {
    const bool swapped = version_ == 0x02000000u || version_ == 0x03000000u;
    malformed(path_, fmt::format("header.version at byte 4 = {}: expected 2 or 3{}", version_,
                                 swapped ? " (a big-endian file, which is not supported)" : ""));
  }
  size_t at = in.pos();
  const auto tensor_count = in.read<uint64_t>("header.tensor_count");
  // A tensor info takes at least 8 (name) + 4 (n_dims) + 4 (type) + 8 (offset) bytes.
  in.check_count(tensor_count, 24, "header.tensor_count", at);
  at = in.pos();
  const auto kv_count = in.read<uint64_t>("header.kv_count");
  in.check_count(kv_count, 8 + 4 + 1, "header.kv_count", at);

  metadata_.reserve(kv_count);
  std::unordered_set<std::string> keys;
  for (uint64_t i = 0; i < kv_count; ++i) {
    const std::string field = fmt::format("metadata[{}]", i);
    at = in.pos();
    std::string key = in.read_string(field + ".key");
    if (!keys.insert(key).second)
      malformed(path_, fmt::format("{}.key at byte {}: duplicate key '{}'", field, at, key));
    const std::string value_field = fmt::format("{} '{}'", field, key);
    const GgufValueType type = read_value_type(in, value_field + " type");
    GgufValue value = read_value(in, type, value_field + " value", 0);
    metadata_.emplace_back(std::move(key), std::move(value));
  }

  if (const GgufValue* a = find("general.alignment")) {
    if (a->type != GgufValueType::u32) {
      malformed(path_, fmt::format("general.alignment has type {}: expected u32", gguf_value_type_name(a->type)));
    }
    const uint64_t v = std::get<uint64_t>(a->data);
    if (v == 0 || (v & (v - 1)) != 0) {
      malformed(path_, fmt::format("general.alignment = {}: expected a power of two", v));
    }
    alignment_ = v;
  }

  tensors_.reserve(tensor_count);
  std::unordered_set<std::string> names;
  for (uint64_t i = 0; i < tensor_count; ++i) {
    const std::string field = fmt::format("tensor_infos[{}]", i);
    GgufTensorInfo t;
    at = in.pos();
    t.name = in.read_string(field + ".name");
    if (!names.insert(t.name).second) {
      malformed(path_, fmt::format("{}.name at byte {}: duplicate tensor name '{}'", field, at, t.name));
    }
    const std::string tfield = fmt::format("{} '{}'", field, t.name);
    at = in.pos();
    const auto n_dims = in.read<uint32_t>(tfield + ".n_dims");
    if (n_dims > kMaxDims) {
      malformed(path_, fmt::format("{}.n_dims at byte {} = {}: expected at most {}", tfield, at, n_dims, kMaxDims));
    }
    int64_t elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      at = in.pos();
      const auto dim = in.read<uint64_t>(fmt::format("{}.dims[{}]", tfield, d));
      if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          (dim != 0 && elements > std::numeric_limits<int64_t>::max() / static_cast<int64_t>(dim))) {
        malformed(path_,
                  fmt::format("{}.dims[{}] at byte {} = {}: the element count overflows int64", tfield, d, at, dim));
      }
      t.dims.push_back(static_cast<int64_t>(dim));
      elements *= static_cast<int64_t>(dim);
    }
    t.num_elements = elements;
    at = in.pos();
    const auto type = in.read<uint32_t>(tfield + ".type");
    if (!ggml_type_known(type))
      malformed(path_, fmt::format("{}.type at byte {} = {}: unknown tensor type", tfield, at, type));
    t.type = static_cast<GgmlType>(type);
    const GgmlTypeTraits& traits = ggml_type_traits(t.type);
    const int64_t row = t.dims.empty() ? 1 : t.dims[0];
    if (row % traits.block_size != 0) {
      malformed(path_, fmt::format("{}.dims[0] = {}: expected a multiple of the {} block size {}", tfield, row,
                                   traits.name, traits.block_size));
    }
    if (elements / traits.block_size > std::numeric_limits<int64_t>::max() / traits.type_size) {
      malformed(path_, fmt::format("{}: {} elements of {} overflow the byte count", tfield, elements, traits.name));
    }
    t.num_bytes = elements / traits.block_size * traits.type_size;
    at = in.pos();
    t.offset = in.read<uint64_t>(tfield + ".offset");
    if (t.offset % alignment_ != 0) {
      malformed(path_, fmt::format("{}.offset at byte {} = {}: expected a multiple of the alignment {}", tfield, at,
                                   t.offset, alignment_));
    }
    tensors_.push_back(std::move(t));
  }

  // The data section starts at the next multiple of the alignment.
  const uint64_t end_of_infos = in.pos();
  data_offset_ = (end_of_infos + alignment_ - 1) / alignment_ * alignment_;
  const uint64_t size = mapping_->size;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const GgufTensorInfo& t = tensors_[i];
    const uint64_t available = size > data_offset_ ? size - data_offset_ : 0;
    if (t.offset > available || static_cast<uint64_t>(t.num_bytes) > available - t.offset) {
      malformed(path_, fmt::format("tensor_infos[{}] '{}': data at bytes {}..{} runs past the end of the file ({} "
                                   "bytes; data section starts at byte {})",
                                   i, t.name, data_offset_ + t.offset, data_offset_ + t.offset + t.num_bytes, size,
                                   data_offset_));
    }
  }
}

const GgufValue* GgufFile::find(std::string_view key) const {
  for (const auto& [k, v] : metadata_) {
    if (k == key) return &v;
  }
  return nullptr;
}

namespace {

const GgufValue& require(const GgufFile& f, std::string_view key) {
  const GgufValue* v = f.find(key);
  PA_CHECK_ARG(v != nullptr, "gguf: {}: missing metadata key '{}'", f.path(), key);
  return *v;
}

[[noreturn]] void wrong_type(const GgufFile& f, std::string_view key, const GgufValue& v, std::string_view expected) {
  detail::fail(ErrorKind::type_error, fmt::format("gguf: {}: metadata '{}' has type {}: expected {}", f.path(), key,
                                                  gguf_value_type_name(v.type), expected));
}

int64_t as_int(const GgufFile& f, std::string_view key, const GgufValue& v) {
  if (const auto* u = std::get_if<uint64_t>(&v.data)) {
    PA_CHECK_ARG(*u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()),
                 "gguf: {}: metadata '{}' = {} does not fit int64", f.path(), key, *u);
    return static_cast<int64_t>(*u);
  }
  if (const auto* i = std::get_if<int64_t>(&v.data)) return *i;
  wrong_type(f, key, v, "an integer");
}

}  // namespace

uint64_t GgufFile::get_uint(std::string_view key) const {
  const GgufValue& v = require(*this, key);
  if (const auto* u = std::get_if<uint64_t>(&v.data)) return *u;
  const int64_t i = as_int(*this, key, v);
  PA_CHECK_ARG(i >= 0, "gguf: {}: metadata '{}' = {}: expected a non-negative integer", path_, key, i);
  return static_cast<uint64_t>(i);
}

int64_t GgufFile::get_int(std::string_view key) const { return as_int(*this, key, require(*this, key)); }

double GgufFile::get_float(std::string_view key) const {
  const GgufValue& v = require(*this, key);
  if (const auto* d = std::get_if<double>(&v.data)) return *d;
  wrong_type(*this, key, v, "f32 or f64");
}

bool GgufFile::get_bool(std::string_view key) const {
  const GgufValue& v = require(*this, key);
  if (const auto* b = std::get_if<bool>(&v.data)) return *b;
  wrong_type(*this, key, v, "bool");
}

const std::string& GgufFile::get_string(std::string_view key) const {
  const GgufValue& v = require(*this, key);
  if (const auto* s = std::get_if<std::string>(&v.data)) return *s;
  wrong_type(*this, key, v, "string");
}

std::vector<std::string> GgufFile::get_string_array(std::string_view key) const {
  const GgufValue& v = require(*this, key);
  if (v.type != GgufValueType::array || v.element_type != GgufValueType::string)
    wrong_type(*this, key, v, "array of string");
  std::vector<std::string> out;
  const auto& items = std::get<std::vector<GgufValue>>(v.data);
  out.reserve(items.size());
  for (const GgufValue& item : items) out.push_back(std::get<std::string>(item.data));
  return out;
}

std::vector<int64_t> GgufFile::get_int_array(std::string_view key) const {
  const GgufValue& v = require(*this, key);
  if (v.type != GgufValueType::array) wrong_type(*this, key, v, "array of integers");
  std::vector<int64_t> out;
  const auto& items = std::get<std::vector<GgufValue>>(v.data);
  out.reserve(items.size());
  for (const GgufValue& item : items) {
    if (!item.is_integer()) wrong_type(*this, key, v, "array of integers");
    out.push_back(as_int(*this, key, item));
  }
  return out;
}

uint64_t GgufFile::get_uint(std::string_view key, uint64_t fallback) const {
  return contains(key) ? get_uint(key) : fallback;
}
double GgufFile::get_float(std::string_view key, double fallback) const {
  return contains(key) ? get_float(key) : fallback;
}
bool GgufFile::get_bool(std::string_view key, bool fallback) const { return contains(key) ? get_bool(key) : fallback; }
std::string GgufFile::get_string(std::string_view key, std::string_view fallback) const {
  return contains(key) ? get_string(key) : std::string(fallback);
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  for (const GgufTensorInfo& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

const GgufTensorInfo& GgufFile::tensor(std::string_view name) const {
  const GgufTensorInfo* t = find_tensor(name);
  PA_CHECK_ARG(t != nullptr, "gguf: {}: no tensor named '{}'", path_, name);
  return *t;
}

std::span<const std::byte> GgufFile::tensor_bytes(const GgufTensorInfo& info) const {
  const auto* p = reinterpret_cast<const std::byte*>(mapping_->data) + data_offset_ + info.offset;
  return {p, static_cast<size_t>(info.num_bytes)};
}

Tensor GgufFile::tensor_f32(const GgufTensorInfo& info) const {
  const std::vector<int64_t> shape = info.shape();
  Tensor out = Tensor::empty(shape, DType::f32);
  if (info.num_elements > 0) dequantize(info.type, tensor_bytes(info).data(), out.data_as<float>(), info.num_elements);
  return out;
}

}  // namespace pagedattn
