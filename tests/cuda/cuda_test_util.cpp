#include "cuda_test_util.h"

#include <optional>

#include "attention/reference.h"

namespace pagedattn::testing {

void CudaTest::SetUp() {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  set_cuda_checked(true);
}

void CudaTest::TearDown() { set_cuda_checked(false); }

AttentionPlanLimits plan_limits(const Problem& problem) {
  const ProblemSpec& s = problem.spec;
  return {.max_seqs = s.num_seqs(),
          .max_blocks_per_seq = problem.block_tables.size(1),
          .num_q_heads = s.num_q_heads,
          .num_kv_heads = s.num_kv_heads,
          .head_dim = s.head_dim};
}

Tensor run_decode_on_gpu(const Problem& problem, bool with_plan) {
  const Problem gpu = problem.to(Device::cuda());
  PagedAttentionArgs args = gpu.args();
  std::optional<AttentionPlan> plan;
  if (with_plan) {
    plan.emplace(plan_limits(problem), Device::cuda());
    plan->update(problem.spec.context_lens, problem.spec.block_size);
    args.plan = &*plan;
  }
  paged_attention(args);
  return gpu.out.to(Device::cpu());
}

void expect_decode_matches_reference(const ProblemSpec& spec) {
  SCOPED_TRACE(spec.name());
  const Problem problem = make_problem(spec);
  const std::vector<double> ref = reference::paged_attention_f64(problem.args());
  const Tolerance tol = tolerance_for(spec.dtype);
  EXPECT_TRUE(matches_reference(run_decode_on_gpu(problem, false), ref, tol)) << "without a plan";
  EXPECT_TRUE(matches_reference(run_decode_on_gpu(problem, true), ref, tol)) << "with a plan";
}

}  // namespace pagedattn::testing
