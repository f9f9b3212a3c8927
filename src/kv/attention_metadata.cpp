#include "pagedattn/attention_metadata.h"

#include <algorithm>
#include <limits>
#include <unordered_map>

#include "core/check.h"
#include "kv/copy_2d.h"

namespace pagedattn {
namespace {

struct BatchSize {
  int64_t num_seqs = 0;
  int64_t num_tokens = 0;
  int64_t max_blocks = 0;  // the longest block table
};

// Checks the batch against the manager (known, distinct sequences; num_new_tokens within each) and sizes it.
BatchSize measure(const char* op, const KvCacheManager& manager, std::span<const ScheduledSeq> batch) {
  BatchSize size;
  size.num_seqs = std::ssize(batch);
  std::unordered_map<SeqId, size_t> first_index;
  for (size_t b = 0; b < batch.size(); ++b) {
    const ScheduledSeq& entry = batch[b];
    PA_CHECK_ARG(manager.contains(entry.seq), "{}: batch[{}].seq = {}: unknown sequence (never added, or already released)",
                 op, b, entry.seq);
    const auto [earlier, inserted] = first_index.emplace(entry.seq, b);
    PA_CHECK_ARG(inserted, "{}: batch[{}].seq = {} repeats batch[{}]: a sequence may appear once per step", op, b,
                 entry.seq, earlier->second);
    const SequenceCacheState& s = manager.sequence(entry.seq);
    PA_CHECK_ARG(entry.num_new_tokens >= 0 && entry.num_new_tokens <= s.num_tokens,
                 "{}: batch[{}].num_new_tokens = {}: expected 0 to the {} tokens of sequence {}", op, b,
                 entry.num_new_tokens, s.num_tokens, entry.seq);
    size.num_tokens += entry.num_new_tokens;
    size.max_blocks = std::max<int64_t>(size.max_blocks, std::ssize(s.blocks));
  }
  PA_CHECK_ARG(size.num_tokens <= std::numeric_limits<int32_t>::max(),
               "{}: the batch has {} new tokens, more than int32 query_start can index", op, size.num_tokens);
  return size;
}

// The one routine that writes the four arrays; `width` is the row length of block_tables.
void fill(const KvCacheManager& manager, std::span<const ScheduledSeq> batch, int64_t width, int32_t* block_tables,
          int32_t* context_lens, int32_t* query_start, int32_t* slot_mapping) {
  const int64_t bs = manager.block_size();
  int64_t row = 0;
  query_start[0] = 0;
  for (size_t b = 0; b < batch.size(); ++b) {
    const SequenceCacheState& s = manager.sequence(batch[b].seq);
    int32_t* table = block_tables + static_cast<int64_t>(b) * width;
    std::fill(std::copy(s.blocks.begin(), s.blocks.end(), table), table + width, -1);
    context_lens[b] = static_cast<int32_t>(s.num_tokens);
    for (int64_t p = s.num_tokens - batch[b].num_new_tokens; p < s.num_tokens; ++p) {
      slot_mapping[row++] = static_cast<int32_t>(s.blocks[static_cast<size_t>(p / bs)] * bs + p % bs);
    }
    query_start[b + 1] = static_cast<int32_t>(row);
  }
}

// Offsets of the packed buffer's regions, each rounded up to 16 int32 (64 bytes) for aligned vector loads.
int64_t align16(int64_t n) { return (n + 15) / 16 * 16; }

}  // namespace

AttentionMetadata AttentionMetadata::to(Device device) const {
  return {block_tables.to(device), context_lens.to(device), query_start.to(device), slot_mapping.to(device)};
}

AttentionMetadata build_attention_metadata(const KvCacheManager& manager, std::span<const ScheduledSeq> batch) {
  const BatchSize size = measure("build_attention_metadata", manager, batch);
  const int64_t width = std::max<int64_t>(size.max_blocks, 1);
  AttentionMetadata md{Tensor::empty({size.num_seqs, width}, DType::i32), Tensor::empty({size.num_seqs}, DType::i32),
                       Tensor::empty({size.num_seqs + 1}, DType::i32), Tensor::empty({size.num_tokens}, DType::i32)};
  fill(manager, batch, width, md.block_tables.data_as<int32_t>(), md.context_lens.data_as<int32_t>(),
       md.query_start.data_as<int32_t>(), md.slot_mapping.data_as<int32_t>());
  return md;
}

AttentionMetadataBuffers::AttentionMetadataBuffers(int32_t max_num_seqs, int64_t max_num_tokens,
                                                   int32_t max_blocks_per_seq, Device device)
    : max_num_seqs_(max_num_seqs),
      max_num_tokens_(max_num_tokens),
      max_blocks_per_seq_(max_blocks_per_seq),
      device_(device) {
  PA_CHECK_ARG(max_num_seqs > 0, "AttentionMetadataBuffers: max_num_seqs must be > 0, got {}", max_num_seqs);
  PA_CHECK_ARG(max_num_tokens > 0 && max_num_tokens <= std::numeric_limits<int32_t>::max(),
               "AttentionMetadataBuffers: max_num_tokens must be in [1, 2^31), got {}", max_num_tokens);
  PA_CHECK_ARG(max_blocks_per_seq > 0, "AttentionMetadataBuffers: max_blocks_per_seq must be > 0, got {}",
               max_blocks_per_seq);
  const int64_t total = align16(max_num_seqs) + align16(max_num_seqs + 1) + align16(max_num_tokens) +
                        static_cast<int64_t>(max_num_seqs) * max_blocks_per_seq;
  host_ = Tensor::zeros({total}, DType::i32);
  if (!device.is_cpu()) device_buffer_ = Tensor::zeros({total}, DType::i32, device);
}

AttentionMetadataView AttentionMetadataBuffers::build(const KvCacheManager& manager,
                                                      std::span<const ScheduledSeq> batch, void* stream) {
  const char* op = "AttentionMetadataBuffers::build";
  const BatchSize size = measure(op, manager, batch);
  PA_CHECK_ARG(size.num_seqs <= max_num_seqs_, "{}: {} sequences exceed max_num_seqs {}", op, size.num_seqs,
               max_num_seqs_);
  PA_CHECK_ARG(size.num_tokens <= max_num_tokens_, "{}: {} new tokens exceed max_num_tokens {}", op,
               size.num_tokens, max_num_tokens_);
  PA_CHECK_ARG(size.max_blocks <= max_blocks_per_seq_, "{}: a sequence holds {} blocks, more than max_blocks_per_seq {}",
               op, size.max_blocks, max_blocks_per_seq_);

  const int64_t context_lens = 0;
  const int64_t query_start = context_lens + align16(max_num_seqs_);
  const int64_t slot_mapping = query_start + align16(max_num_seqs_ + 1);
  const int64_t block_tables = slot_mapping + align16(max_num_tokens_);
  int32_t* host = host_.data_as<int32_t>();
  fill(manager, batch, max_blocks_per_seq_, host + block_tables, host + context_lens, host + query_start,
       host + slot_mapping);

  int32_t* out = host;
  if (!device_.is_cpu()) {
    // The batch's bytes form one prefix: block_tables, last, is filled row by row from its start.
    const size_t used = static_cast<size_t>(block_tables + size.num_seqs * max_blocks_per_seq_) * sizeof(int32_t);
    out = device_buffer_.data_as<int32_t>();
    kv::copy_2d(out, used, host, used, used, 1, false, stream);
  }
  return {TensorView(out + block_tables, DType::i32, {size.num_seqs, max_blocks_per_seq_}, device_),
          TensorView(out + context_lens, DType::i32, {size.num_seqs}, device_),
          TensorView(out + query_start, DType::i32, {size.num_seqs + 1}, device_),
          TensorView(out + slot_mapping, DType::i32, {size.num_tokens}, device_)};
}

}  // namespace pagedattn
