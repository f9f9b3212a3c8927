#include "pagedattn/kv_cache.h"

#include <algorithm>
#include <limits>

#include "core/check.h"
#include "kv/copy_2d.h"

namespace pagedattn {
namespace {

// Checks every size but num_blocks (the manager checks that, with the slot range).
const KvCacheConfig& check_shape(const char* op, const KvCacheConfig& c) {
  PA_CHECK_ARG(c.block_size > 0, "{}: block_size must be > 0, got {}", op, c.block_size);
  PA_CHECK_ARG(c.num_layers > 0, "{}: num_layers must be > 0, got {}", op, c.num_layers);
  PA_CHECK_ARG(c.num_kv_heads > 0, "{}: num_kv_heads must be > 0, got {}", op, c.num_kv_heads);
  PA_CHECK_ARG(c.head_dim > 0, "{}: head_dim must be > 0, got {}", op, c.head_dim);
  PA_CHECK_TYPE(c.dtype == DType::f32 || c.dtype == DType::f16 || c.dtype == DType::bf16,
                "{}: dtype must be float32, float16 or bfloat16, got {}", op, dtype_name(c.dtype));
  return c;
}

// Bytes of one block of one layer's K (or V).
size_t block_plane_bytes(const KvCacheConfig& c) {
  return static_cast<size_t>(c.block_size) * static_cast<size_t>(c.num_kv_heads) * static_cast<size_t>(c.head_dim) *
         dtype_size(c.dtype);
}

}  // namespace

size_t KvCache::bytes_per_block(const KvCacheConfig& config) {
  check_shape("KvCache::bytes_per_block", config);
  return 2 * static_cast<size_t>(config.num_layers) * block_plane_bytes(config);
}

int32_t KvCache::num_blocks_for_budget(const KvCacheConfig& config, size_t budget_bytes) {
  const size_t per_block = bytes_per_block(config);
  const size_t fits = budget_bytes / per_block;
  PA_CHECK_ARG(fits >= 1,
               "KvCache::num_blocks_for_budget: a budget of {} bytes holds no block of {} bytes ({} layers x K,V x {} "
               "tokens x {} kv heads x head_dim {} x {} bytes)",
               budget_bytes, per_block, config.num_layers, config.block_size, config.num_kv_heads, config.head_dim,
               dtype_size(config.dtype));
  const size_t slot_cap = static_cast<size_t>(std::numeric_limits<int32_t>::max() / config.block_size);
  return static_cast<int32_t>(std::min(fits, slot_cap));
}

KvCache::KvCache(const KvCacheConfig& config)
    : config_(check_shape("KvCache", config)),
      manager_(config.num_blocks, config.block_size, config.prefix_caching, config.block_hasher),
      memory_(Tensor::zeros({config.num_layers, 2, config.num_blocks, config.block_size, config.num_kv_heads,
                             config.head_dim},
                            config.dtype, config.device)) {}

TensorView KvCache::layer_slice(int32_t layer, int32_t which, const char* name) const {
  PA_CHECK_ARG(layer >= 0 && layer < config_.num_layers, "KvCache::{}: layer {}: expected a layer in [0, {})", name,
               layer, config_.num_layers);
  const size_t plane = static_cast<size_t>(config_.num_blocks) * block_plane_bytes(config_);
  char* base = static_cast<char*>(memory_.data()) + (2 * static_cast<size_t>(layer) + static_cast<size_t>(which)) * plane;
  return TensorView(base, config_.dtype, {config_.num_blocks, config_.block_size, config_.num_kv_heads, config_.head_dim},
                    config_.device);
}

TensorView KvCache::key(int32_t layer) const { return layer_slice(layer, 0, "key"); }
TensorView KvCache::value(int32_t layer) const { return layer_slice(layer, 1, "value"); }

void KvCache::copy_block(const BlockCopy& copy) {
  for (const BlockId id : {copy.src, copy.dst}) {
    PA_CHECK_ARG(id >= 0 && id < config_.num_blocks, "KvCache::copy_block: block id {}: expected a block id in [0, {})",
                 id, config_.num_blocks);
  }
  if (copy.src == copy.dst) return;
  // The 2 * num_layers planes (K and V of each layer) are equally spaced: one strided copy moves the block in all.
  const size_t block_bytes = block_plane_bytes(config_);
  const size_t plane = static_cast<size_t>(config_.num_blocks) * block_bytes;
  char* base = static_cast<char*>(memory_.data());
  kv::copy_2d(base + static_cast<size_t>(copy.dst) * block_bytes, plane, base + static_cast<size_t>(copy.src) * block_bytes,
              plane, block_bytes, 2 * static_cast<size_t>(config_.num_layers), config_.device.is_cpu(), stream_);
}

std::optional<std::vector<int32_t>> KvCache::finish_append(std::optional<AppendResult> result) {
  if (!result) return std::nullopt;
  if (result->copy) copy_block(*result->copy);
  return std::move(result->slots);
}

std::optional<std::vector<int32_t>> KvCache::append(SeqId seq, int64_t num_tokens) {
  return finish_append(manager_.append(seq, num_tokens));
}

std::optional<std::vector<int32_t>> KvCache::append(SeqId seq, std::span<const TokenId> tokens) {
  return finish_append(manager_.append(seq, tokens));
}

}  // namespace pagedattn
