// Bad metadata already on the GPU never causes an out-of-bounds access: the kernels record the first bad
// value and the host raises it (at once in checked mode, else at check_cuda_errors). Plus the host-side
// refusals of the CUDA backend (unsupported head dim, misalignment, plan mismatches).
#include <cstring>

#include "cuda_test_util.h"

namespace pagedattn::testing {
namespace {

class CudaErrors : public CudaTest {
 protected:
  // A problem whose table entry (seq, column) is replaced by `id` before it goes to the GPU.
  static Problem with_table_entry(const ProblemSpec& spec, int64_t seq, int64_t column, int32_t id) {
    Problem p = make_problem(spec);
    p.block_tables.data_as<int32_t>()[seq * p.block_tables.size(1) + column] = id;
    return p;
  }
  static std::string error_of(const PagedAttentionArgs& args) {
    try {
      paged_attention(args);
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  }
};

const ProblemSpec kSpec{.context_lens = {40, 100, 7}, .num_q_heads = 8, .num_kv_heads = 2, .head_dim = 128,
                        .dtype = DType::bf16};

TEST_F(CudaErrors, BadBlockIdRaisesAtOnceInCheckedMode) {
  const Problem p = with_table_entry(kSpec, 1, 3, 9999);
  const Problem gpu = p.to(Device::cuda());
  const int64_t num_blocks = p.key_cache.size(0);
  EXPECT_EQ(error_of(gpu.args()), "paged_attention: block_tables[1][3] = 9999: expected a block id in [0, " +
                                      std::to_string(num_blocks) + ")");
  check_cuda_errors();  // raised once, then cleared
  EXPECT_EQ(error_of(gpu.args()), "paged_attention: block_tables[1][3] = 9999: expected a block id in [0, " +
                                      std::to_string(num_blocks) + ")")
      << "the plan-less path and a second call report it again";
}

TEST_F(CudaErrors, NegativeBlockIdRaisesAtTheNextSynchronization) {
  set_cuda_checked(false);
  const Problem gpu = with_table_entry(kSpec, 2, 0, -5).to(Device::cuda());
  paged_attention(gpu.args());  // returns: the error waits on the device
  try {
    check_cuda_errors();
    ADD_FAILURE() << "check_cuda_errors did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("block_tables[2][0] = -5"), std::string::npos) << e.what();
    EXPECT_EQ(e.kind(), ErrorKind::invalid_argument);
  }
  EXPECT_NO_THROW(check_cuda_errors());
  // The output of the good sequences is still computed, and nothing is NaN.
  const Tensor out = gpu.out.to(Device::cpu());
  for (int64_t i = 0; i < out.numel(); ++i) ASSERT_TRUE(std::isfinite(to_f32(out.data_as<bf16>()[i]))) << i;
}

TEST_F(CudaErrors, BadBlockIdWithAPlan) {
  const Problem p = with_table_entry(kSpec, 0, 1, 1 << 30);
  const Problem gpu = p.to(Device::cuda());
  AttentionPlan plan(plan_limits(p), Device::cuda());
  plan.update(kSpec.context_lens, kSpec.block_size);
  PagedAttentionArgs args = gpu.args();
  args.plan = &plan;
  EXPECT_NE(error_of(args).find("block_tables[0][1] = 1073741824"), std::string::npos);
}

TEST_F(CudaErrors, ContextLengthsTheTableCannotAddress) {
  for (int32_t bad : {0, -3, 100000}) {
    Problem p = make_problem(kSpec);
    p.context_lens.data_as<int32_t>()[1] = bad;
    const Problem gpu = p.to(Device::cuda());
    const std::string message = error_of(gpu.args());
    EXPECT_NE(message.find("context_lens[1] = " + std::to_string(bad) + ": expected a length in [1, "),
              std::string::npos)
        << message;
  }
}

TEST_F(CudaErrors, DeviceLengthsThatDisagreeWithThePlan) {
  const Problem p = make_problem(kSpec);
  const Problem gpu = p.to(Device::cuda());
  AttentionPlan plan(plan_limits(p), Device::cuda());
  std::vector<int32_t> other = kSpec.context_lens;
  other[2] = 5;
  plan.update(other, kSpec.block_size);
  PagedAttentionArgs args = gpu.args();
  args.plan = &plan;
  EXPECT_NE(error_of(args).find("context_lens[2] = 7 on the device but the AttentionPlan was built for 5 tokens"),
            std::string::npos);
}

TEST_F(CudaErrors, HostSideRefusals) {
  {
    const Problem gpu = make_problem({.context_lens = {5}, .head_dim = 48, .dtype = DType::bf16}).to(Device::cuda());
    EXPECT_NE(error_of(gpu.args()).find("head_dim 48 has no CUDA decode kernel"), std::string::npos);
  }
  {
    const Problem gpu = make_problem({.context_lens = {5, 9}, .q_lens = {1, 1}, .dtype = DType::bf16}).to(Device::cuda());
    EXPECT_NE(error_of(gpu.args()).find("query_start is not supported yet"), std::string::npos);
  }
  {
    // A query view one element off a 16-byte boundary.
    const Problem p = make_problem({.context_lens = {5}, .dtype = DType::bf16});
    const Problem gpu = p.to(Device::cuda());
    const Tensor shifted = Tensor::empty({p.query.numel() + 8}, DType::bf16, Device::cuda());
    PagedAttentionArgs args = gpu.args();
    args.query = TensorView(static_cast<bf16*>(shifted.data()) + 1, DType::bf16, p.query.view().sizes(), Device::cuda());
    EXPECT_NE(error_of(args).find("query must start on a 16-byte boundary"), std::string::npos);
  }
  {
    const Problem p = make_problem(kSpec);
    const Problem gpu = p.to(Device::cuda());
    AttentionPlan plan(plan_limits(p), Device::cuda());
    plan.update(std::vector<int32_t>{40, 100}, kSpec.block_size);
    PagedAttentionArgs args = gpu.args();
    args.plan = &plan;
    EXPECT_NE(error_of(args).find("the plan was last updated for 2 sequences"), std::string::npos);
    EXPECT_THROW(plan.update(std::vector<int32_t>{40, 0, 7}, kSpec.block_size), Error);
    EXPECT_THROW(plan.update(std::vector<int32_t>{40, 100, 7, 1}, kSpec.block_size), Error);  // > max_seqs
  }
}

}  // namespace
}  // namespace pagedattn::testing
