#include "cuda_test_util.h"

#include <array>
#include <cstring>
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

std::string error_of(const PagedAttentionArgs& args) {
  try {
    paged_attention(args);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

void expect_strided_query_and_out_match(const ProblemSpec& spec) {
  SCOPED_TRACE(spec.name());
  ASSERT_EQ(spec.dtype, DType::bf16);
  const Problem problem = make_problem(spec);
  const std::vector<double> ref = reference::paged_attention_f64(problem.args());
  const int64_t T = spec.num_tokens(), Hq = spec.num_q_heads, D = spec.head_dim;
  Tensor wide_q = Tensor::empty({T, 2 * Hq, D}, DType::bf16);
  Tensor wide_out = Tensor::empty({T, 2 * Hq, D}, DType::bf16);
  fill_constant(wide_out, 7.0);
  for (int64_t t = 0; t < T; ++t)
    std::memcpy(wide_q.data_as<bf16>() + t * 2 * Hq * D, problem.query.data_as<bf16>() + t * Hq * D, Hq * D * 2);
  const Problem gpu = problem.to(Device::cuda());
  const Tensor gq = wide_q.to(Device::cuda()), gout = wide_out.to(Device::cuda());
  const std::array<int64_t, 3> shape{T, Hq, D}, strides{2 * Hq * D, D, 1};
  PagedAttentionArgs args = gpu.args();
  args.query = TensorView(gq.data(), DType::bf16, shape, strides, Device::cuda());
  args.out = TensorView(gout.data(), DType::bf16, shape, strides, Device::cuda());
  paged_attention(args);
  const Tensor host = gout.to(Device::cpu());
  EXPECT_TRUE(matches_reference(TensorView(host.data(), DType::bf16, shape, strides), ref, tolerance_for(DType::bf16)));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t e = Hq * D; e < 2 * Hq * D; ++e) ASSERT_EQ(to_f32(host.data_as<bf16>()[t * 2 * Hq * D + e]), 7.0f);
}

}  // namespace pagedattn::testing
