// Helpers shared by the KV-cache manager tests.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "pagedattn/error.h"

namespace pagedattn::testing {

// Runs `action`, which must throw pagedattn::Error of `kind`, and returns the message (empty on failure).
template <class F>
std::string error_message(F&& action, ErrorKind kind = ErrorKind::invalid_argument) {
  try {
    std::forward<F>(action)();
  } catch (const Error& e) {
    EXPECT_EQ(static_cast<int>(e.kind()), static_cast<int>(kind)) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "expected a pagedattn::Error, but nothing was thrown";
  return {};
}

}  // namespace pagedattn::testing
