#include "attention/cuda/paged_params.h"

#include <algorithm>
#include <limits>

#include "attention/cuda/device_error_storage.h"

namespace pagedattn::cuda {
namespace {

int32_t to_i32(int64_t v) { return static_cast<int32_t>(std::min<int64_t>(v, std::numeric_limits<int32_t>::max())); }

}  // namespace

PagedParams paged_params(const PagedAttentionArgs& a, const AttentionShape& s, int device) {
  PagedParams p{};
  p.query = a.query.data;
  p.q_stride_token = a.query.stride(0);
  p.q_stride_head = a.query.stride(1);
  p.out = a.out.data;
  p.o_stride_token = a.out.stride(0);
  p.o_stride_head = a.out.stride(1);
  p.key_cache = a.key_cache.data;
  p.value_cache = a.value_cache.data;
  p.block_tables = a.block_tables.data_as<const int32_t>();
  p.context_lens = a.context_lens.data_as<const int32_t>();
  p.query_start = s.varlen ? a.query_start->data_as<const int32_t>() : nullptr;
  p.num_tokens = to_i32(s.num_tokens);
  p.num_q_heads = to_i32(s.num_q_heads);
  p.num_kv_heads = to_i32(s.num_kv_heads);
  p.group_size = to_i32(s.group_size());
  p.num_blocks = to_i32(s.num_blocks);
  p.block_size = to_i32(s.block_size);
  p.max_blocks_per_seq = to_i32(s.max_blocks_per_seq);
  p.max_context_len = to_i32(s.max_blocks_per_seq * s.block_size);
  p.block_div = make_fast_divisor(static_cast<uint32_t>(s.block_size));
  p.scale_log2 = s.scale * 1.4426950408889634f;
  p.error = device_error_record(device);
  return p;
}

}  // namespace pagedattn::cuda
