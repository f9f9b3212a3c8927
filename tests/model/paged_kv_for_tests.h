// A minimal paged KV cache for the model tests and model_probe: every sequence gets its blocks up front,
// scattered through the pool in a shuffled order (so paging is exercised), and each step's metadata is
// built by hand. The engine uses the real KV-cache manager (src/kv) instead.
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <span>
#include <vector>

#include "pagedattn/model.h"

namespace pagedattn::testing {

class PagedKvForTests {
 public:
  PagedKvForTests(const LlamaConfig& config, int64_t num_seqs, int64_t max_len, int64_t block_size,
                  DType dtype = DType::f32, uint64_t seed = 7)
      : block_size_(block_size), lengths_(static_cast<size_t>(num_seqs), 0) {
    blocks_per_seq_ = (max_len + block_size - 1) / block_size;
    const int64_t num_blocks = num_seqs * blocks_per_seq_ + 3;  // a few blocks nobody owns
    std::vector<int32_t> ids(static_cast<size_t>(num_blocks));
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), std::mt19937_64(seed));
    block_tables_ = Tensor::empty({num_seqs, blocks_per_seq_}, DType::i32);
    std::copy_n(ids.begin(), num_seqs * blocks_per_seq_, block_tables_.data_as<int32_t>());
    for (int64_t l = 0; l < config.num_layers; ++l) {
      const std::array<int64_t, 4> shape{num_blocks, block_size, config.num_kv_heads, config.head_dim};
      storage_.push_back(Tensor::zeros(shape, dtype));
      storage_.push_back(Tensor::zeros(shape, dtype));
      layers_.push_back({storage_[storage_.size() - 2].view(), storage_.back().view()});
    }
  }

  struct Step {
    std::vector<int32_t> tokens;
    std::vector<int32_t> positions;
    std::vector<int32_t> last_rows;  // the last new row of each sequence
    Tensor slot_mapping, context_lens, query_start;
    bool varlen = true;
  };

  // The step that appends new_tokens[b] to sequence b (all sequences take part; 0 new tokens is allowed
  // only with varlen). varlen = false builds the decode layout (no query_start, one token each).
  Step step(const std::vector<std::vector<int32_t>>& new_tokens, bool varlen = true) {
    Step s;
    s.varlen = varlen;
    const auto B = static_cast<int64_t>(new_tokens.size());
    s.context_lens = Tensor::empty({B}, DType::i32);
    s.query_start = Tensor::empty({B + 1}, DType::i32);
    s.query_start.data_as<int32_t>()[0] = 0;
    std::vector<int32_t> slots;
    for (int64_t b = 0; b < B; ++b) {
      for (int32_t tok : new_tokens[b]) {
        const int64_t pos = lengths_[b]++;
        s.tokens.push_back(tok);
        s.positions.push_back(static_cast<int32_t>(pos));
        const int32_t block = block_tables_.data_as<int32_t>()[b * blocks_per_seq_ + pos / block_size_];
        slots.push_back(static_cast<int32_t>(block * block_size_ + pos % block_size_));
      }
      s.context_lens.data_as<int32_t>()[b] = static_cast<int32_t>(lengths_[b]);
      s.query_start.data_as<int32_t>()[b + 1] = static_cast<int32_t>(s.tokens.size());
      s.last_rows.push_back(static_cast<int32_t>(s.tokens.size()) - 1);
    }
    s.slot_mapping = Tensor::empty({static_cast<int64_t>(slots.size())}, DType::i32);
    std::copy(slots.begin(), slots.end(), s.slot_mapping.data_as<int32_t>());
    return s;
  }

  ForwardArgs args(const Step& s, std::span<const int32_t> logit_rows) const {
    ForwardArgs a;
    a.tokens = s.tokens;
    a.positions = s.positions;
    a.slot_mapping = s.slot_mapping;
    a.block_tables = block_tables_;
    a.context_lens = s.context_lens;
    if (s.varlen) a.query_start = s.query_start.view();
    a.kv_cache = layers_;
    a.logit_rows = logit_rows;
    return a;
  }

  int64_t length(int64_t b) const { return lengths_[b]; }

 private:
  int64_t block_size_;
  int64_t blocks_per_seq_ = 0;
  std::vector<int64_t> lengths_;
  Tensor block_tables_;
  std::vector<Tensor> storage_;
  std::vector<LayerKvCache> layers_;
};

inline std::vector<int32_t> all_rows(size_t n) {
  std::vector<int32_t> rows(n);
  std::iota(rows.begin(), rows.end(), 0);
  return rows;
}

}  // namespace pagedattn::testing
