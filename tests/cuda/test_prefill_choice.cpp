// The launcher's choice between the two sm_90a prefill kernels (host only): prefill_units_are_long on the
// shapes it was measured on (prefill_params.h), and at its edges.
#include <gtest/gtest.h>

#include "attention/cuda/prefill_params.h"

namespace pagedattn::cuda {
namespace {

TEST(PrefillChoice, PromptsOf1024TokensAndMoreTakeTheLongUnitKernel) {
  EXPECT_TRUE(prefill_units_are_long(8192, 1, 0));
  EXPECT_TRUE(prefill_units_are_long(4 * 4096, 4, 0));
  EXPECT_TRUE(prefill_units_are_long(16 * 1024, 16, 0));
  EXPECT_FALSE(prefill_units_are_long(16 * 1024 - 1, 16, 0));
  EXPECT_FALSE(prefill_units_are_long(64 * 256, 64, 0));
}

TEST(PrefillChoice, ChunksOnALongCacheTakeItWhenAPlanKnowsTheContexts) {
  // bench_prefill_cuda's mixed batch: 200 decode rows and two chunks of 512, every context 2048. Without a plan
  // the call only knows its mean query rows (6); with one, the mean context.
  EXPECT_FALSE(prefill_units_are_long(200 + 2 * 512, 202, 0));
  EXPECT_TRUE(prefill_units_are_long(200 + 2 * 512, 202, 2048));
  EXPECT_FALSE(prefill_units_are_long(64 * 256, 64, 256));
  EXPECT_FALSE(prefill_units_are_long(64 * 256, 64, 1023));
  EXPECT_TRUE(prefill_units_are_long(64 * 256, 64, 1024));
}

TEST(PrefillChoice, AnEmptyCallIsShort) { EXPECT_FALSE(prefill_units_are_long(0, 0, 0)); }

}  // namespace
}  // namespace pagedattn::cuda
