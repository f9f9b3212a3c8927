// Where the model tests find the GGUF model: $PAGEDATTN_MODEL, else <repo>/models/ (set by CMake).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace pagedattn::testing {

inline std::string model_file() {
  const char* env = std::getenv("PAGEDATTN_MODEL");
  return env != nullptr && *env != '\0' ? std::string(env) : std::string(PAGEDATTN_MODEL_FILE);
}

// Fails the current test (never skips) when the model is missing: CI's bootstrap must provide it.
#define PA_REQUIRE_MODEL()                                                                                   \
  do {                                                                                                       \
    if (!std::filesystem::exists(::pagedattn::testing::model_file())) {                                      \
      GTEST_FAIL() << "model not found at " << ::pagedattn::testing::model_file()                            \
                   << ": run scripts/fetch_model.sh or set PAGEDATTN_MODEL to a SmolLM2-135M-Instruct GGUF"; \
    }                                                                                                        \
  } while (0)

}  // namespace pagedattn::testing
