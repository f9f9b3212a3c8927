// Argument checks that throw pagedattn::Error with a formatted message (private to the library).
#pragma once

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "pagedattn/error.h"

namespace pagedattn::detail {
[[noreturn]] void fail(ErrorKind kind, std::string message);
}  // namespace pagedattn::detail

#define PA_CHECK(cond, kind, ...)                                               \
  do {                                                                          \
    if (!(cond)) [[unlikely]]                                                   \
      ::pagedattn::detail::fail((kind), fmt::format(__VA_ARGS__));              \
  } while (0)
// Bad value, shape, stride or device: ValueError in Python.
#define PA_CHECK_ARG(cond, ...) PA_CHECK(cond, ::pagedattn::ErrorKind::invalid_argument, __VA_ARGS__)
// Wrong dtype or kind of array: TypeError in Python.
#define PA_CHECK_TYPE(cond, ...) PA_CHECK(cond, ::pagedattn::ErrorKind::type_error, __VA_ARGS__)
