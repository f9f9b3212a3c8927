// Shared by the CUDA tests: a fixture that skips without a GPU and runs in checked mode, and a decode
// run of a harness problem through the public API.
#pragma once

#include <gtest/gtest.h>

#include "common/paged_problem.h"
#include "pagedattn/attention.h"
#include "pagedattn/error.h"

namespace pagedattn::testing {

class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
};

template <class Param>
class CudaTestWithParam : public CudaTest, public ::testing::WithParamInterface<Param> {};

// The limits a plan needs for this problem.
AttentionPlanLimits plan_limits(const Problem& problem);

// Copies the problem to the GPU, runs paged_attention (with a plan built from its lengths when
// `with_plan`) and returns the output on the CPU.
Tensor run_decode_on_gpu(const Problem& problem, bool with_plan);

// The reference check of one spec, both with and without a plan.
void expect_decode_matches_reference(const ProblemSpec& spec);

}  // namespace pagedattn::testing
