#include "attention/cuda/prefill.h"

#include <algorithm>
#include <limits>

#include "attention/cuda/attention_plan_impl.h"
#include "core/check.h"
#include "core/cuda_check.h"

namespace pagedattn::cuda {

void launch_varlen_prefill(const PrefillLauncher& launcher, const PagedAttentionArgs& a, const AttentionShape& s,
                           cudaStream_t stream) {
  const char* op = "paged_attention";
  PA_CHECK_ARG(static_cast<bool>(launcher), "{}: head_dim {} has no CUDA prefill kernel: expected one of 64, 80, 96, 128, 256",
               op, s.head_dim);
  const int64_t group = s.group_size();
  const int64_t capacity = prefill_item_capacity(s.num_tokens, s.num_seqs, group, launcher.tile_rows);
  PA_CHECK_ARG(capacity * s.num_kv_heads <= std::numeric_limits<int32_t>::max() &&
                   s.num_tokens * group <= std::numeric_limits<int32_t>::max(),
               "{}: {} query rows x {} heads per KV head exceed the CUDA prefill kernel's int32 work indices", op,
               s.num_tokens, group);
  int device = 0;
  PA_CUDA_CHECK(cudaGetDevice(&device));
  PrefillParams p{};
  static_cast<PagedParams&>(p) = paged_params(a, s, device);
  p.causal = a.causal;
  // A plan (checked by the caller to be of this call's sequences) brings the host copy of their lengths.
  const int64_t mean_context = a.plan != nullptr ? a.plan->impl().total_context / std::max<int64_t>(s.num_seqs, 1) : 0;
  p.long_units = prefill_units_are_long(s.num_tokens, s.num_seqs, mean_context);

  // Scratch: items | num_items | next_unit.
  const size_t items_bytes = static_cast<size_t>(capacity) * sizeof(PrefillWorkItem);
  void* scratch = nullptr;
  PA_CUDA_CHECK(cudaMallocAsync(&scratch, items_bytes + 2 * sizeof(int32_t), stream));
  p.work.items = static_cast<PrefillWorkItem*>(scratch);
  p.work.num_items = reinterpret_cast<int32_t*>(static_cast<char*>(scratch) + items_bytes);
  p.work.next_unit = p.work.num_items + 1;

  PrefillTilesParams t{};
  t.query_start = p.query_start;
  t.context_lens = p.context_lens;
  t.num_seqs = static_cast<int32_t>(s.num_seqs);
  t.num_tokens = p.num_tokens;
  t.group_size = p.group_size;
  t.tile_rows = launcher.tile_rows;
  t.max_context_len = p.max_context_len;
  t.capacity = static_cast<int32_t>(capacity);
  t.work = p.work;
  t.error = p.error;
  launch_prefill_tiles(t, stream);

  int major = 0;
  PA_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  launcher.launch(p, capacity * s.num_kv_heads, stream, /*pdl=*/major >= 9);
  PA_CUDA_CHECK(cudaFreeAsync(scratch, stream));
}

}  // namespace pagedattn::cuda
