// The one validation routine of paged_attention and write_kv (DESIGN.md §2): every backend's entry
// point goes through here before any byte of the tensors is read.
#include <cmath>
#include <limits>

#include "core/check.h"
#include "pagedattn/attention.h"

namespace pagedattn {
namespace {

bool is_float(DType t) { return t == DType::f32 || t == DType::f16 || t == DType::bf16; }

void check_rank(const char* op, const char* name, const TensorView& t, int rank, const char* layout) {
  PA_CHECK_ARG(t.ndim == rank, "{}: {} must have rank {} {}, got rank {} with shape {}", op, name, rank, layout,
               t.ndim, t.shape_str());
}

// `anchor` names the tensor whose device the others must share (query, or key for write_kv).
void check_device(const char* op, const char* name, const TensorView& t, const TensorView& anchor,
                  const char* anchor_name) {
  PA_CHECK_ARG(t.device == anchor.device, "{}: {} is on {} but {} is on {}: all tensors must be on one device", op,
               name, to_string(t.device), anchor_name, to_string(anchor.device));
}

void check_dtype(const char* op, const char* name, const TensorView& t, DType expected) {
  PA_CHECK_TYPE(t.dtype == expected, "{}: {} must be {}, got {}", op, name, dtype_name(expected),
                dtype_name(t.dtype));
}

void check_no_null(const char* op, const char* name, const TensorView& t) {
  PA_CHECK_ARG(t.data != nullptr || t.numel() == 0, "{}: {} has a null data pointer", op, name);
}

// Rows may be strided (a slice of a fused QKV tensor), but the head dimension must be dense and no
// stride may be negative.
void check_row_strides(const char* op, const char* name, const TensorView& t) {
  if (t.numel() == 0) return;  // nothing is addressed
  for (int d = 0; d < t.ndim; ++d) {
    PA_CHECK_ARG(t.strides[d] >= 0 || t.shape[d] <= 1, "{}: {} has a negative stride {} in dimension {}", op, name,
                 t.strides[d], d);
  }
  PA_CHECK_ARG(t.size(-1) <= 1 || t.stride(-1) == 1,
               "{}: {} must be contiguous in its last dimension (stride 1), got strides [{}]", op, name,
               fmt::join(std::span(t.strides.data(), static_cast<size_t>(t.ndim)), ", "));
}

void check_contiguous(const char* op, const char* name, const TensorView& t) {
  PA_CHECK_ARG(t.is_contiguous(), "{}: {} must be contiguous, got shape {} with strides [{}]", op, name,
               t.shape_str(), fmt::join(std::span(t.strides.data(), static_cast<size_t>(t.ndim)), ", "));
}

// Shared by paged_attention and write_kv: the two caches agree with each other and with D / Hkv.
void check_caches(const char* op, const TensorView& key_cache, const TensorView& value_cache,
                  const TensorView& anchor, const char* anchor_name) {
  const DType dtype = anchor.dtype;
  check_rank(op, "key_cache", key_cache, 4, "[num_blocks, block_size, num_kv_heads, head_dim]");
  check_rank(op, "value_cache", value_cache, 4, "[num_blocks, block_size, num_kv_heads, head_dim]");
  check_device(op, "key_cache", key_cache, anchor, anchor_name);
  check_device(op, "value_cache", value_cache, anchor, anchor_name);
  check_dtype(op, "key_cache", key_cache, dtype);
  check_dtype(op, "value_cache", value_cache, dtype);
  PA_CHECK_ARG(key_cache.sizes()[0] == value_cache.sizes()[0] && key_cache.sizes()[1] == value_cache.sizes()[1] &&
                   key_cache.sizes()[2] == value_cache.sizes()[2] && key_cache.sizes()[3] == value_cache.sizes()[3],
               "{}: value_cache shape {} must equal key_cache shape {}", op, value_cache.shape_str(),
               key_cache.shape_str());
  check_contiguous(op, "key_cache", key_cache);
  check_contiguous(op, "value_cache", value_cache);
  check_no_null(op, "key_cache", key_cache);
  check_no_null(op, "value_cache", value_cache);
  PA_CHECK_ARG(key_cache.size(1) > 0, "{}: block_size (key_cache dimension 1) must be > 0, got {}", op,
               key_cache.size(1));
  PA_CHECK_ARG(key_cache.size(2) > 0, "{}: num_kv_heads (key_cache dimension 2) must be > 0, got {}", op,
               key_cache.size(2));
  PA_CHECK_ARG(key_cache.size(3) > 0, "{}: head_dim (key_cache dimension 3) must be > 0, got {}", op,
               key_cache.size(3));
  // Slot ids (slot_mapping, and the kernels' row indices) are int32.
  PA_CHECK_ARG(key_cache.size(0) * key_cache.size(1) <= std::numeric_limits<int32_t>::max(),
               "{}: key_cache holds {} blocks x {} slots = {}: expected at most 2^31 - 1 slots (int32 slot ids)", op,
               key_cache.size(0), key_cache.size(1), key_cache.size(0) * key_cache.size(1));
  // The CUDA kernels address a slot's row with 32-bit byte offsets (slot x slot bytes in one widening multiply).
  const int64_t slot_bytes = key_cache.size(2) * key_cache.size(3) * static_cast<int64_t>(dtype_size(dtype));
  PA_CHECK_ARG(slot_bytes <= std::numeric_limits<uint32_t>::max(),
               "{}: a key_cache slot holds {} KV heads x {} dims x {} bytes = {} bytes: expected at most 2^32 - 1",
               op, key_cache.size(2), key_cache.size(3), dtype_size(dtype), slot_bytes);
}

void check_metadata_values(const AttentionShape& s, const PagedAttentionArgs& a) {
  const char* op = "paged_attention";
  const auto* ctx = a.context_lens.data_as<const int32_t>();
  const auto* table = a.block_tables.data_as<const int32_t>();
  const int32_t* qs = a.query_start ? a.query_start->data_as<const int32_t>() : nullptr;
  if (qs) {
    PA_CHECK_ARG(qs[0] == 0, "{}: query_start[0] must be 0, got {}", op, qs[0]);
    PA_CHECK_ARG(qs[s.num_seqs] == s.num_tokens, "{}: query_start[{}] must equal the number of query rows {}, got {}",
                 op, s.num_seqs, s.num_tokens, qs[s.num_seqs]);
  }
  for (int64_t b = 0; b < s.num_seqs; ++b) {
    const int64_t len = ctx[b];
    PA_CHECK_ARG(len >= 0, "{}: context_lens[{}] must be >= 0, got {}", op, b, len);
    int64_t q_len = 1;
    if (qs) {
      PA_CHECK_ARG(qs[b + 1] >= qs[b], "{}: query_start must be non-decreasing: query_start[{}]={} < query_start[{}]={}",
                   op, b + 1, qs[b + 1], b, qs[b]);
      q_len = qs[b + 1] - qs[b];
    }
    PA_CHECK_ARG(q_len <= len, "{}: sequence {} has {} query rows but context_lens[{}] = {}: expected q_len <= context_len",
                 op, b, q_len, b, len);
    const int64_t live_blocks = (len + s.block_size - 1) / s.block_size;
    PA_CHECK_ARG(live_blocks <= s.max_blocks_per_seq,
                 "{}: context_lens[{}] = {} needs {} blocks of {} tokens but block_tables has {} columns", op, b, len,
                 live_blocks, s.block_size, s.max_blocks_per_seq);
    const int32_t* row = table + b * s.max_blocks_per_seq;
    for (int64_t i = 0; i < live_blocks; ++i) {
      PA_CHECK_ARG(row[i] >= 0 && row[i] < s.num_blocks, "{}: block_tables[{}][{}] = {}: expected a block id in [0, {})",
                   op, b, i, row[i], s.num_blocks);
    }
  }
}

}  // namespace

AttentionShape validate_paged_attention(const PagedAttentionArgs& a) {
  const char* op = "paged_attention";
  PA_CHECK_TYPE(is_float(a.query.dtype), "{}: query must be float32, float16 or bfloat16, got {}", op,
                dtype_name(a.query.dtype));
  check_rank(op, "query", a.query, 3, "[num_tokens, num_heads, head_dim]");
  check_caches(op, a.key_cache, a.value_cache, a.query, "query");
  check_rank(op, "out", a.out, 3, "[num_tokens, num_heads, head_dim]");
  check_device(op, "out", a.out, a.query, "query");
  check_dtype(op, "out", a.out, a.query.dtype);
  check_rank(op, "block_tables", a.block_tables, 2, "[num_seqs, max_blocks_per_seq]");
  check_rank(op, "context_lens", a.context_lens, 1, "[num_seqs]");
  check_device(op, "block_tables", a.block_tables, a.query, "query");
  check_device(op, "context_lens", a.context_lens, a.query, "query");
  check_dtype(op, "block_tables", a.block_tables, DType::i32);
  check_dtype(op, "context_lens", a.context_lens, DType::i32);
  check_contiguous(op, "block_tables", a.block_tables);
  check_contiguous(op, "context_lens", a.context_lens);

  AttentionShape s;
  s.num_tokens = a.query.size(0);
  s.num_q_heads = a.query.size(1);
  s.head_dim = a.query.size(2);
  s.num_blocks = a.key_cache.size(0);
  s.block_size = a.key_cache.size(1);
  s.num_kv_heads = a.key_cache.size(2);
  s.num_seqs = a.context_lens.size(0);
  s.max_blocks_per_seq = a.block_tables.size(1);
  s.varlen = a.query_start.has_value();

  PA_CHECK_ARG(s.num_q_heads > 0, "{}: query must have at least one head, got shape {}", op, a.query.shape_str());
  PA_CHECK_ARG(a.key_cache.size(3) == s.head_dim, "{}: key_cache head_dim {} must equal query head_dim {}", op,
               a.key_cache.size(3), s.head_dim);
  PA_CHECK_ARG(s.num_q_heads % s.num_kv_heads == 0,
               "{}: query heads ({}) must be a multiple of key/value heads ({})", op, s.num_q_heads, s.num_kv_heads);
  PA_CHECK_ARG(a.out.size(0) == a.query.size(0) && a.out.size(1) == a.query.size(1) && a.out.size(2) == a.query.size(2),
               "{}: out shape {} must equal query shape {}", op, a.out.shape_str(), a.query.shape_str());
  PA_CHECK_ARG(a.block_tables.size(0) == s.num_seqs, "{}: block_tables has {} rows but context_lens has {} sequences",
               op, a.block_tables.size(0), s.num_seqs);
  if (s.varlen) {
    const TensorView& qs = *a.query_start;
    check_rank(op, "query_start", qs, 1, "[num_seqs + 1]");
    check_device(op, "query_start", qs, a.query, "query");
    check_dtype(op, "query_start", qs, DType::i32);
    check_contiguous(op, "query_start", qs);
    PA_CHECK_ARG(qs.size(0) == s.num_seqs + 1, "{}: query_start must have num_seqs + 1 = {} entries, got {}", op,
                 s.num_seqs + 1, qs.size(0));
    check_no_null(op, "query_start", qs);
  } else {
    PA_CHECK_ARG(s.num_tokens == s.num_seqs,
                 "{}: without query_start every sequence has one query row: expected query.shape[0] == {} (num_seqs), "
                 "got {}",
                 op, s.num_seqs, s.num_tokens);
  }
  check_row_strides(op, "query", a.query);
  check_row_strides(op, "out", a.out);
  check_no_null(op, "query", a.query);
  check_no_null(op, "out", a.out);
  check_no_null(op, "block_tables", a.block_tables);
  check_no_null(op, "context_lens", a.context_lens);

  if (a.scale) {
    PA_CHECK_ARG(std::isfinite(*a.scale), "{}: scale must be finite, got {}", op, *a.scale);
    s.scale = *a.scale;
  } else {
    s.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.head_dim)));
  }
  if (a.query.device.is_cpu()) check_metadata_values(s, a);
  return s;
}

WriteKvShape validate_write_kv(const WriteKvArgs& a) {
  const char* op = "write_kv";
  PA_CHECK_TYPE(is_float(a.key.dtype), "{}: key must be float32, float16 or bfloat16, got {}", op,
                dtype_name(a.key.dtype));
  check_rank(op, "key", a.key, 3, "[num_tokens, num_kv_heads, head_dim]");
  check_rank(op, "value", a.value, 3, "[num_tokens, num_kv_heads, head_dim]");
  check_device(op, "value", a.value, a.key, "key");
  check_dtype(op, "value", a.value, a.key.dtype);
  check_caches(op, a.key_cache, a.value_cache, a.key, "key");
  check_rank(op, "slot_mapping", a.slot_mapping, 1, "[num_tokens]");
  check_device(op, "slot_mapping", a.slot_mapping, a.key, "key");
  check_dtype(op, "slot_mapping", a.slot_mapping, DType::i32);
  check_contiguous(op, "slot_mapping", a.slot_mapping);

  WriteKvShape s;
  s.num_tokens = a.key.size(0);
  s.num_kv_heads = a.key_cache.size(2);
  s.head_dim = a.key_cache.size(3);
  s.num_blocks = a.key_cache.size(0);
  s.block_size = a.key_cache.size(1);
  PA_CHECK_ARG(a.key.size(1) == s.num_kv_heads && a.key.size(2) == s.head_dim,
               "{}: key shape {} must be [num_tokens, {}, {}] to match key_cache {}", op, a.key.shape_str(),
               s.num_kv_heads, s.head_dim, a.key_cache.shape_str());
  PA_CHECK_ARG(a.value.size(0) == a.key.size(0) && a.value.size(1) == a.key.size(1) && a.value.size(2) == a.key.size(2),
               "{}: value shape {} must equal key shape {}", op, a.value.shape_str(), a.key.shape_str());
  PA_CHECK_ARG(a.slot_mapping.size(0) == s.num_tokens, "{}: slot_mapping has {} entries but key has {} rows", op,
               a.slot_mapping.size(0), s.num_tokens);
  check_row_strides(op, "key", a.key);
  check_row_strides(op, "value", a.value);
  check_no_null(op, "key", a.key);
  check_no_null(op, "value", a.value);
  check_no_null(op, "slot_mapping", a.slot_mapping);

  if (a.key.device.is_cpu()) {
    const auto* slots = a.slot_mapping.data_as<const int32_t>();
    const int64_t num_slots = s.num_blocks * s.block_size;
    for (int64_t t = 0; t < s.num_tokens; ++t) {
      PA_CHECK_ARG(slots[t] == -1 || (slots[t] >= 0 && slots[t] < num_slots),
                   "{}: slot_mapping[{}] = {}: expected -1 or a slot in [0, {}) (num_blocks {} x block_size {})", op,
                   t, slots[t], num_slots, s.num_blocks, s.block_size);
    }
  }
  return s;
}

}  // namespace pagedattn
