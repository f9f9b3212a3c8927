// A decode step (write_kv + paged_attention for two layers, one plan) captured into a CUDA graph and
// replayed: the plan and its buffers are sized up front, so the step allocates and synchronizes nothing.
#include <cuda_runtime_api.h>

#include <cstring>

#include "attention/reference.h"
#include "cuda_test_util.h"

namespace pagedattn::testing {
namespace {

#define EXPECT_CUDA_OK(call) ASSERT_EQ((call), cudaSuccess) << #call

class CudaGraph : public CudaTest {};

TEST_F(CudaGraph, CapturedDecodeStepReplays) {
  // The cache already holds the step's new token (its slot is written again by write_kv in the graph).
  const ProblemSpec spec{.context_lens = {3000, 17, 900, 4096}, .num_q_heads = 32, .num_kv_heads = 8,
                         .head_dim = 128, .dtype = DType::bf16};
  constexpr int kLayers = 2;
  std::vector<Problem> host, gpu;
  for (int layer = 0; layer < kLayers; ++layer) {
    ProblemSpec s = spec;
    s.seed = 10 + layer;
    host.push_back(make_problem(s));
    gpu.push_back(host.back().to(Device::cuda()));
  }
  const int64_t B = spec.num_seqs(), Hkv = spec.num_kv_heads, D = spec.head_dim, bs = spec.block_size;

  // write_kv inputs per layer: the new token's K/V rows, copied out of the cache so the result is unchanged.
  std::vector<Tensor> new_k, new_v, slots;
  for (int layer = 0; layer < kLayers; ++layer) {
    Tensor k = Tensor::empty({B, Hkv, D}, DType::bf16), v = Tensor::empty({B, Hkv, D}, DType::bf16);
    Tensor slot = Tensor::empty({B}, DType::i32);
    const Problem& p = host[layer];
    for (int64_t b = 0; b < B; ++b) {
      const int64_t pos = spec.context_lens[b] - 1;
      const int32_t s = p.block_tables.data_as<int32_t>()[b * p.block_tables.size(1) + pos / bs] * bs + pos % bs;
      slot.data_as<int32_t>()[b] = s;
      std::memcpy(k.data_as<bf16>() + b * Hkv * D, p.key_cache.data_as<bf16>() + s * Hkv * D, Hkv * D * 2);
      std::memcpy(v.data_as<bf16>() + b * Hkv * D, p.value_cache.data_as<bf16>() + s * Hkv * D, Hkv * D * 2);
    }
    new_k.push_back(k.to(Device::cuda()));
    new_v.push_back(v.to(Device::cuda()));
    slots.push_back(slot.to(Device::cuda()));
  }

  cudaStream_t stream = nullptr;
  EXPECT_CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  AttentionPlan plan(plan_limits(host[0]), Device::cuda());
  plan.update(spec.context_lens, bs, stream);
  EXPECT_GT(plan.num_split_seqs(), 0) << "the step should exercise the merge kernel too";

  const auto step = [&] {
    for (int layer = 0; layer < kLayers; ++layer) {
      write_kv({.key = new_k[layer], .value = new_v[layer], .key_cache = gpu[layer].key_cache,
                .value_cache = gpu[layer].value_cache, .slot_mapping = slots[layer], .stream = stream});
      PagedAttentionArgs args = gpu[layer].args();
      args.plan = &plan;
      args.stream = stream;
      paged_attention(args);
    }
  };
  step();  // eagerly once first, as engines do before capturing (modules load, attributes are set)
  EXPECT_CUDA_OK(cudaStreamSynchronize(stream));
  cudaGraph_t graph = nullptr;
  EXPECT_CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  step();
  EXPECT_CUDA_OK(cudaStreamEndCapture(stream, &graph));
  cudaGraphExec_t exec = nullptr;
  EXPECT_CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));

  const Tolerance tol = tolerance_for(DType::bf16);
  for (int replay = 0; replay < 3; ++replay) {
    if (replay == 2) {
      // New queries in the same buffers: the replay must see them.
      for (int layer = 0; layer < kLayers; ++layer) {
        std::mt19937_64 rng(99 + layer);
        fill_uniform(host[layer].query, rng, -1.0f, 1.0f);
        copy(gpu[layer].query, host[layer].query);
      }
    }
    for (int layer = 0; layer < kLayers; ++layer) fill_constant(host[layer].out, 0.0), copy(gpu[layer].out, host[layer].out);
    EXPECT_CUDA_OK(cudaGraphLaunch(exec, stream));
    EXPECT_CUDA_OK(cudaStreamSynchronize(stream));
    check_cuda_errors();
    for (int layer = 0; layer < kLayers; ++layer)
      EXPECT_TRUE(matches_reference(gpu[layer].out.to(Device::cpu()), reference::paged_attention_f64(host[layer].args()), tol))
          << "replay " << replay << " layer " << layer;
  }
  EXPECT_CUDA_OK(cudaGraphExecDestroy(exec));
  EXPECT_CUDA_OK(cudaGraphDestroy(graph));
  EXPECT_CUDA_OK(cudaStreamDestroy(stream));
}

}  // namespace
}  // namespace pagedattn::testing
