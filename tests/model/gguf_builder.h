// Writes small GGUF files byte by byte for the tests, including deliberately malformed ones.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <unistd.h>
#include <vector>

namespace pagedattn::testing {

class GgufBuilder {
 public:
  std::vector<uint8_t> bytes;

  template <class T>
  GgufBuilder& put(T v) {
    const size_t at = bytes.size();
    bytes.resize(at + sizeof(T));
    std::memcpy(bytes.data() + at, &v, sizeof(T));
    return *this;
  }
  GgufBuilder& str(std::string_view s) {
    put<uint64_t>(s.size());
    bytes.insert(bytes.end(), s.begin(), s.end());
    return *this;
  }
  GgufBuilder& header(uint64_t tensors, uint64_t kvs, uint32_t version = 3) {
    bytes.insert(bytes.end(), {'G', 'G', 'U', 'F'});
    return put<uint32_t>(version).put<uint64_t>(tensors).put<uint64_t>(kvs);
  }
  // A key and its value type; the caller then puts the value.
  GgufBuilder& key(std::string_view k, uint32_t type) { return str(k).put<uint32_t>(type); }
  GgufBuilder& tensor(std::string_view name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset) {
    str(name).put<uint32_t>(static_cast<uint32_t>(dims.size()));
    for (uint64_t d : dims) put<uint64_t>(d);
    return put<uint32_t>(type).put<uint64_t>(offset);
  }
  GgufBuilder& pad_to(size_t alignment) {
    while (bytes.size() % alignment != 0) bytes.push_back(0);
    return *this;
  }
  GgufBuilder& raw(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    bytes.insert(bytes.end(), b, b + n);
    return *this;
  }

  // Writes the bytes (or their first `size` bytes) to a file in the test's temp dir; returns its path. The
  // process id in the name keeps tests that ctest runs in parallel from overwriting each other's files.
  std::string write(const std::string& name, size_t size = SIZE_MAX) const {
    const std::string path = ::testing::TempDir() + "pagedattn_" + std::to_string(getpid()) + "_" + name;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(std::min(size, bytes.size())));
    return path;
  }
};

}  // namespace pagedattn::testing
