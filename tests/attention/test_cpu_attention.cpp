// The CPU backend of paged_attention against the fp64 reference, through the public entry point.
// Tolerances (tolerance_for, |out - ref| <= atol + rtol * |ref| per element, inputs already in the dtype):
//   float32  atol 2e-5, rtol 1e-4    (f32 accumulation, online softmax)
//   float16  atol 2e-3, rtol 5e-3    (f32 accumulation, output rounded to 11 mantissa bits)
//   bfloat16 atol 1e-2, rtol 2e-2    (f32 accumulation, output rounded to 8 mantissa bits)
// Every unused cache slot holds NaN and `out` starts as NaN (make_problem), so a kernel that reads past a
// sequence's length, lets a masked V reach the output, or leaves an element unwritten fails here.
#include <gtest/gtest.h>
#include <hwy/targets.h>
#include <omp.h>

#include <cmath>
#include <limits>
#include <random>

#include "attention/reference.h"
#include "common/paged_problem.h"

using namespace pagedattn;
using namespace pagedattn::testing;

namespace pagedattn {
// Readable parameter values in gtest messages.
inline void PrintTo(DType dtype, std::ostream* os) { *os << dtype_name(dtype); }
}  // namespace pagedattn

namespace {

// Runs the backend under `threads` OpenMP threads: more threads than cores make the planner split
// sequences over KV, so the log-sum-exp merge is exercised too.
::testing::AssertionResult cpu_matches_reference(const ProblemSpec& spec, int threads = 0) {
  const Problem p = make_problem(spec);
  const std::vector<double> ref = reference::paged_attention_f64(p.args());
  const int saved = omp_get_max_threads();
  if (threads > 0) omp_set_num_threads(threads);
  paged_attention(p.args());
  omp_set_num_threads(saved);
  return matches_reference(p.out, ref, tolerance_for(spec.dtype));
}

class CpuAttention : public ::testing::TestWithParam<DType> {};

std::string dtype_param_name(const ::testing::TestParamInfo<DType>& info) {
  return std::string(dtype_name(info.param));
}

TEST_P(CpuAttention, EdgeCases) {
  for (const ProblemSpec& spec : edge_case_specs(GetParam())) {
    SCOPED_TRACE(spec.name());
    EXPECT_TRUE(cpu_matches_reference(spec));
  }
}

// Eight threads on any machine: long sequences split over KV and the splits merge by log-sum-exp.
TEST_P(CpuAttention, EdgeCasesSplitOverKv) {
  for (const ProblemSpec& spec : edge_case_specs(GetParam())) {
    SCOPED_TRACE(spec.name());
    EXPECT_TRUE(cpu_matches_reference(spec, 8));
  }
}

void expect_random_specs_match(DType dtype, bool varlen, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 40; ++i) {
    const ProblemSpec spec = random_spec(rng, dtype, varlen);
    SCOPED_TRACE(spec.name());
    EXPECT_TRUE(cpu_matches_reference(spec, 1 + i % 4));
  }
}

TEST_P(CpuAttention, RandomDecode) { expect_random_specs_match(GetParam(), false, 7 + static_cast<int>(GetParam())); }

TEST_P(CpuAttention, RandomVarlen) { expect_random_specs_match(GetParam(), true, 11 + static_cast<int>(GetParam())); }

// Decode rows, whole prompts and chunks on top of a cache in one call, with shared prefix blocks, long
// enough to be split over KV and tiled over query rows.
TEST_P(CpuAttention, MixedBatchesWithSharedBlocks) {
  const std::vector<ProblemSpec> specs = {
      {.context_lens = {700, 1, 513, 64, 1300}, .q_lens = {1, 1, 200, 64, 1}, .num_q_heads = 8, .num_kv_heads = 2},
      {.context_lens = {900, 900, 900}, .q_lens = {1, 37, 300}, .num_q_heads = 9, .num_kv_heads = 3,
       .block_size = 32, .share_prefix = true},
      {.context_lens = {1000, 1001, 2}, .q_lens = {5, 1, 2}, .num_q_heads = 16, .num_kv_heads = 1, .head_dim = 128,
       .block_size = 8, .extra_table_columns = 4, .share_prefix = true},
      {.context_lens = {600, 33}, .q_lens = {100, 33}, .num_q_heads = 4, .num_kv_heads = 4, .head_dim = 80,
       .block_size = 1, .causal = false},
  };
  for (const ProblemSpec& base : specs) {
    ProblemSpec spec = base;
    spec.dtype = GetParam();
    SCOPED_TRACE(spec.name());
    for (int threads : {1, 2, 8}) EXPECT_TRUE(cpu_matches_reference(spec, threads)) << threads << " threads";
  }
}

// Head dims that are not a multiple of the vector width take the padded path.
TEST_P(CpuAttention, OddHeadDims) {
  for (int64_t D : {1, 3, 8, 20, 36, 72, 100, 136}) {
    const ProblemSpec spec{.context_lens = {45, 130}, .q_lens = {1, 20}, .num_q_heads = 6, .num_kv_heads = 2,
                           .head_dim = D, .dtype = GetParam()};
    SCOPED_TRACE(spec.name());
    EXPECT_TRUE(cpu_matches_reference(spec, 2));
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CpuAttention, ::testing::Values(DType::f32, DType::f16, DType::bf16),
                         dtype_param_name);

// The kernel is compiled for several instruction sets (vector widths 16/8/4/1 lanes change the tile and
// the reduction tree); runtime dispatch picks one. Force each one this machine can run.
TEST(CpuAttentionTargets, EdgeCasesOnEveryCompiledTarget) {
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    for (DType dtype : {DType::f32, DType::bf16, DType::f16}) {
      for (const ProblemSpec& spec : edge_case_specs(dtype)) {
        SCOPED_TRACE(spec.name());
        EXPECT_TRUE(cpu_matches_reference(spec));
      }
    }
    const ProblemSpec odd{.context_lens = {45, 130}, .q_lens = {1, 20}, .num_q_heads = 6, .num_kv_heads = 2,
                          .head_dim = 36, .dtype = DType::bf16};
    EXPECT_TRUE(cpu_matches_reference(odd, 8));
  }
  hwy::SetSupportedTargetsForTest(0);  // back to the machine's own
}

// query and out as strided views (rows of a fused QKV-like buffer, heads padded): only the rows are read
// and only the [T, Hq, D] elements of out are written.
TEST(CpuAttentionLayout, StridedQueryAndOut) {
  const ProblemSpec spec{.context_lens = {40, 77, 5}, .q_lens = {3, 1, 5}, .num_q_heads = 6, .num_kv_heads = 3,
                         .head_dim = 64};
  const Problem p = make_problem(spec);
  const int64_t T = spec.num_tokens(), Hq = 6, D = 64, head_stride = D + 16, row_stride = 3 * Hq * head_stride;
  Tensor q_buf = Tensor::zeros({T, 3 * Hq, head_stride}, DType::f32);
  Tensor out_buf = Tensor::empty({T, 3 * Hq, head_stride}, DType::f32);
  fill_constant(out_buf, 12345.0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < Hq; ++h)
      for (int64_t d = 0; d < D; ++d)
        q_buf.data_as<float>()[t * row_stride + h * head_stride + d] = p.query.data_as<float>()[(t * Hq + h) * D + d];
  const std::array<int64_t, 3> shape{T, Hq, D}, strides{row_stride, head_stride, 1};
  PagedAttentionArgs a = p.args();
  a.query = TensorView(q_buf.data(), DType::f32, shape, strides);
  a.out = TensorView(out_buf.data(), DType::f32, shape, strides);
  paged_attention(a);
  EXPECT_TRUE(matches_reference(a.out, reference::paged_attention_f64(p.args()), tolerance_for(DType::f32)));
  int64_t untouched = 0;
  for (int64_t i = 0; i < out_buf.numel(); ++i) untouched += out_buf.data_as<float>()[i] == 12345.0f;
  EXPECT_EQ(untouched, out_buf.numel() - T * Hq * D);
}

TEST(CpuAttentionLayout, ExplicitScale) {
  const ProblemSpec spec{.context_lens = {300, 20}, .q_lens = {2, 20}, .num_q_heads = 4, .num_kv_heads = 2};
  const Problem p = make_problem(spec);
  for (float scale : {0.0f, 0.3f, -1.5f}) {
    PagedAttentionArgs a = p.args();
    a.scale = scale;
    paged_attention(a);
    EXPECT_TRUE(matches_reference(p.out, reference::paged_attention_f64(a), tolerance_for(DType::f32))) << scale;
  }
}

// Sequences with no query rows in a varlen call are skipped; a call with no rows at all writes nothing.
TEST(CpuAttentionLayout, EmptyRows) {
  const ProblemSpec spec{.context_lens = {50, 0, 20}, .q_lens = {0, 0, 4}};
  EXPECT_TRUE(cpu_matches_reference(spec));
  const ProblemSpec none{.context_lens = {9, 3}, .q_lens = {0, 0}};
  const Problem p = make_problem(none);
  EXPECT_NO_THROW(paged_attention(p.args()));
}

// Large-magnitude scores: the online softmax must rescale instead of overflowing exp.
TEST(CpuAttentionLayout, LargeScoresStayFinite) {
  const ProblemSpec spec{.context_lens = {500}, .q_lens = {3}, .num_q_heads = 2, .num_kv_heads = 1, .head_dim = 64};
  const Problem p = make_problem(spec);
  PagedAttentionArgs a = p.args();
  a.scale = 40.0f;  // scores up to ~2500: exp would overflow without the running max
  const std::vector<double> ref = reference::paged_attention_f64(a);
  const int saved = omp_get_max_threads();
  for (int threads : {1, 8}) {
    omp_set_num_threads(threads);
    paged_attention(a);
    EXPECT_TRUE(matches_reference(p.out, ref, tolerance_for(DType::f32))) << threads << " threads";
  }
  omp_set_num_threads(saved);
}

// A NaN in a key that the query sees makes that KV head's query heads NaN, as in the reference (the softmax's
// exponential must not clamp it to a zero weight); the other group's heads are unaffected.
TEST(CpuAttentionLayout, NaNInAVisibleKeyReachesItsGroup) {
  const ProblemSpec spec{.context_lens = {40}, .num_q_heads = 8, .num_kv_heads = 2, .head_dim = 128};
  Problem p = make_problem(spec);
  const int64_t pos = 19, bs = spec.block_size, D = spec.head_dim, Hkv = spec.num_kv_heads;
  const int64_t block = p.block_tables.data_as<int32_t>()[pos / bs];
  p.key_cache.data_as<float>()[((block * bs + pos % bs) * Hkv + 0) * D + 5] = std::numeric_limits<float>::quiet_NaN();
  const PagedAttentionArgs a = p.args();
  const std::vector<double> ref = reference::paged_attention_f64(a);
  paged_attention(a);
  const float* out = p.out.data_as<float>();
  const Tolerance tol = tolerance_for(DType::f32);
  for (int64_t h = 0; h < spec.num_q_heads; ++h)
    for (int64_t d = 0; d < D; ++d) {
      const double got = out[h * D + d], want = ref[static_cast<size_t>(h * D + d)];
      if (h < 4) {
        ASSERT_TRUE(std::isnan(got) && std::isnan(want)) << "head " << h << " dim " << d << ": " << got;
      } else {
        ASSERT_LE(std::abs(got - want), tol.atol + tol.rtol * std::abs(want)) << "head " << h << " dim " << d;
      }
    }
}

}  // namespace
