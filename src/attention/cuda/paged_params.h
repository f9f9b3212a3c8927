// The arguments every paged-attention kernel reads, decode and prefill alike: the tensors with their
// strides, the sizes, the softmax scale and the device error word. A plain struct (no CUDA headers) that
// each kernel's Params extends; paged_params() fills it from a validated call.
#pragma once

#include <cstdint>

#include "attention/cuda/device_error.h"
#include "pagedattn/attention.h"

namespace pagedattn::cuda {

// n / d for 0 <= n < 2^31 with a multiply and a shift (d is a runtime block size).
struct FastDivisor {
  uint32_t divisor;
  uint32_t multiplier;
  uint32_t shift;
};

constexpr FastDivisor make_fast_divisor(uint32_t d) {
  uint32_t shift = 0;
  while ((uint64_t{1} << shift) < d) ++shift;
  const uint64_t m = ((uint64_t{1} << 32) * ((uint64_t{1} << shift) - d)) / d + 1;
  return {d, static_cast<uint32_t>(m), shift};
}

// The host twin of the device division, for tests.
constexpr uint32_t fast_divide(uint32_t n, FastDivisor f) {
  const uint32_t hi = static_cast<uint32_t>((uint64_t{n} * f.multiplier) >> 32);
  return static_cast<uint32_t>((uint64_t{hi} + n) >> f.shift);
}

struct PagedParams {
  const void* query;
  int64_t q_stride_token, q_stride_head;
  void* out;
  int64_t o_stride_token, o_stride_head;
  const void* key_cache;
  const void* value_cache;
  const int32_t* block_tables;
  const int32_t* context_lens;
  // Varlen calls: sequence b owns query rows query_start[b] .. query_start[b + 1] (prefill_params.h);
  // nullptr: row b (a decode call).
  const int32_t* query_start;
  int32_t num_tokens, num_q_heads, num_kv_heads, group_size;
  int32_t num_blocks, block_size, max_blocks_per_seq, max_context_len;
  FastDivisor block_div;
  float scale_log2;  // softmax scale * log2(e): scores live in the exp2 domain
  DeviceErrorRecord* error;
};

// The shared arguments of a call that validate_paged_attention accepted, for kernels on `device`.
PagedParams paged_params(const PagedAttentionArgs& args, const AttentionShape& shape, int device);

}  // namespace pagedattn::cuda
