// One step's attention metadata, built on the host from the KvCacheManager's block tables in exactly the
// form paged_attention and write_kv take (attention.h), copied to the device once per step and used by every
// layer (one block-id space for all layers).
//
// For a batch of scheduled (sequence, num_new_tokens) pairs, whose new tokens were already appended:
//   block_tables int32 [B, max_blocks_per_seq]  sequence b's blocks, then -1
//   context_lens int32 [B]                      the sequence's tokens, this step's new ones included
//   query_start  int32 [B+1]                    sequence b's new tokens are query rows query_start[b]..[b+1]
//   slot_mapping int32 [T]                      the slot of each query row's token (T = sum of num_new_tokens)
// The new tokens of a sequence are its last num_new_tokens tokens, at positions context_len - q_len ...
#pragma once

#include <cstdint>
#include <span>

#include "pagedattn/kv_cache_manager.h"
#include "pagedattn/tensor.h"

namespace pagedattn {

struct ScheduledSeq {
  SeqId seq = 0;
  int64_t num_new_tokens = 0;  // 0 <= num_new_tokens <= the sequence's token count
};

// Non-owning views of one step's metadata (in AttentionMetadata's tensors or AttentionMetadataBuffers).
struct AttentionMetadataView {
  TensorView block_tables;
  TensorView context_lens;
  TensorView query_start;
  TensorView slot_mapping;
};

// Owning metadata sized exactly to one batch: max_blocks_per_seq is the longest table in the batch (at least 1).
struct AttentionMetadata {
  Tensor block_tables;
  Tensor context_lens;
  Tensor query_start;
  Tensor slot_mapping;

  AttentionMetadataView view() const { return {block_tables, context_lens, query_start, slot_mapping}; }
  AttentionMetadata to(Device device) const;  // a copy of each tensor on `device`
};

// Host tensors for `batch`. Throws pagedattn::Error on an unknown or repeated sequence or a num_new_tokens
// outside [0, the sequence's token count].
AttentionMetadata build_attention_metadata(const KvCacheManager& manager, std::span<const ScheduledSeq> batch);

// Fixed-capacity metadata buffers, allocated once (host staging + device), for an engine that steps many
// times and may capture a step in a CUDA graph: every build() writes the same addresses, and the table width
// is always max_blocks_per_seq. One host-to-device copy per build, from pageable host memory: the copy has
// taken the bytes when build() returns, so the next build may overwrite the host buffer at once.
class AttentionMetadataBuffers {
 public:
  AttentionMetadataBuffers(int32_t max_num_seqs, int64_t max_num_tokens, int32_t max_blocks_per_seq,
                           Device device = Device::cpu());

  // Fills the buffers for `batch` and copies them to the device (cudaMemcpyAsync on `stream`, a
  // cudaStream_t; nullptr = the default stream). The views cover the batch's B sequences and T tokens.
  // Throws pagedattn::Error as build_attention_metadata does, and when the batch exceeds the capacity.
  AttentionMetadataView build(const KvCacheManager& manager, std::span<const ScheduledSeq> batch,
                              void* stream = nullptr);

  int32_t max_num_seqs() const { return max_num_seqs_; }
  int64_t max_num_tokens() const { return max_num_tokens_; }
  int32_t max_blocks_per_seq() const { return max_blocks_per_seq_; }

 private:
  int32_t max_num_seqs_;
  int64_t max_num_tokens_;
  int32_t max_blocks_per_seq_;
  // One packed int32 buffer: [context_lens | query_start | slot_mapping | block_tables], block_tables last so
  // that a batch's used bytes form one prefix and one copy moves them.
  Tensor host_;
  Tensor device_buffer_;  // empty on the CPU: the views point into host_
  Device device_;
};

}  // namespace pagedattn
