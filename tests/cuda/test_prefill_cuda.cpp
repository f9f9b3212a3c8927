// CUDA varlen attention (query_start: prefill, chunked prefill, mixed batches) against the fp64 reference:
// the harness's varlen edge cases and random mixed batches in every dtype, chunk boundaries inside and at
// the edge of blocks and of the kernel's row tiles, more sequences than the work-list builder has threads,
// every GQA group size, head dims, block sizes, non-causal rows, empty sequences, prompts up to 16k tokens,
// strided query/out, determinism, graph capture, and bad metadata on the device. The harness poisons every
// cache slot no live position covers with NaN and pre-fills `out` with NaN, so a kernel that reads a masked
// slot or skips a row fails.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "attention/reference.h"
#include "cuda_test_util.h"

namespace pagedattn::testing {
namespace {

bool plannable(const ProblemSpec& spec) {
  return std::all_of(spec.context_lens.begin(), spec.context_lens.end(), [](int32_t n) { return n >= 1; });
}

// Without a plan, and with one where every sequence has a context (AttentionPlan needs lengths >= 1).
void expect_varlen_matches_reference(const ProblemSpec& spec) {
  SCOPED_TRACE(spec.name());
  const Problem problem = make_problem(spec);
  const std::vector<double> ref = reference::paged_attention_f64(problem.args());
  const Tolerance tol = tolerance_for(spec.dtype);
  EXPECT_TRUE(matches_reference(run_decode_on_gpu(problem, false), ref, tol)) << "without a plan";
  if (plannable(spec)) {
    EXPECT_TRUE(matches_reference(run_decode_on_gpu(problem, true), ref, tol)) << "with a plan";
  }
}

// For problems too large for the full reference: query row j of sequence `seq` is, by DESIGN.md §2, the
// decode query of a sequence whose context ends at the row's position (causal) or at the context's end,
// over the same pages; the reference computes exactly that for each sampled row (all heads).
::testing::AssertionResult sampled_rows_match(const Problem& p, const Tensor& out, int64_t seq,
                                              const std::vector<int64_t>& rows) {
  const ProblemSpec& s = p.spec;
  const int64_t Hq = s.num_q_heads, D = s.head_dim, cols = p.block_tables.size(1);
  const int64_t first = p.query_start.data_as<const int32_t>()[seq], q_len = s.q_lens[seq];
  const int32_t ctx = s.context_lens[seq];
  const size_t elem = dtype_size(s.dtype);
  Tensor lens = Tensor::empty({1}, DType::i32), scratch = Tensor::empty({1, Hq, D}, s.dtype);
  for (int64_t j : rows) {
    if (j < 0 || j >= q_len) return ::testing::AssertionFailure() << "row " << j << " is not a row of the sequence";
    lens.data_as<int32_t>()[0] = s.causal ? static_cast<int32_t>(ctx - q_len + j + 1) : ctx;
    PagedAttentionArgs a;
    a.query = TensorView(static_cast<char*>(p.query.data()) + (first + j) * Hq * D * elem, s.dtype, {1, Hq, D});
    a.out = scratch;
    a.key_cache = p.key_cache;
    a.value_cache = p.value_cache;
    a.block_tables = TensorView(p.block_tables.data_as<int32_t>() + seq * cols, DType::i32, {1, cols});
    a.context_lens = lens;
    const std::vector<double> ref = reference::paged_attention_f64(a);
    const TensorView got(static_cast<char*>(out.data()) + (first + j) * Hq * D * elem, s.dtype, {1, Hq, D});
    ::testing::AssertionResult r = matches_reference(got, ref, tolerance_for(s.dtype));
    if (!r) return r << " (sequence " << seq << ", row " << j << ")";
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult all_finite(const Tensor& out) {
  for (int64_t i = 0; i < out.numel(); ++i) {
    const float v = out.dtype() == DType::bf16  ? to_f32(out.data_as<bf16>()[i])
                    : out.dtype() == DType::f16 ? to_f32(out.data_as<f16>()[i])
                                                : out.data_as<float>()[i];
    if (!std::isfinite(v)) return ::testing::AssertionFailure() << "element " << i << " is " << v;
  }
  return ::testing::AssertionSuccess();
}

class CudaPrefillByDtype : public CudaTestWithParam<DType> {};

TEST_P(CudaPrefillByDtype, EdgeCases) {
  int checked = 0;
  for (const ProblemSpec& spec : edge_case_specs(GetParam())) {
    if (!spec.varlen()) continue;  // decode: test_cuda_decode.cpp
    expect_varlen_matches_reference(spec);
    ++checked;
  }
  EXPECT_GE(checked, 7);
}

TEST_P(CudaPrefillByDtype, RandomMixedBatches) {
  // Decode rows, chunks on top of a cache, whole prompts and empty rows in one call (random_spec, varlen).
  std::mt19937_64 rng(4242 + static_cast<int>(GetParam()));
  for (int i = 0; i < 30; ++i) expect_varlen_matches_reference(random_spec(rng, GetParam(), /*varlen=*/true));
}

TEST_P(CudaPrefillByDtype, ChunkBoundariesInsideAndAtBlocks) {
  // Every (cached, chunk) pair in one batch: a chunk that starts and ends inside a block, on a block edge,
  // one token past it, and from an empty cache.
  ProblemSpec spec{.num_q_heads = 8, .num_kv_heads = 2, .head_dim = GetParam() == DType::f32 ? 64 : 128,
                   .block_size = 16, .dtype = GetParam()};
  for (int32_t cached : {0, 1, 15, 16, 17, 47, 48})
    for (int32_t chunk : {2, 3, 15, 16, 17, 33}) {
      spec.context_lens.push_back(cached + chunk);
      spec.q_lens.push_back(chunk);
    }
  expect_varlen_matches_reference(spec);
}

TEST_P(CudaPrefillByDtype, RowTileBoundaries) {
  // Group 4: the tensor-core kernel's 128-row tiles hold 32 tokens; lengths around 1, 2 and 4 tiles, on top
  // of caches that end mid-block.
  ProblemSpec spec{.num_q_heads = 16, .num_kv_heads = 4, .head_dim = 64, .block_size = 16, .dtype = GetParam()};
  for (int32_t q : {31, 32, 33, 63, 64, 65, 127, 128, 129}) {
    spec.context_lens.push_back(q + 21);
    spec.q_lens.push_back(q);
  }
  expect_varlen_matches_reference(spec);
}

TEST_P(CudaPrefillByDtype, EmptyAndDecodeOnlySequences) {
  // q_len 0 (with and without a context), decode rows only, and a batch with no prefill sequence at all.
  expect_varlen_matches_reference({.context_lens = {0, 5, 0, 9, 40}, .q_lens = {0, 5, 0, 1, 0}, .dtype = GetParam()});
  expect_varlen_matches_reference({.context_lens = {300, 1, 77}, .q_lens = {1, 1, 1}, .num_q_heads = 16,
                                   .num_kv_heads = 4, .head_dim = 128, .dtype = GetParam()});
}

TEST_P(CudaPrefillByDtype, MoreSequencesThanTheWorkListBuilderHasThreads) {
  // 1200 sequences: the builder's 512 threads take them in three rounds. Chunks of 2-12 rows on caches of
  // 0-200 tokens, every tenth sequence a decode row; one small head keeps the reference quick.
  std::mt19937_64 rng(77 + static_cast<int>(GetParam()));
  ProblemSpec spec{.num_q_heads = 2, .num_kv_heads = 1, .head_dim = 128, .dtype = GetParam()};
  for (int i = 0; i < 1200; ++i) {
    const int32_t q = i % 10 == 0 ? 1 : std::uniform_int_distribution<int32_t>(2, 12)(rng);
    spec.q_lens.push_back(q);
    spec.context_lens.push_back(q + std::uniform_int_distribution<int32_t>(0, 200)(rng));
  }
  expect_varlen_matches_reference(spec);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaPrefillByDtype, ::testing::Values(DType::bf16, DType::f16, DType::f32),
                         [](const auto& param_info) { return std::string(dtype_name(param_info.param)); });

class CudaPrefill : public CudaTest {};

TEST_F(CudaPrefill, AllGroupSizes) {
  // Groups 1..32, powers of two or not (SmolLM2: 9 over 3), so that tiles split a token's group of heads.
  for (auto [hq, hkv] : std::vector<std::pair<int64_t, int64_t>>{
           {4, 4}, {4, 2}, {9, 3}, {8, 2}, {10, 2}, {6, 1}, {14, 2}, {8, 1}, {24, 3}, {16, 1}, {40, 2}, {32, 1}})
    for (DType dtype : {DType::bf16, DType::f16})
      expect_varlen_matches_reference({.context_lens = {130, 77, 1, 260},
                                       .q_lens = {100, 77, 1, 3},
                                       .num_q_heads = hq,
                                       .num_kv_heads = hkv,
                                       .head_dim = 128,
                                       .dtype = dtype});
}

TEST_F(CudaPrefill, HeadDimsAndBlockSizes) {
  for (int64_t D : {64, 80, 96, 128, 256})
    for (DType dtype : {DType::bf16, DType::f16})
      expect_varlen_matches_reference({.context_lens = {300, 45, 200},
                                       .q_lens = {200, 45, 1},
                                       .num_q_heads = 8,
                                       .num_kv_heads = 2,
                                       .head_dim = D,
                                       .dtype = dtype});
  for (int64_t bs : {1, 4, 8, 32, 64, 128, 256})
    expect_varlen_matches_reference({.context_lens = {333, 129, 2},
                                     .q_lens = {150, 129, 1},
                                     .num_q_heads = 8,
                                     .num_kv_heads = 2,
                                     .head_dim = 128,
                                     .block_size = bs,
                                     .dtype = DType::bf16});
}

TEST_F(CudaPrefill, NonCausal) {
  for (DType dtype : {DType::bf16, DType::f16, DType::f32})
    expect_varlen_matches_reference({.context_lens = {500, 64, 3},
                                     .q_lens = {300, 64, 1},
                                     .num_q_heads = 8,
                                     .num_kv_heads = 2,
                                     .head_dim = dtype == DType::f32 ? 64 : 128,
                                     .dtype = dtype,
                                     .causal = false});
}

TEST_F(CudaPrefill, ExplicitScalesIncludingZeroAndNegative) {
  // Positive scales run the tensor-core kernel; zero and negative ones the simple kernel (f16/bf16 alike).
  const ProblemSpec spec{.context_lens = {260, 33, 90}, .q_lens = {200, 1, 90}, .num_q_heads = 8, .num_kv_heads = 2,
                         .head_dim = 128, .dtype = DType::bf16};
  const Problem problem = make_problem(spec);
  for (float scale : {0.3f, 0.02f, 0.0f, -0.25f}) {
    PagedAttentionArgs host_args = problem.args();
    host_args.scale = scale;
    const std::vector<double> ref = reference::paged_attention_f64(host_args);
    const Problem gpu = problem.to(Device::cuda());
    PagedAttentionArgs args = gpu.args();
    args.scale = scale;
    paged_attention(args);
    EXPECT_TRUE(matches_reference(gpu.out.to(Device::cpu()), ref, tolerance_for(DType::bf16))) << "scale " << scale;
  }
}

TEST_F(CudaPrefill, SharedPrefixAndWideTables) {
  expect_varlen_matches_reference({.context_lens = {700, 650, 900},
                                   .q_lens = {200, 1, 400},
                                   .num_q_heads = 32,
                                   .num_kv_heads = 8,
                                   .head_dim = 128,
                                   .dtype = DType::bf16,
                                   .extra_table_columns = 7,
                                   .share_prefix = true});
}

TEST_F(CudaPrefill, LongPromptsUpTo16k) {
  // A whole 16k prompt, a 2k chunk on top of a 14k cache next to decode rows, and a non-causal 12k f16
  // sequence; checked in full for NaN and row by row (sampled) against the reference.
  struct Case {
    ProblemSpec spec;
    int64_t seq;
  };
  const std::vector<Case> cases = {
      {{.context_lens = {16384}, .q_lens = {16384}, .num_q_heads = 8, .num_kv_heads = 2, .head_dim = 128,
        .dtype = DType::bf16},
       0},
      {{.context_lens = {900, 16384, 17}, .q_lens = {1, 2048, 1}, .num_q_heads = 9, .num_kv_heads = 3,
        .head_dim = 64, .block_size = 32, .dtype = DType::f16},
       1},
      {{.context_lens = {12000}, .q_lens = {12000}, .num_q_heads = 4, .num_kv_heads = 1, .head_dim = 256,
        .block_size = 64, .dtype = DType::f16, .causal = false},
       0},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.spec.name());
    const Problem problem = make_problem(c.spec);
    const Tensor out = run_decode_on_gpu(problem, false);
    EXPECT_TRUE(all_finite(out));
    const int64_t L = c.spec.q_lens[static_cast<size_t>(c.seq)];
    std::vector<int64_t> rows = {0, 1, 31, 32, 33, 127, 128, L / 2, L - 129, L - 33, L - 2, L - 1};
    std::mt19937_64 rng(5);
    for (int i = 0; i < 8; ++i) rows.push_back(std::uniform_int_distribution<int64_t>(0, L - 1)(rng));
    EXPECT_TRUE(sampled_rows_match(problem, out, c.seq, rows));
  }
}

TEST_F(CudaPrefill, StridedQueryAndOut) {
  expect_strided_query_and_out_match({.context_lens = {100, 700}, .q_lens = {60, 300}, .num_q_heads = 8,
                                      .num_kv_heads = 2, .head_dim = 128, .dtype = DType::bf16});
}

TEST_F(CudaPrefill, BitwiseDeterministic) {
  // CTAs claim work dynamically, but each output row is computed by one CTA in one fixed order.
  const Problem problem = make_problem({.context_lens = {3000, 333, 1, 1200}, .q_lens = {3000, 100, 1, 700},
                                        .num_q_heads = 32, .num_kv_heads = 8, .head_dim = 128, .dtype = DType::bf16});
  const Tensor a = run_decode_on_gpu(problem, false), b = run_decode_on_gpu(problem, false);
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.nbytes()), 0);
}

TEST_F(CudaPrefill, CapturedMixedStepReplays) {
  // The work list is built on the device each call, so a captured varlen call replays with new metadata
  // values of the same sizes (here: the same lengths, new queries).
  const ProblemSpec spec{.context_lens = {600, 40, 1000, 7}, .q_lens = {600, 1, 300, 1}, .num_q_heads = 16,
                         .num_kv_heads = 4, .head_dim = 128, .dtype = DType::bf16};
  Problem host = make_problem(spec);
  const Problem gpu = host.to(Device::cuda());
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  PagedAttentionArgs args = gpu.args();
  args.stream = stream;
  paged_attention(args);  // eagerly once first (modules load, attributes are set)
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  paged_attention(args);
  ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  for (int replay = 0; replay < 2; ++replay) {
    std::mt19937_64 rng(77 + replay);
    fill_uniform(host.query, rng, -1.0f, 1.0f);
    copy(gpu.query, host.query);
    fill_constant(host.out, std::nan(""));
    copy(gpu.out, host.out);
    ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    check_cuda_errors();
    EXPECT_TRUE(matches_reference(gpu.out.to(Device::cpu()), reference::paged_attention_f64(host.args()),
                                  tolerance_for(DType::bf16)))
        << "replay " << replay;
  }
  EXPECT_EQ(cudaGraphExecDestroy(exec), cudaSuccess);
  EXPECT_EQ(cudaGraphDestroy(graph), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(stream), cudaSuccess);
}

// Bad metadata already on the GPU: recorded by the kernels (never an out-of-bounds access) and raised.
class CudaPrefillErrors : public CudaTest {};

const ProblemSpec kVarlen{.context_lens = {40, 100, 7}, .q_lens = {40, 30, 1}, .num_q_heads = 8, .num_kv_heads = 2,
                          .head_dim = 128, .dtype = DType::bf16};

TEST_F(CudaPrefillErrors, BadBlockIdOfAPrefillSequence) {
  Problem p = make_problem(kVarlen);
  p.block_tables.data_as<int32_t>()[1 * p.block_tables.size(1) + 4] = 123456;
  const Problem gpu = p.to(Device::cuda());
  EXPECT_EQ(error_of(gpu.args()), "paged_attention: block_tables[1][4] = 123456: expected a block id in [0, " +
                                      std::to_string(p.key_cache.size(0)) + ")");
  // Unchecked: the call returns, the error waits for check_cuda_errors, and no output is NaN.
  set_cuda_checked(false);
  paged_attention(gpu.args());
  EXPECT_THROW(check_cuda_errors(), Error);
  EXPECT_TRUE(all_finite(gpu.out.to(Device::cpu())));
}

TEST_F(CudaPrefillErrors, QueryStartThatIsNotMonotoneOrPastTheRows) {
  // query_start = [0, 40, 70, 71]; each change breaks only query_start (no row count exceeds its context).
  for (auto [index, value] : std::vector<std::pair<int, int32_t>>{{1, 75}, {2, -4}, {3, 500}}) {
    Problem p = make_problem(kVarlen);
    p.query_start.data_as<int32_t>()[index] = value;
    const Problem gpu = p.to(Device::cuda());
    const std::string message = error_of(gpu.args());
    EXPECT_NE(message.find("query_start["), std::string::npos) << message;
    EXPECT_NE(message.find("expected non-decreasing row indices in [0, 71]"), std::string::npos) << message;
  }
}

TEST_F(CudaPrefillErrors, ContextShorterThanTheQueryRows) {
  Problem p = make_problem(kVarlen);
  p.context_lens.data_as<int32_t>()[1] = 20;  // 30 rows
  const Problem gpu = p.to(Device::cuda());
  EXPECT_NE(error_of(gpu.args()).find("context_lens[1] = 20: expected a length in [30, "), std::string::npos);
}

}  // namespace
}  // namespace pagedattn::testing
