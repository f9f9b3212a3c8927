#include "attention/reference.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/check.h"

namespace pagedattn::reference {
namespace {

double load(const TensorView& t, int64_t offset) {
  switch (t.dtype) {
    case DType::f32: return t.data_as<const float>()[offset];
    case DType::f16: return to_f32(t.data_as<const f16>()[offset]);
    case DType::bf16: return to_f32(t.data_as<const bf16>()[offset]);
    case DType::f64: return t.data_as<const double>()[offset];
    default: PA_CHECK_TYPE(false, "reference: unsupported dtype {}", dtype_name(t.dtype));
  }
}

void store(const TensorView& t, int64_t offset, double v) {
  switch (t.dtype) {
    case DType::f32: t.data_as<float>()[offset] = static_cast<float>(v); return;
    case DType::f16: t.data_as<f16>()[offset] = from_f32<f16>(static_cast<float>(v)); return;
    case DType::bf16: t.data_as<bf16>()[offset] = from_f32<bf16>(static_cast<float>(v)); return;
    case DType::f64: t.data_as<double>()[offset] = v; return;
    default: PA_CHECK_TYPE(false, "reference: unsupported dtype {}", dtype_name(t.dtype));
  }
}

int64_t offset3(const TensorView& t, int64_t i, int64_t j, int64_t k) {
  return i * t.strides[0] + j * t.strides[1] + k * t.strides[2];
}

int32_t load_i32(const TensorView& t, int64_t i) { return t.data_as<const int32_t>()[i]; }

}  // namespace

std::vector<double> paged_attention_f64(const PagedAttentionArgs& a) {
  PA_CHECK_ARG(a.query.device.is_cpu(), "reference::paged_attention: tensors must be on the CPU, got {}",
               to_string(a.query.device));
  const AttentionShape s = validate_paged_attention(a);
  const int64_t D = s.head_dim, group = s.group_size();
  const double scale = a.scale ? static_cast<double>(*a.scale) : 1.0 / std::sqrt(static_cast<double>(D));
  std::vector<double> out(static_cast<size_t>(s.num_tokens * s.num_q_heads * D), 0.0);
  std::vector<double> scores;

  for (int64_t b = 0; b < s.num_seqs; ++b) {
    const int64_t context_len = load_i32(a.context_lens, b);
    const int64_t row_begin = a.query_start ? load_i32(*a.query_start, b) : b;
    const int64_t row_end = a.query_start ? load_i32(*a.query_start, b + 1) : b + 1;
    const int64_t q_len = row_end - row_begin;
    const int32_t* table = a.block_tables.data_as<const int32_t>() + b * s.max_blocks_per_seq;

    for (int64_t j = 0; j < q_len; ++j) {
      const int64_t position = context_len - q_len + j;
      const int64_t visible = a.causal ? position + 1 : context_len;
      for (int64_t h = 0; h < s.num_q_heads; ++h) {
        const int64_t kv_head = h / group;
        const int64_t row = row_begin + j;
        // Scores q·k for every visible position, then a numerically stable softmax.
        scores.assign(static_cast<size_t>(visible), 0.0);
        double max_score = -std::numeric_limits<double>::infinity();
        for (int64_t p = 0; p < visible; ++p) {
          const int64_t block = table[p / s.block_size], slot = p % s.block_size;
          const int64_t k_base = ((block * s.block_size + slot) * s.num_kv_heads + kv_head) * D;
          double dot = 0.0;
          for (int64_t d = 0; d < D; ++d) {
            dot += load(a.query, offset3(a.query, row, h, d)) * load(a.key_cache, k_base + d);
          }
          scores[p] = dot * scale;
          max_score = std::max(max_score, scores[p]);
        }
        double denom = 0.0;
        for (double& x : scores) {
          x = std::exp(x - max_score);
          denom += x;
        }
        double* o = out.data() + (row * s.num_q_heads + h) * D;
        for (int64_t p = 0; p < visible; ++p) {
          const int64_t block = table[p / s.block_size], slot = p % s.block_size;
          const int64_t v_base = ((block * s.block_size + slot) * s.num_kv_heads + kv_head) * D;
          const double w = scores[p] / denom;
          for (int64_t d = 0; d < D; ++d) o[d] += w * load(a.value_cache, v_base + d);
        }
      }
    }
  }
  return out;
}

void paged_attention(const PagedAttentionArgs& a) {
  const std::vector<double> result = paged_attention_f64(a);
  const int64_t Hq = a.query.size(1), D = a.query.size(2);
  for (int64_t t = 0; t < a.query.size(0); ++t)
    for (int64_t h = 0; h < Hq; ++h)
      for (int64_t d = 0; d < D; ++d) store(a.out, offset3(a.out, t, h, d), result[(t * Hq + h) * D + d]);
}

void write_kv(const WriteKvArgs& a) {
  PA_CHECK_ARG(a.key.device.is_cpu(), "reference::write_kv: tensors must be on the CPU, got {}",
               to_string(a.key.device));
  const WriteKvShape s = validate_write_kv(a);
  const auto* slots = a.slot_mapping.data_as<const int32_t>();
  for (int64_t t = 0; t < s.num_tokens; ++t) {
    if (slots[t] < 0) continue;
    for (int64_t h = 0; h < s.num_kv_heads; ++h) {
      const int64_t base = (slots[t] * s.num_kv_heads + h) * s.head_dim;
      for (int64_t d = 0; d < s.head_dim; ++d) {
        store(a.key_cache, base + d, load(a.key, offset3(a.key, t, h, d)));
        store(a.value_cache, base + d, load(a.value, offset3(a.value, t, h, d)));
      }
    }
  }
}

}  // namespace pagedattn::reference
