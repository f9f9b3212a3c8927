// CUDA decode against the fp64 reference: the harness's edge cases and random shapes in every dtype,
// long and ragged contexts, block sizes 1/16/256, shared blocks, GQA groups beyond one CTA, strided
// query/out, plans reused across layers, and bitwise determinism. The harness poisons every cache slot
// no live position covers with NaN, so a kernel that lets a masked V through fails.
#include <cuda_runtime_api.h>

#include <cstring>
#include <random>

#include "attention/reference.h"
#include "cuda_test_util.h"

namespace pagedattn::testing {
namespace {

class CudaDecodeByDtype : public CudaTestWithParam<DType> {};

TEST_P(CudaDecodeByDtype, EdgeCases) {
  int checked = 0;
  for (const ProblemSpec& spec : edge_case_specs(GetParam())) {
    if (spec.varlen()) continue;  // prefill: not the decode kernel's job
    expect_decode_matches_reference(spec);
    ++checked;
  }
  EXPECT_GE(checked, 25);
}

TEST_P(CudaDecodeByDtype, RandomShapes) {
  std::mt19937_64 rng(42 + static_cast<int>(GetParam()));
  for (int i = 0; i < 25; ++i) expect_decode_matches_reference(random_spec(rng, GetParam(), /*varlen=*/false));
}

TEST_P(CudaDecodeByDtype, BlockSizesAcrossSplits) {
  // Lengths long enough that the planner splits them, ending mid-block, next to a one-token sequence.
  for (int64_t bs : {1, 16, 256})
    expect_decode_matches_reference({.context_lens = {3001, 1, 2048, 777},
                                     .num_q_heads = 16,
                                     .num_kv_heads = 4,
                                     .head_dim = 128,
                                     .block_size = bs,
                                     .dtype = GetParam()});
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaDecodeByDtype, ::testing::Values(DType::bf16, DType::f16, DType::f32),
                         [](const auto& param_info) { return std::string(dtype_name(param_info.param)); });

class CudaDecode : public CudaTest {};

TEST_F(CudaDecode, BlockSizeOneBatchOfOneCtaPerSm) {
  // Block size 1, so every sequence has more pages than a CTA's table slice holds (2048), in a batch of one
  // (sequence, KV head) per ~0.9 x SMs, which the planner would otherwise leave unsplit: each sequence is cut
  // into items at the slice's bound all the same.
  int sms = 0;
  ASSERT_EQ(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0), cudaSuccess);
  const int kv_heads = 8, seqs = (sms * 9 / 10 + kv_heads - 1) / kv_heads;
  std::vector<int32_t> lens(static_cast<size_t>(seqs));
  std::mt19937_64 rng(11);
  for (auto& l : lens) l = std::uniform_int_distribution<int32_t>(2100, 4096)(rng);
  expect_decode_matches_reference({.context_lens = lens,
                                   .num_q_heads = 16,
                                   .num_kv_heads = kv_heads,
                                   .head_dim = 64,
                                   .block_size = 1,
                                   .dtype = DType::bf16});
}

TEST_F(CudaDecode, LongContexts32k) {
  expect_decode_matches_reference({.context_lens = {32768, 32000},
                                   .num_q_heads = 32,
                                   .num_kv_heads = 8,
                                   .head_dim = 128,
                                   .block_size = 16,
                                   .dtype = DType::bf16});
  expect_decode_matches_reference({.context_lens = {32768},
                                   .num_q_heads = 8,
                                   .num_kv_heads = 2,
                                   .head_dim = 64,
                                   .block_size = 1,
                                   .dtype = DType::f16});
  expect_decode_matches_reference({.context_lens = {32767},
                                   .num_q_heads = 4,
                                   .num_kv_heads = 4,
                                   .head_dim = 256,
                                   .block_size = 256,
                                   .dtype = DType::bf16});
}

TEST_F(CudaDecode, RaggedBatchOneSequence1000xLonger) {
  expect_decode_matches_reference({.context_lens = {4, 4000, 3, 5, 4},
                                   .num_q_heads = 32,
                                   .num_kv_heads = 8,
                                   .head_dim = 128,
                                   .dtype = DType::bf16});
  expect_decode_matches_reference({.context_lens = {9, 9000}, .num_q_heads = 9, .num_kv_heads = 3, .head_dim = 64,
                                   .dtype = DType::f16});
}

TEST_F(CudaDecode, EqualLengthsTakeTheRegularPlan) {
  // Equal lengths: the plan lets the kernels derive items from their index instead of loading the list.
  expect_decode_matches_reference({.context_lens = {3000, 3000, 2990, 2999},
                                   .num_q_heads = 32,
                                   .num_kv_heads = 8,
                                   .head_dim = 128,
                                   .dtype = DType::bf16});
  expect_decode_matches_reference({.context_lens = {700, 700}, .num_q_heads = 4, .num_kv_heads = 4, .head_dim = 64,
                                   .block_size = 1, .dtype = DType::f16});
}

TEST_F(CudaDecode, SharedPrefixBlocks) {
  expect_decode_matches_reference({.context_lens = {1000, 1200, 1100, 1050},
                                   .num_q_heads = 16,
                                   .num_kv_heads = 2,
                                   .head_dim = 128,
                                   .dtype = DType::bf16,
                                   .share_prefix = true});
}

TEST_F(CudaDecode, GroupsLargerThanOneCta) {
  // More than 16 query heads per KV head: several CTAs share a KV head, each with up to 16 heads.
  for (auto [hq, hkv] : {std::pair<int64_t, int64_t>{32, 1}, {48, 2}, {17, 1}})
    expect_decode_matches_reference({.context_lens = {300, 45}, .num_q_heads = hq, .num_kv_heads = hkv,
                                     .head_dim = 64, .dtype = DType::bf16});
}

TEST_F(CudaDecode, ManySequencesNoSplit) {
  std::vector<int32_t> lens(300);
  std::mt19937_64 rng(7);
  for (auto& l : lens) l = std::uniform_int_distribution<int32_t>(1, 200)(rng);
  expect_decode_matches_reference({.context_lens = lens, .num_q_heads = 8, .num_kv_heads = 8, .head_dim = 128,
                                   .dtype = DType::bf16});
}

TEST_F(CudaDecode, StridedQueryAndOut) {
  expect_strided_query_and_out_match({.context_lens = {100, 700}, .num_q_heads = 8, .num_kv_heads = 2, .head_dim = 128,
                                      .dtype = DType::bf16});
}

TEST_F(CudaDecode, OnePlanServesEveryLayer) {
  // Layers share the block tables and lengths (one block-id space) but have their own caches and queries.
  const ProblemSpec spec{.context_lens = {2000, 30, 5000}, .num_q_heads = 32, .num_kv_heads = 8, .head_dim = 128,
                         .dtype = DType::bf16};
  const Problem first = make_problem(spec);
  AttentionPlan plan(plan_limits(first), Device::cuda());
  plan.update(spec.context_lens, spec.block_size);
  EXPECT_GT(plan.num_split_seqs(), 0);
  for (uint64_t layer = 0; layer < 3; ++layer) {
    ProblemSpec s = spec;
    s.seed = 100 + layer;  // same lengths and block count, fresh values and block order
    const Problem problem = make_problem(s);
    const Problem gpu = problem.to(Device::cuda());
    PagedAttentionArgs args = gpu.args();
    args.plan = &plan;
    paged_attention(args);
    EXPECT_TRUE(matches_reference(gpu.out.to(Device::cpu()), reference::paged_attention_f64(problem.args()),
                                  tolerance_for(DType::bf16)))
        << "layer " << layer;
  }
}

TEST_F(CudaDecode, BitwiseDeterministic) {
  const Problem problem = make_problem({.context_lens = {4096, 333, 1}, .num_q_heads = 32, .num_kv_heads = 8,
                                        .head_dim = 128, .dtype = DType::bf16});
  for (bool with_plan : {false, true}) {
    const Tensor a = run_decode_on_gpu(problem, with_plan), b = run_decode_on_gpu(problem, with_plan);
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.nbytes()), 0) << "with_plan " << with_plan;
  }
}

}  // namespace
}  // namespace pagedattn::testing
