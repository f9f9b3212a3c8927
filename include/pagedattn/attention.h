// paged_attention and write_kv: attention that reads K/V in place from a paged cache.
//
//   query        [T, Hq, D]                        T = query rows of all sequences together
//   key_cache    [num_blocks, block_size, Hkv, D]  ("NHD" pages; value_cache likewise)
//   block_tables int32 [B, max_blocks_per_seq]     logical block -> physical block
//   context_lens int32 [B]                         tokens in the cache per sequence, this step's included
//   query_start  int32 [B+1] (optional)            sequence b owns rows query_start[b]..query_start[b+1]
//   out          [T, Hq, D]
//
// Row j of sequence b (q_len rows) sits at position context_lens[b] - q_len + j and, when causal, attends
// to positions 0..that (bottom-right aligned); without causal it attends to all context_lens[b] positions.
// Without query_start every sequence has exactly one row (decode: T == B). Query head h reads KV head
// h / (Hq / Hkv). Position p of sequence b lives in block block_tables[b][p / block_size], slot
// p % block_size; table entries past the live blocks are ignored.
#pragma once

#include <cstdint>
#include <optional>

#include "pagedattn/tensor.h"

namespace pagedattn {

struct PagedAttentionArgs {
  TensorView out;
  TensorView query;
  TensorView key_cache;
  TensorView value_cache;
  TensorView block_tables;
  TensorView context_lens;
  std::optional<TensorView> query_start;
  std::optional<float> scale;  // default 1/sqrt(D)
  bool causal = true;
  void* stream = nullptr;  // cudaStream_t for CUDA tensors; nullptr = the default stream
};

//   key, value   [T, Hkv, D]
//   slot_mapping int32 [T]: slot = block * block_size + offset; -1 skips the row (padding)
struct WriteKvArgs {
  TensorView key;
  TensorView value;
  TensorView key_cache;
  TensorView value_cache;
  TensorView slot_mapping;
  void* stream = nullptr;
};

// Validate once, then run the backend of the tensors' device. Throws pagedattn::Error on bad input.
void paged_attention(const PagedAttentionArgs& args);
void write_kv(const WriteKvArgs& args);

// The sizes that validation derives from the arguments; every backend works from these.
struct AttentionShape {
  int64_t num_seqs = 0;            // B
  int64_t num_tokens = 0;          // T
  int64_t num_q_heads = 0;         // Hq
  int64_t num_kv_heads = 0;        // Hkv
  int64_t head_dim = 0;            // D
  int64_t num_blocks = 0;
  int64_t block_size = 0;
  int64_t max_blocks_per_seq = 0;
  float scale = 0.0f;
  bool varlen = false;             // query_start given
  int64_t group_size() const { return num_q_heads / num_kv_heads; }
};

struct WriteKvShape {
  int64_t num_tokens = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t num_blocks = 0;
  int64_t block_size = 0;
};

// The one validation routine used by every entry point: ranks, shapes, dtypes, devices, strides,
// Hq % Hkv, and, for metadata on the host, its values (lengths, table coverage, block ids, query_start).
// Metadata already on a GPU is not copied back to be checked: the CUDA kernels guard every block id.
AttentionShape validate_paged_attention(const PagedAttentionArgs& args);
WriteKvShape validate_write_kv(const WriteKvArgs& args);

}  // namespace pagedattn
