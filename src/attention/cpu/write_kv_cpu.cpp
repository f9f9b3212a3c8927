// CPU write_kv: scatter each token's K and V rows into their cache slots (slot -1 = padding, skipped).
// Cache and input share the dtype, so a row is a plain byte copy; memcpy is libc's vectorized copy.
#include <cstring>

#include "attention/backends.h"

namespace pagedattn::cpu {

void write_kv(const WriteKvArgs& args, const WriteKvShape& shape) {
  const auto* slots = args.slot_mapping.data_as<const int32_t>();
  const size_t elem = dtype_size(args.key.dtype);
  const int64_t num_heads = shape.num_kv_heads, D = shape.head_dim, num_tokens = shape.num_tokens;
  const size_t row_bytes = static_cast<size_t>(D) * elem;
  auto* key_cache = static_cast<char*>(args.key_cache.data);
  auto* value_cache = static_cast<char*>(args.value_cache.data);
  const auto* key = static_cast<const char*>(args.key.data);
  const auto* value = static_cast<const char*>(args.value.data);
  // A step writes one row per token and layer: only large prefills are worth waking the thread team.
  const bool parallel = static_cast<size_t>(num_tokens * num_heads) * row_bytes >= (size_t{1} << 20);
#pragma omp parallel for if (parallel) schedule(static)
  for (int64_t t = 0; t < num_tokens; ++t) {
    if (slots[t] < 0) continue;
    for (int64_t h = 0; h < num_heads; ++h) {
      const size_t dst = static_cast<size_t>((int64_t{slots[t]} * num_heads + h) * D) * elem;
      std::memcpy(key_cache + dst, key + static_cast<size_t>(t * args.key.stride(0) + h * args.key.stride(1)) * elem,
                  row_bytes);
      std::memcpy(value_cache + dst,
                  value + static_cast<size_t>(t * args.value.stride(0) + h * args.value.stride(1)) * elem, row_bytes);
    }
  }
}

}  // namespace pagedattn::cpu
