// KvCache: the K/V memory of all layers plus the KvCacheManager that hands out its slots. What the engine and
// the Python module hold.
//
// Memory: ONE allocation of [num_layers, 2, num_blocks, block_size, num_kv_heads, head_dim] on the CPU or a
// CUDA device; key(l) and value(l) are layer l's contiguous [num_blocks, block_size, num_kv_heads, head_dim]
// slices, ready for paged_attention / write_kv. All layers share one block-id space, so one block table and
// one slot_mapping per step serve every layer. Zero-filled at construction.
//
// The sequence operations forward to the manager and carry out copy-on-write themselves: when an append must
// copy a shared or cached tail block, KvCache copies it on every layer (K and V) before returning the slots.
//
// Typical step: slots = append(seq, ids) for each scheduled sequence; md = metadata(batch).to(device);
// per layer: write_kv(k, v, key(l), value(l), md.slot_mapping), paged_attention(..., md.block_tables, ...).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "pagedattn/attention_metadata.h"
#include "pagedattn/block_pool.h"
#include "pagedattn/kv_cache_manager.h"
#include "pagedattn/tensor.h"

namespace pagedattn {

struct KvCacheConfig {
  int32_t num_blocks = 0;  // see KvCache::num_blocks_for_budget
  int32_t block_size = 16;
  int32_t num_layers = 1;
  int32_t num_kv_heads = 1;
  int32_t head_dim = 64;
  DType dtype = DType::f16;  // f32, f16 or bf16
  Device device = Device::cpu();
  bool prefix_caching = true;
  BlockHasher block_hasher = xxh3_block_hash;  // tests substitute one that collides
};

class KvCache {
 public:
  // Throws pagedattn::Error on a non-positive size, a non-float dtype, num_blocks * block_size beyond the int32
  // slot range, or when the memory cannot be allocated.
  explicit KvCache(const KvCacheConfig& config);

  // Bytes one block takes over all layers, K and V (config.num_blocks is ignored).
  static size_t bytes_per_block(const KvCacheConfig& config);
  // The most blocks that fit in budget_bytes (capped to the int32 slot range). Throws if not even one fits.
  static int32_t num_blocks_for_budget(const KvCacheConfig& config, size_t budget_bytes);

  const KvCacheConfig& config() const { return config_; }
  TensorView key(int32_t layer) const;    // [num_blocks, block_size, num_kv_heads, head_dim]
  TensorView value(int32_t layer) const;  // likewise
  const Tensor& memory() const { return memory_; }
  KvCacheManager& manager() { return manager_; }
  const KvCacheManager& manager() const { return manager_; }

  // The manager's operations (kv_cache_manager.h), with copy-on-write done here on every layer.
  // append returns the new tokens' slots, or std::nullopt (nothing changed) when blocks run out.
  SeqId add_sequence() { return manager_.add_sequence(); }
  int64_t attach_cached_prefix(SeqId seq, std::span<const TokenId> prompt) {
    return manager_.attach_cached_prefix(seq, prompt);
  }
  std::optional<std::vector<int32_t>> append(SeqId seq, int64_t num_tokens);
  std::optional<std::vector<int32_t>> append(SeqId seq, std::span<const TokenId> tokens);
  SeqId fork(SeqId seq) { return manager_.fork(seq); }
  void rewind(SeqId seq, int64_t num_tokens) { manager_.rewind(seq, num_tokens); }
  void release(SeqId seq) { manager_.release(seq); }

  // Host metadata for one step (see attention_metadata.h); .to(device) moves it.
  AttentionMetadata metadata(std::span<const ScheduledSeq> batch) const {
    return build_attention_metadata(manager_, batch);
  }

  // Copies block src to block dst on every layer, K and V (one cudaMemcpy2DAsync on CUDA).
  void copy_block(const BlockCopy& copy);

  // The cudaStream_t for block copies on CUDA (nullptr = the default stream).
  void set_stream(void* stream) { stream_ = stream; }

 private:
  std::optional<std::vector<int32_t>> finish_append(std::optional<AppendResult> result);
  TensorView layer_slice(int32_t layer, int32_t which, const char* name) const;

  KvCacheConfig config_;
  KvCacheManager manager_;  // before memory_: it checks num_blocks and the slot range before anything is allocated
  Tensor memory_;
  void* stream_ = nullptr;
};

}  // namespace pagedattn
