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
#include <memory>
#include <optional>
#include <span>

#include "pagedattn/tensor.h"

namespace pagedattn {

class AttentionPlan;  // CUDA builds: see below

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
  // CUDA decode: this step's split-KV plan (AttentionPlan). nullptr plans from the shapes alone (every
  // sequence taken as long as block_tables allows) and takes scratch memory on the stream. CPU: ignored.
  const AttentionPlan* plan = nullptr;
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

#ifdef PAGEDATTN_WITH_CUDA
// The split-KV work of one CUDA decode step, planned on the host from the step's context lengths and
// reused by every layer's paged_attention call (PagedAttentionArgs::plan). Long sequences are cut into
// page ranges so that the batch fills the GPU with evenly sized CTAs; a log-sum-exp merge joins the
// pieces. All device buffers (work list, partial results) are sized at construction: a call with a plan
// allocates and synchronizes nothing, so a decode step can be captured in a CUDA graph. A replay reads the
// plan's current contents but keeps the grid it was captured with: after an update() that changes
// num_work_items() or num_split_seqs() == 0, capture again.
struct AttentionPlanLimits {
  int64_t max_seqs = 0;            // B of any step
  int64_t max_blocks_per_seq = 0;  // block_tables columns of any step
  int64_t num_q_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
};

class AttentionPlan {
 public:
  AttentionPlan(const AttentionPlanLimits& limits, Device device);
  ~AttentionPlan();
  AttentionPlan(AttentionPlan&&) noexcept;
  AttentionPlan& operator=(AttentionPlan&&) noexcept;

  // Plans a step from the host copy of its context_lens (the values of the device tensor the calls get;
  // the kernels check that they agree) and uploads the plan on `stream` (cudaStream_t; nullptr = default).
  // Throws if a length is < 1 or > max_blocks_per_seq * block_size, or there are more than max_seqs.
  void update(std::span<const int32_t> context_lens, int64_t block_size, void* stream = nullptr);

  int64_t num_work_items() const;  // pieces of sequences; each runs on one CTA per KV head
  int64_t num_split_seqs() const;  // sequences cut into more than one piece

  struct Impl;
  const Impl& impl() const;  // the CUDA backend's view

 private:
  std::unique_ptr<Impl> impl_;
};

// CUDA kernels check the metadata they read from the GPU (block ids inside the cache, lengths the table
// can address, slots inside the cache), skip bad entries without reading out of bounds, and record the
// first one on the device. check_cuda_errors synchronizes `device` and throws that error as a
// pagedattn::Error (the message host validation would give), clearing the record.
void check_cuda_errors(Device device = Device::cuda());
// Checked mode (off by default; tests turn it on): every CUDA paged_attention / write_kv call synchronizes
// its stream and raises a recorded error at once (except while the stream is captured into a graph).
void set_cuda_checked(bool on);
bool cuda_checked();
#endif

}  // namespace pagedattn
