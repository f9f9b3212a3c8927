// The one error type of the library. Messages name the argument, the expected and the actual value,
// e.g. "paged_attention: block_tables[1][3] = 57: expected a block id in [0, 40)".
#pragma once

#include <stdexcept>
#include <string>

namespace pagedattn {

enum class ErrorKind {
  invalid_argument,  // bad shape, value, stride, device: Python ValueError
  type_error,        // wrong dtype or kind of array: Python TypeError
  out_of_memory,     // an allocation failed: Python MemoryError
  runtime,           // a failure outside the caller's control (CUDA error, I/O): Python RuntimeError
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const noexcept { return kind_; }

 private:
  ErrorKind kind_;
};

}  // namespace pagedattn
