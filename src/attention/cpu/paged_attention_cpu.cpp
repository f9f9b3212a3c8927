// CPU backend entry points: plan the call, run its work items on every core (OpenMP), merge the splits.
#include <omp.h>

#include <exception>
#include <vector>

#include "attention/backends.h"
#include "attention/cpu/attention_kernel.h"
#include "attention/cpu/attention_plan.h"

namespace pagedattn::cpu {
namespace {

KernelParams kernel_params(const PagedAttentionArgs& a, const AttentionShape& s) {
  KernelParams p;
  p.dtype = a.query.dtype;
  p.query = a.query.data;
  p.query_strides[0] = a.query.stride(0);
  p.query_strides[1] = a.query.stride(1);
  p.out = a.out.data;
  p.out_strides[0] = a.out.stride(0);
  p.out_strides[1] = a.out.stride(1);
  p.key_cache = a.key_cache.data;
  p.value_cache = a.value_cache.data;
  p.block_tables = a.block_tables.data_as<const int32_t>();
  p.context_lens = a.context_lens.data_as<const int32_t>();
  p.query_start = a.query_start ? a.query_start->data_as<const int32_t>() : nullptr;
  p.max_blocks_per_seq = s.max_blocks_per_seq;
  p.block_size = s.block_size;
  p.num_q_heads = s.num_q_heads;
  p.num_kv_heads = s.num_kv_heads;
  p.head_dim = s.head_dim;
  p.scale = s.scale;
  p.causal = a.causal;
  return p;
}

}  // namespace

void paged_attention(const PagedAttentionArgs& args, const AttentionShape& shape) {
  const KernelParams params = kernel_params(args, shape);
  PlanOptions options;
  options.num_threads = omp_get_max_threads();
  const WorkPlan plan = make_plan(shape, params.context_lens, params.query_start, args.causal, options);
  std::vector<float> partials(static_cast<size_t>(plan.partial_floats));
  const auto num_items = static_cast<int64_t>(plan.items.size());
  const auto num_splits = static_cast<int64_t>(plan.splits.size());

  // An exception must not leave an OpenMP region: keep the first and rethrow it after the join.
  std::exception_ptr error;
  auto guarded = [&](auto&& work) {
    try {
      work();
    } catch (...) {
#pragma omp critical(pagedattn_cpu_error)
      if (!error) error = std::current_exception();
    }
  };
#pragma omp parallel if (num_items > 1)
  {
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < num_items; ++i)
      guarded([&] { run_work_item(params, plan.items[static_cast<size_t>(i)], partials.data()); });
    // The implicit barrier above: every split is done before its group merges.
#pragma omp for schedule(dynamic, 1)
    for (int64_t g = 0; g < num_splits; ++g)
      guarded([&] { merge_split_group(params, plan.splits[static_cast<size_t>(g)], partials.data()); });
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace pagedattn::cpu
