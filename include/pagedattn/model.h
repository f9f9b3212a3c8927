// The Llama-family model (SmolLM2, Llama 2/3, ...) from a GGUF file, run on the CPU over a paged KV cache.
//
// One forward() serves any mix of sequences and phases: prefill, chunked prefill on top of an existing
// cache, and decode, several sequences together. The caller (the engine, a test) owns the cache and the
// block tables; the model only reads the step's metadata:
//   tokens, positions  [T]        the new tokens of all sequences, sequence after sequence
//   slot_mapping       int32 [T]  where each new token's K/V goes (block * block_size + offset, -1 = skip)
//   block_tables, context_lens, query_start   as paged_attention takes them (attention.h)
//   kv_cache           one {key_cache, value_cache} per layer, each [num_blocks, block_size, Hkv, D]
// and returns the logits of the rows it is asked for (usually the last new token of each sequence).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "pagedattn/tensor.h"

namespace pagedattn {

class GgufFile;

struct LlamaConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;        // {arch}.embedding_length
  int64_t intermediate_size = 0;  // {arch}.feed_forward_length
  int64_t num_layers = 0;         // {arch}.block_count
  int64_t num_q_heads = 0;        // {arch}.attention.head_count
  int64_t num_kv_heads = 0;       // {arch}.attention.head_count_kv
  int64_t head_dim = 0;           // hidden_size / num_q_heads
  int64_t context_length = 0;     // trained context ({arch}.context_length)
  float rope_theta = 10000.0f;    // {arch}.rope.freq_base
  float rms_norm_eps = 1e-5f;     // {arch}.attention.layer_norm_rms_epsilon
  bool tied_embeddings = false;   // no output.weight: the LM head is token_embd

  // Reads the hyper-parameters of a "llama" file; throws naming the key that is missing or inconsistent.
  static LlamaConfig from_gguf(const GgufFile& file);
};

// The K/V cache of one layer: [num_blocks, block_size, num_kv_heads, head_dim], f32, f16 or bf16 (K and V
// of the same dtype; the model converts its f32 K/V/Q to that dtype around the attention).
struct LayerKvCache {
  TensorView key_cache;
  TensorView value_cache;
};

struct ForwardArgs {
  std::span<const int32_t> tokens;     // [T], ids in [0, vocab_size)
  std::span<const int32_t> positions;  // [T], RoPE positions; row j of sequence b must be context_lens[b] - q_len + j
  TensorView slot_mapping;             // int32 [T]
  TensorView block_tables;             // int32 [B, max_blocks_per_seq]
  TensorView context_lens;             // int32 [B]
  std::optional<TensorView> query_start;   // int32 [B+1]; absent = decode, one token per sequence (T == B)
  std::span<const LayerKvCache> kv_cache;  // num_layers entries
  std::span<const int32_t> logit_rows;     // rows of T whose logits to return, in this order
};

class LlamaModel {
 public:
  // Loads and dequantizes the weights to f32. Throws pagedattn::Error for a missing tensor, a tensor of
  // the wrong shape, or an architecture other than "llama".
  static LlamaModel load(const GgufFile& file);
  static LlamaModel load(const std::string& path);

  LlamaModel(LlamaModel&&) noexcept;
  LlamaModel& operator=(LlamaModel&&) noexcept;
  ~LlamaModel();

  const LlamaConfig& config() const;

  // Runs the step: writes the new tokens' K/V into the cache, returns logits f32 [logit_rows.size(), vocab].
  // Throws pagedattn::Error for inconsistent arguments (sizes, token ids, positions against context_lens,
  // number of cache layers, and everything paged_attention / write_kv check).
  Tensor forward(const ForwardArgs& args) const;

 private:
  struct Weights;
  explicit LlamaModel(std::unique_ptr<Weights> weights);
  std::unique_ptr<Weights> weights_;
};

}  // namespace pagedattn
