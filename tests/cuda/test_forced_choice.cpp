// forced_choice (host only): the environment variables that force a CUDA launcher's choice take a single
// digit in range; anything else is reported and ignored, never half-read.
#include <gtest/gtest.h>

#include <cstdlib>

#include "attention/cuda/forced_choice.h"

namespace pagedattn::cuda {
namespace {

constexpr const char* kName = "PAGEDATTN_TEST_FORCED_CHOICE";

int choice_for(const char* value) {
  if (value == nullptr) unsetenv(kName);
  else setenv(kName, value, 1);
  return forced_choice(kName, 1, 2);
}

TEST(ForcedChoice, ADigitInRangeForcesIt) {
  EXPECT_EQ(choice_for("1"), 1);
  EXPECT_EQ(choice_for("2"), 2);
}

TEST(ForcedChoice, UnsetOrEmptyLeavesTheChoiceToTheLauncher) {
  EXPECT_EQ(choice_for(nullptr), -1);
  EXPECT_EQ(choice_for(""), -1);
}

TEST(ForcedChoice, AnythingElseIsReportedAndIgnored) {
  for (const char* bad : {"0", "3", "12", "1x", "x", "-1", " 1"}) {
    ::testing::internal::CaptureStderr();
    EXPECT_EQ(choice_for(bad), -1) << bad;
    const std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find(kName), std::string::npos) << err;
    EXPECT_NE(err.find("from 1 to 2"), std::string::npos) << err;
  }
  unsetenv(kName);
}

}  // namespace
}  // namespace pagedattn::cuda
