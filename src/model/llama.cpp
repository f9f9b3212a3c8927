// The Llama forward pass on the CPU. Per layer, for all T new tokens of the step at once:
//   h = rmsnorm(x) * attn_norm;  [q k v] = h Wqkv^T;  rope(q, k);  write_kv(k, v);  a = paged_attention(q)
//   x += a Wo^T;  h = rmsnorm(x) * ffn_norm;  [g u] = h Wgu^T;  x += (silu(g) * u) Wdown^T
// then logits = rmsnorm(x[rows]) * output_norm * E^T. Weights stay in their GGUF encoding, row-major
// [out, in], with Q/K/V and gate/up fused at load so each is one matmul (weight_matrix.h: decoded to f32
// tile by tile, f32 arithmetic).
//
// RoPE: convert_hf_to_gguf permutes the rows of Q and K for the llama architecture so that the two halves
// HF's rotate_half pairs up (i, i + D/2) become neighbours (2i, 2i + 1): in GGUF order the rotation is over
// adjacent pairs (llama.cpp's rope mode 0). The numpy oracle test un-permutes and uses HF's form.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/check.h"
#include "model/weight_matrix.h"
#include "pagedattn/attention.h"
#include "pagedattn/gguf.h"
#include "pagedattn/model.h"

namespace pagedattn {

using model::matmul;
using model::WeightMatrix;

struct LlamaModel::Weights {
  struct Layer {
    Tensor attn_norm;        // [H]
    WeightMatrix wqkv;       // [(Hq + 2 Hkv) D, H]
    WeightMatrix wo;         // [H, Hq D]
    Tensor ffn_norm;         // [H]
    WeightMatrix w_gate_up;  // [2 F, H]
    WeightMatrix w_down;     // [H, F]
  };
  LlamaConfig config;
  WeightMatrix embedding;  // [V, H]
  WeightMatrix output;     // [V, H]; empty when tied to the embedding
  Tensor output_norm;
  std::vector<Layer> layers;
  std::vector<double> inv_freq;  // [D/2]: theta^(-2i/D)

  const WeightMatrix& lm_head() const { return config.tied_embeddings ? embedding : output; }
};

namespace {

std::string arch_key(std::string_view suffix) { return fmt::format("llama.{}", suffix); }

// Dequantizes tensor `name` (whose row-major shape must be `shape`) into dst.
void load_into(const GgufFile& file, const std::string& name, std::initializer_list<int64_t> shape, float* dst) {
  const GgufTensorInfo& t = file.tensor(name);
  const std::vector<int64_t> expected(shape);
  PA_CHECK_ARG(t.shape() == expected, "llama: tensor '{}' has shape [{}]: expected [{}]", name,
               fmt::join(t.shape(), ", "), fmt::join(expected, ", "));
  dequantize(t.type, file.tensor_bytes(t).data(), dst, t.num_elements);
}

Tensor load_vector(const GgufFile& file, const std::string& name, int64_t n) {
  Tensor out = Tensor::empty({n}, DType::f32);
  load_into(file, name, {n}, out.data_as<float>());
  return out;
}

// out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * weight, with the sum of squares in double as ggml does.
void rms_norm(const float* x, int64_t rows, int64_t n, const float* weight, float eps, float* out) {
#pragma omp parallel for if (rows > 1)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(xr[i]) * xr[i];
    const float scale = 1.0f / std::sqrt(static_cast<float>(sum / static_cast<double>(n)) + eps);
    float* o = out + r * n;
    for (int64_t i = 0; i < n; ++i) o[i] = (xr[i] * scale) * weight[i];
  }
}

// cos and sin of position * inv_freq[i] for each row: [rows, D/2] each, computed once per forward (in
// double) and shared by all layers.
struct RopeTable {
  std::vector<float> cos, sin;
  RopeTable(std::span<const int32_t> positions, const std::vector<double>& inv_freq) {
    const size_t half = inv_freq.size();
    cos.resize(positions.size() * half);
    sin.resize(positions.size() * half);
    for (size_t r = 0; r < positions.size(); ++r) {
      for (size_t i = 0; i < half; ++i) {
        const double angle = static_cast<double>(positions[r]) * inv_freq[i];
        cos[r * half + i] = static_cast<float>(std::cos(angle));
        sin[r * half + i] = static_cast<float>(std::sin(angle));
      }
    }
  }
};

// Rotates adjacent pairs (2i, 2i+1) of each of `heads` heads of every row by its table angle.
void rope(float* x, int64_t rows, int64_t row_stride, int64_t heads, int64_t head_dim, const RopeTable& table) {
  const int64_t half = head_dim / 2;
#pragma omp parallel for if (rows > 1)
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t h = 0; h < heads; ++h) {
      float* p = x + r * row_stride + h * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const float c = table.cos[r * half + i];
        const float s = table.sin[r * half + i];
        const float a = p[2 * i];
        const float b = p[2 * i + 1];
        p[2 * i] = a * c - b * s;
        p[2 * i + 1] = a * s + b * c;
      }
    }
  }
}

// Converts n floats to the cache dtype and back (the attention runs in the cache's dtype).
void store_as(DType dtype, const float* src, void* dst, int64_t n) {
  switch (dtype) {
    case DType::f32:
      std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      return;
    case DType::f16:
      for (int64_t i = 0; i < n; ++i) static_cast<f16*>(dst)[i] = from_f32<f16>(src[i]);
      return;
    case DType::bf16:
      for (int64_t i = 0; i < n; ++i) static_cast<bf16*>(dst)[i] = from_f32<bf16>(src[i]);
      return;
    default:
      PA_CHECK_TYPE(false, "llama: KV cache dtype {}: expected float32, float16 or bfloat16", dtype_name(dtype));
  }
}

void load_from(DType dtype, const void* src, float* dst, int64_t n) {
  switch (dtype) {
    case DType::f32:
      std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      return;
    case DType::f16:
      for (int64_t i = 0; i < n; ++i) dst[i] = to_f32(static_cast<const f16*>(src)[i]);
      return;
    case DType::bf16:
      for (int64_t i = 0; i < n; ++i) dst[i] = to_f32(static_cast<const bf16*>(src)[i]);
      return;
    default:
      PA_CHECK_TYPE(false, "llama: KV cache dtype {}: expected float32, float16 or bfloat16", dtype_name(dtype));
  }
}

// Row j of sequence b must sit at position context_lens[b] - q_len + j, where paged_attention puts it.
void check_positions(const ForwardArgs& a, const AttentionShape& shape) {
  const auto* lens = a.context_lens.data_as<const int32_t>();
  const int32_t* qs = a.query_start ? a.query_start->data_as<const int32_t>() : nullptr;
  for (int64_t b = 0; b < shape.num_seqs; ++b) {
    const int64_t begin = qs ? qs[b] : b;
    const int64_t end = qs ? qs[b + 1] : b + 1;
    for (int64_t row = begin; row < end; ++row) {
      const int64_t expected = lens[b] - (end - begin) + (row - begin);
      PA_CHECK_ARG(a.positions[row] == expected,
                   "llama: positions[{}] = {}: expected {} (row {} of sequence {}, context_lens[{}] = {}, {} new rows)",
                   row, a.positions[row], expected, row - begin, b, b, lens[b], end - begin);
    }
  }
}

}  // namespace

LlamaConfig LlamaConfig::from_gguf(const GgufFile& file) {
  const std::string& arch = file.get_string("general.architecture");
  PA_CHECK_ARG(arch == "llama", "llama: general.architecture = '{}': expected 'llama'", arch);
  LlamaConfig c;
  c.hidden_size = static_cast<int64_t>(file.get_uint(arch_key("embedding_length")));
  c.intermediate_size = static_cast<int64_t>(file.get_uint(arch_key("feed_forward_length")));
  c.num_layers = static_cast<int64_t>(file.get_uint(arch_key("block_count")));
  c.num_q_heads = static_cast<int64_t>(file.get_uint(arch_key("attention.head_count")));
  c.num_kv_heads = static_cast<int64_t>(file.get_uint(arch_key("attention.head_count_kv"), c.num_q_heads));
  c.context_length = static_cast<int64_t>(file.get_uint(arch_key("context_length"), 0));
  c.rope_theta = static_cast<float>(file.get_float(arch_key("rope.freq_base"), 10000.0));
  c.rms_norm_eps = static_cast<float>(file.get_float(arch_key("attention.layer_norm_rms_epsilon"), 1e-5));
  PA_CHECK_ARG(c.hidden_size > 0 && c.num_q_heads > 0 && c.hidden_size % c.num_q_heads == 0,
               "llama: embedding_length {} is not a multiple of head_count {}", c.hidden_size, c.num_q_heads);
  c.head_dim = static_cast<int64_t>(
      file.get_uint(arch_key("attention.key_length"), static_cast<uint64_t>(c.hidden_size / c.num_q_heads)));
  PA_CHECK_ARG(c.num_kv_heads > 0 && c.num_q_heads % c.num_kv_heads == 0,
               "llama: head_count {} is not a multiple of head_count_kv {}", c.num_q_heads, c.num_kv_heads);
  PA_CHECK_ARG(c.head_dim % 2 == 0, "llama: head dimension {} must be even for RoPE", c.head_dim);
  const auto rope_dims =
      static_cast<int64_t>(file.get_uint(arch_key("rope.dimension_count"), static_cast<uint64_t>(c.head_dim)));
  PA_CHECK_ARG(rope_dims == c.head_dim,
               "llama: rope.dimension_count {} != head dimension {}: partial RoPE is not supported", rope_dims,
               c.head_dim);
  PA_CHECK_ARG(c.num_layers > 0 && c.intermediate_size > 0,
               "llama: block_count {} / feed_forward_length {} must be > 0", c.num_layers, c.intermediate_size);
  const GgufTensorInfo& embd = file.tensor("token_embd.weight");
  PA_CHECK_ARG(embd.dims.size() == 2, "llama: token_embd.weight has {} dimensions: expected 2", embd.dims.size());
  c.vocab_size = embd.dims[1];
  c.tied_embeddings = file.find_tensor("output.weight") == nullptr;
  return c;
}

LlamaModel::LlamaModel(std::unique_ptr<Weights> weights) : weights_(std::move(weights)) {}
LlamaModel::LlamaModel(LlamaModel&&) noexcept = default;
LlamaModel& LlamaModel::operator=(LlamaModel&&) noexcept = default;
LlamaModel::~LlamaModel() = default;

const LlamaConfig& LlamaModel::config() const { return weights_->config; }

LlamaModel LlamaModel::load(const std::string& path) { return load(GgufFile::open(path)); }

LlamaModel LlamaModel::load(const GgufFile& file) {
  auto w = std::make_unique<Weights>();
  const LlamaConfig c = LlamaConfig::from_gguf(file);
  w->config = c;
  const int64_t H = c.hidden_size, D = c.head_dim, F = c.intermediate_size;
  const int64_t q_rows = c.num_q_heads * D, kv_rows = c.num_kv_heads * D;
  w->embedding = WeightMatrix::load(file, {{"token_embd.weight", c.vocab_size}}, H);
  if (!c.tied_embeddings) w->output = WeightMatrix::load(file, {{"output.weight", c.vocab_size}}, H);
  w->output_norm = load_vector(file, "output_norm.weight", H);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const auto name = [l](std::string_view part) { return fmt::format("blk.{}.{}.weight", l, part); };
    Weights::Layer layer;
    layer.attn_norm = load_vector(file, name("attn_norm"), H);
    layer.wqkv =
        WeightMatrix::load(file, {{name("attn_q"), q_rows}, {name("attn_k"), kv_rows}, {name("attn_v"), kv_rows}}, H);
    layer.wo = WeightMatrix::load(file, {{name("attn_output"), H}}, q_rows);
    layer.ffn_norm = load_vector(file, name("ffn_norm"), H);
    layer.w_gate_up = WeightMatrix::load(file, {{name("ffn_gate"), F}, {name("ffn_up"), F}}, H);
    layer.w_down = WeightMatrix::load(file, {{name("ffn_down"), H}}, F);
    w->layers.push_back(std::move(layer));
  }
  for (int64_t i = 0; i < D / 2; ++i) {
    w->inv_freq.push_back(
        std::pow(static_cast<double>(c.rope_theta), -2.0 * static_cast<double>(i) / static_cast<double>(D)));
  }
  return LlamaModel(std::move(w));
}

Tensor LlamaModel::forward(const ForwardArgs& a) const {
  const Weights& w = *weights_;
  const LlamaConfig& c = w.config;
  const auto T = static_cast<int64_t>(a.tokens.size());
  const int64_t H = c.hidden_size, D = c.head_dim, F = c.intermediate_size, V = c.vocab_size;
  const int64_t Hq = c.num_q_heads, Hkv = c.num_kv_heads;
  const int64_t qkv_width = (Hq + 2 * Hkv) * D;
  const auto R = static_cast<int64_t>(a.logit_rows.size());

  PA_CHECK_ARG(static_cast<int64_t>(a.positions.size()) == T, "llama: {} positions for {} tokens", a.positions.size(),
               T);
  PA_CHECK_ARG(static_cast<int64_t>(a.kv_cache.size()) == c.num_layers, "llama: kv_cache has {} layers: expected {}",
               a.kv_cache.size(), c.num_layers);
  for (int64_t t = 0; t < T; ++t) {
    PA_CHECK_ARG(a.tokens[t] >= 0 && a.tokens[t] < V, "llama: tokens[{}] = {}: expected an id in [0, {})", t,
                 a.tokens[t], V);
  }
  for (int64_t r = 0; r < R; ++r) {
    PA_CHECK_ARG(a.logit_rows[r] >= 0 && a.logit_rows[r] < T, "llama: logit_rows[{}] = {}: expected a row in [0, {})",
                 r, a.logit_rows[r], T);
  }
  Tensor logits = Tensor::empty({R, V}, DType::f32);
  if (T == 0) return logits;

  const DType kv_dtype = a.kv_cache[0].key_cache.dtype;
  const bool convert = kv_dtype != DType::f32;
  Tensor x = Tensor::empty({T, H}, DType::f32);
  Tensor h = Tensor::empty({T, H}, DType::f32);
  Tensor qkv = Tensor::empty({T, qkv_width}, DType::f32);
  Tensor qkv_cache_dtype = convert ? Tensor::empty({T, qkv_width}, kv_dtype) : Tensor();
  Tensor attn = Tensor::empty({T, Hq * D}, kv_dtype);
  Tensor attn_f32 = convert ? Tensor::empty({T, Hq * D}, DType::f32) : Tensor();
  Tensor gate_up = Tensor::empty({T, 2 * F}, DType::f32);
  Tensor act = Tensor::empty({T, F}, DType::f32);

  // Q, K, V as strided views of the fused projection (in the cache's dtype).
  const Tensor& qkv_att = convert ? qkv_cache_dtype : qkv;
  const size_t elem = dtype_size(kv_dtype);
  auto qkv_view = [&](int64_t col, int64_t heads) {
    const std::array<int64_t, 3> shape{T, heads, D};
    const std::array<int64_t, 3> strides{qkv_width, D, 1};
    return TensorView(static_cast<char*>(qkv_att.data()) + col * elem, kv_dtype, shape, strides);
  };
  const TensorView q_view = qkv_view(0, Hq);
  const TensorView k_view = qkv_view(Hq * D, Hkv);
  const TensorView v_view = qkv_view((Hq + Hkv) * D, Hkv);
  const TensorView out_view(attn.data(), kv_dtype, {T, Hq, D});

  auto attention_args = [&](int64_t l) {
    return PagedAttentionArgs{.out = out_view,
                              .query = q_view,
                              .key_cache = a.kv_cache[l].key_cache,
                              .value_cache = a.kv_cache[l].value_cache,
                              .block_tables = a.block_tables,
                              .context_lens = a.context_lens,
                              .query_start = a.query_start};
  };
  // Validate the metadata once up front (paged_attention checks it again per layer) so that the
  // positions can be checked against it safely.
  check_positions(a, validate_paged_attention(attention_args(0)));

  const RopeTable rope_table(a.positions, w.inv_freq);
  float* xp = x.data_as<float>();
  for (int64_t t = 0; t < T; ++t) w.embedding.dequantize_row(a.tokens[t], xp + t * H);

  for (int64_t l = 0; l < c.num_layers; ++l) {
    const Weights::Layer& layer = w.layers[l];
    rms_norm(xp, T, H, layer.attn_norm.data_as<const float>(), c.rms_norm_eps, h.data_as<float>());
    matmul(h.data_as<const float>(), T, layer.wqkv, qkv.data_as<float>());
    rope(qkv.data_as<float>(), T, qkv_width, Hq + Hkv, D, rope_table);  // q and k heads are adjacent
    if (convert) store_as(kv_dtype, qkv.data_as<const float>(), qkv_cache_dtype.data(), T * qkv_width);

    write_kv({.key = k_view,
              .value = v_view,
              .key_cache = a.kv_cache[l].key_cache,
              .value_cache = a.kv_cache[l].value_cache,
              .slot_mapping = a.slot_mapping});
    paged_attention(attention_args(l));
    const float* attn_out = attn.data_as<const float>();
    if (convert) {
      load_from(kv_dtype, attn.data(), attn_f32.data_as<float>(), T * Hq * D);
      attn_out = attn_f32.data_as<const float>();
    }
    matmul(attn_out, T, layer.wo, xp, /*accumulate=*/true);

    rms_norm(xp, T, H, layer.ffn_norm.data_as<const float>(), c.rms_norm_eps, h.data_as<float>());
    matmul(h.data_as<const float>(), T, layer.w_gate_up, gate_up.data_as<float>());
    const float* gu = gate_up.data_as<const float>();
    float* ap = act.data_as<float>();
#pragma omp parallel for if (T > 1)
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t i = 0; i < F; ++i) {
        const float g = gu[t * 2 * F + i];
        ap[t * F + i] = g / (1.0f + std::exp(-g)) * gu[t * 2 * F + F + i];
      }
    }
    matmul(ap, T, layer.w_down, xp, /*accumulate=*/true);
  }

  if (R == 0) return logits;
  Tensor rows = Tensor::empty({R, H}, DType::f32);
  for (int64_t r = 0; r < R; ++r) {
    std::memcpy(rows.data_as<float>() + r * H, xp + a.logit_rows[r] * H, static_cast<size_t>(H) * 4);
  }
  rms_norm(rows.data_as<const float>(), R, H, w.output_norm.data_as<const float>(), c.rms_norm_eps,
           rows.data_as<float>());
  matmul(rows.data_as<const float>(), R, w.lm_head(), logits.data_as<float>());
  return logits;
}

}  // namespace pagedattn
