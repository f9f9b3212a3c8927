// AttentionPlan: host planning (split_planner) plus the device buffers that make a planned decode step
// allocation-free and graph-capturable.
#include <algorithm>
#include <cstring>
#include <numeric>

#include "attention/cuda/attention_plan_impl.h"
#include "attention/cuda/scoped_device.h"
#include "attention/cuda/split_planner.h"
#include "core/check.h"
#include "core/cuda_check.h"

namespace pagedattn {
namespace {

size_t align_up(size_t n) { return (n + 255) / 256 * 256; }

}  // namespace

AttentionPlan::AttentionPlan(const AttentionPlanLimits& limits, Device device) : impl_(std::make_unique<Impl>()) {
  const char* op = "AttentionPlan";
  PA_CHECK_ARG(device.is_cuda(), "{}: plans are for CUDA devices, got {}", op, to_string(device));
  PA_CHECK_ARG(limits.max_seqs > 0 && limits.max_blocks_per_seq > 0,
               "{}: max_seqs and max_blocks_per_seq must be > 0, got {} and {}", op, limits.max_seqs,
               limits.max_blocks_per_seq);
  PA_CHECK_ARG(limits.num_kv_heads > 0 && limits.num_q_heads > 0 && limits.num_q_heads % limits.num_kv_heads == 0,
               "{}: num_q_heads ({}) must be a positive multiple of num_kv_heads ({})", op, limits.num_q_heads,
               limits.num_kv_heads);
  PA_CHECK_ARG(limits.head_dim > 0 && limits.head_dim % 8 == 0, "{}: head_dim must be a positive multiple of 8, got {}",
               op, limits.head_dim);
  Impl& p = *impl_;
  p.limits = limits;
  p.device = device;
  cuda::ScopedDevice guard(device.index);
  int sms = 0;
  PA_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device.index));
  const cuda::SplitTargets targets = cuda::split_targets(sms);
  p.target_ctas = targets.target_ctas;
  p.unsplit_ctas = targets.unsplit_ctas;
  p.ctas_per_item = cuda::decode_ctas_per_item(limits.num_kv_heads, limits.num_q_heads / limits.num_kv_heads);
  // Without splits every sequence has ceil(pages / kMaxItemPages) items; with splits the planner keeps
  // items * ctas_per_item within target_ctas.
  p.item_capacity = limits.max_seqs * ((limits.max_blocks_per_seq + cuda::kMaxItemPages - 1) / cuda::kMaxItemPages) +
                    p.target_ctas;

  const size_t items_bytes = align_up(p.item_capacity * sizeof(cuda::DecodeWorkItem));
  const size_t seq_bytes = align_up(limits.max_seqs * sizeof(int32_t));
  p.upload_bytes = items_bytes + 3 * seq_bytes;
  const size_t out_bytes = align_up(p.item_capacity * limits.num_q_heads * limits.head_dim * sizeof(float));
  const size_t lse_bytes = align_up(p.item_capacity * limits.num_q_heads * sizeof(float));
  PA_CUDA_CHECK(cudaMalloc(&p.device_memory, p.upload_bytes + out_bytes + lse_bytes));
  auto* base = static_cast<char*>(p.device_memory);
  p.items = reinterpret_cast<cuda::DecodeWorkItem*>(base);
  p.partial_begin = reinterpret_cast<int32_t*>(base + items_bytes);
  p.partial_count = reinterpret_cast<int32_t*>(base + items_bytes + seq_bytes);
  p.planned_lens = reinterpret_cast<int32_t*>(base + items_bytes + 2 * seq_bytes);
  p.partial_out = reinterpret_cast<float*>(base + p.upload_bytes);
  p.partial_lse = reinterpret_cast<float*>(base + p.upload_bytes + out_bytes);
  PA_CUDA_CHECK(cudaMallocHost(&p.staging, p.upload_bytes));
  PA_CUDA_CHECK(cudaEventCreateWithFlags(&p.uploaded, cudaEventDisableTiming));
}

AttentionPlan::~AttentionPlan() {
  if (!impl_) return;
  // No throwing from a destructor: errors here can only be a context already torn down.
  if (impl_->uploaded) {
    cudaEventSynchronize(impl_->uploaded);
    cudaEventDestroy(impl_->uploaded);
  }
  if (impl_->staging) cudaFreeHost(impl_->staging);
  if (impl_->device_memory) cudaFree(impl_->device_memory);
}

AttentionPlan::AttentionPlan(AttentionPlan&&) noexcept = default;
AttentionPlan& AttentionPlan::operator=(AttentionPlan&&) noexcept = default;

void AttentionPlan::update(std::span<const int32_t> context_lens, int64_t block_size, void* stream) {
  const char* op = "AttentionPlan::update";
  Impl& p = *impl_;
  const int64_t num_seqs = static_cast<int64_t>(context_lens.size());
  PA_CHECK_ARG(num_seqs <= p.limits.max_seqs, "{}: {} sequences exceed the plan's max_seqs {}", op, num_seqs,
               p.limits.max_seqs);
  PA_CHECK_ARG(block_size > 0, "{}: block_size must be > 0, got {}", op, block_size);
  const int64_t max_len = p.limits.max_blocks_per_seq * block_size;
  for (int64_t b = 0; b < num_seqs; ++b) {
    PA_CHECK_ARG(context_lens[b] >= 1 && context_lens[b] <= max_len,
                 "{}: context_lens[{}] = {}: expected a length in [1, {}] (max_blocks_per_seq {} x block_size {})",
                 op, b, context_lens[b], max_len, p.limits.max_blocks_per_seq, block_size);
  }
  const cuda::SplitPlan plan = cuda::plan_splits({.context_lens = context_lens,
                                                  .block_size = block_size,
                                                  .ctas_per_item = p.ctas_per_item,
                                                  .target_ctas = p.target_ctas,
                                                  .unsplit_ctas = p.unsplit_ctas});
  PA_CHECK(static_cast<int64_t>(plan.items.size()) <= p.item_capacity, ErrorKind::runtime,
           "{}: {} work items exceed the plan's capacity {} (a planner bug)", op, plan.items.size(), p.item_capacity);

  cuda::ScopedDevice guard(p.device.index);
  PA_CUDA_CHECK(cudaEventSynchronize(p.uploaded));  // the previous upload has left the staging buffer
  // Staging mirrors the device layout: items | partial_begin | partial_count | planned_lens.
  auto* staging = static_cast<char*>(p.staging);
  const auto copy_seq_array = [&](const int32_t* device_array, const int32_t* values) {
    const size_t offset = reinterpret_cast<const char*>(device_array) - static_cast<const char*>(p.device_memory);
    std::memcpy(staging + offset, values, num_seqs * sizeof(int32_t));
  };
  std::memcpy(staging, plan.items.data(), plan.items.size() * sizeof(cuda::DecodeWorkItem));
  copy_seq_array(p.partial_begin, plan.partial_begin.data());
  copy_seq_array(p.partial_count, plan.partial_count.data());
  copy_seq_array(p.planned_lens, context_lens.data());
  const auto s = static_cast<cudaStream_t>(stream);
  PA_CUDA_CHECK(cudaMemcpyAsync(p.device_memory, p.staging, p.upload_bytes, cudaMemcpyHostToDevice, s));
  PA_CUDA_CHECK(cudaEventRecord(p.uploaded, s));

  p.num_seqs = num_seqs;
  p.block_size = block_size;
  p.num_items = static_cast<int64_t>(plan.items.size());
  p.num_split_seqs = std::count_if(plan.partial_count.begin(), plan.partial_count.end(), [](int32_t n) { return n > 1; });
  p.chunk_pages = plan.chunk_pages;
  p.total_context = std::accumulate(context_lens.begin(), context_lens.end(), int64_t{0});
  const bool regular = std::all_of(context_lens.begin(), context_lens.end(), [&](int32_t len) {
    return (len + block_size - 1) / block_size == (context_lens[0] + block_size - 1) / block_size;
  });
  p.uniform_splits = regular && num_seqs > 0 ? plan.partial_count[0] : 0;
}

int64_t AttentionPlan::num_work_items() const { return impl_->num_items; }
int64_t AttentionPlan::num_split_seqs() const { return impl_->num_split_seqs; }
const AttentionPlan::Impl& AttentionPlan::impl() const { return *impl_; }

}  // namespace pagedattn
