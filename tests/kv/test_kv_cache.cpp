// KvCache: the memory layout (one allocation, per-layer K/V slices), sizing from a budget, copy-on-write on
// every layer, config errors, and an end-to-end step: sequences built by append/fork/prefix hits, K/V stored
// through write_kv at the returned slots, paged_attention over the built metadata equal to dense attention.
#include <cmath>
#include <map>
#include <random>
#include <vector>

#include "common/paged_problem.h"
#include "kv/kv_testing.h"
#include "pagedattn/attention.h"
#include "pagedattn/kv_cache.h"

using namespace pagedattn;
using pagedattn::testing::error_message;

namespace {

using Tokens = std::vector<TokenId>;

KvCacheConfig small_config(DType dtype = DType::f32) {
  return {.num_blocks = 6, .block_size = 4, .num_layers = 3, .num_kv_heads = 2, .head_dim = 8, .dtype = dtype};
}

float round_to(DType dtype, float v) {
  switch (dtype) {
    case DType::f16: return to_f32(from_f32<f16>(v));
    case DType::bf16: return to_f32(from_f32<bf16>(v));
    default: return v;
  }
}

// A contiguous CPU tensor of `dtype` holding `values` (already representable in it).
Tensor tensor_of(const std::vector<float>& values, std::initializer_list<int64_t> shape, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  for (size_t i = 0; i < values.size(); ++i) {
    switch (dtype) {
      case DType::f16: t.data_as<f16>()[i] = from_f32<f16>(values[i]); break;
      case DType::bf16: t.data_as<bf16>()[i] = from_f32<bf16>(values[i]); break;
      default: t.data_as<float>()[i] = values[i]; break;
    }
  }
  return t;
}

// Element i of a float tensor of any float dtype, as f32.
float element(const TensorView& t, int64_t i) {
  switch (t.dtype) {
    case DType::f16: return to_f32(t.data_as<const f16>()[i]);
    case DType::bf16: return to_f32(t.data_as<const bf16>()[i]);
    default: return t.data_as<const float>()[i];
  }
}

// One token's K and V rows ([Hkv * D] each) for every layer: what a model would compute for it.
struct TokenKv {
  std::vector<std::vector<float>> key, value;  // [layer][Hkv * D]
};

TokenKv random_token_kv(const KvCacheConfig& c, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  TokenKv kv;
  const size_t row = static_cast<size_t>(c.num_kv_heads * c.head_dim);
  for (int32_t l = 0; l < c.num_layers; ++l) {
    kv.key.emplace_back(row);
    kv.value.emplace_back(row);
    for (size_t i = 0; i < row; ++i) {
      kv.key.back()[i] = round_to(c.dtype, u(rng));
      kv.value.back()[i] = round_to(c.dtype, u(rng));
    }
  }
  return kv;
}

// Stores the tokens' K/V at their slots on every layer, through write_kv.
void write_tokens(KvCache& cache, const std::vector<int32_t>& slots, const std::vector<TokenKv>& tokens) {
  const KvCacheConfig& c = cache.config();
  const int64_t n = std::ssize(slots);
  Tensor slot_mapping = Tensor::empty({n}, DType::i32);
  std::copy(slots.begin(), slots.end(), slot_mapping.data_as<int32_t>());
  for (int32_t l = 0; l < c.num_layers; ++l) {
    std::vector<float> k, v;
    for (const TokenKv& t : tokens) {
      k.insert(k.end(), t.key[static_cast<size_t>(l)].begin(), t.key[static_cast<size_t>(l)].end());
      v.insert(v.end(), t.value[static_cast<size_t>(l)].begin(), t.value[static_cast<size_t>(l)].end());
    }
    write_kv({.key = tensor_of(k, {n, c.num_kv_heads, c.head_dim}, c.dtype),
              .value = tensor_of(v, {n, c.num_kv_heads, c.head_dim}, c.dtype),
              .key_cache = cache.key(l),
              .value_cache = cache.value(l),
              .slot_mapping = slot_mapping});
  }
}

// Layer l's K (or V) row of a slot, as f32.
std::vector<float> read_row(const KvCache& cache, int32_t layer, bool value, int64_t slot) {
  const TensorView t = value ? cache.value(layer) : cache.key(layer);
  const int64_t row = cache.config().num_kv_heads * cache.config().head_dim;
  std::vector<float> out;
  for (int64_t i = 0; i < row; ++i) out.push_back(element(t, slot * row + i));
  return out;
}

int64_t slot_of(const KvCache& cache, SeqId seq, int64_t position) {
  const int64_t bs = cache.config().block_size;
  return cache.manager().block_table(seq)[static_cast<size_t>(position / bs)] * bs + position % bs;
}

}  // namespace

TEST(KvCache, LayersAreSlicesOfOneZeroedAllocation) {
  const KvCacheConfig c = small_config(DType::f16);
  KvCache cache(c);
  const size_t plane = 6 * 4 * 2 * 8 * 2;  // num_blocks * block_size * Hkv * D * sizeof(f16)
  EXPECT_EQ(cache.memory().nbytes(), 3 * 2 * plane);
  const auto* base = static_cast<const char*>(cache.memory().data());
  for (int32_t l = 0; l < 3; ++l) {
    for (const bool is_value : {false, true}) {
      const TensorView t = is_value ? cache.value(l) : cache.key(l);
      EXPECT_EQ(t.data, base + (2 * static_cast<size_t>(l) + is_value) * plane) << "layer " << l;
      EXPECT_EQ(t.shape_str(), "[6, 4, 2, 8]");
      EXPECT_TRUE(t.is_contiguous());
      EXPECT_EQ(t.dtype, DType::f16);
      EXPECT_TRUE(t.device.is_cpu());
    }
  }
  const auto* bytes = static_cast<const unsigned char*>(cache.memory().data());
  EXPECT_TRUE(std::all_of(bytes, bytes + cache.memory().nbytes(), [](unsigned char b) { return b == 0; }));
  EXPECT_EQ(cache.manager().pool().num_blocks(), 6);
  EXPECT_EQ(cache.manager().block_size(), 4);
}

TEST(KvCache, SizingFromAMemoryBudget) {
  KvCacheConfig c{.block_size = 16, .num_layers = 2, .num_kv_heads = 2, .head_dim = 8, .dtype = DType::f16};
  EXPECT_EQ(KvCache::bytes_per_block(c), 2048u);  // 2 layers x K,V x 16 tokens x 2 heads x 8 x 2 bytes
  EXPECT_EQ(KvCache::num_blocks_for_budget(c, 10000), 4);
  EXPECT_EQ(KvCache::num_blocks_for_budget(c, 2048), 1);
  EXPECT_EQ(error_message([&] { (void)KvCache::num_blocks_for_budget(c, 2047); }),
            "KvCache::num_blocks_for_budget: a budget of 2047 bytes holds no block of 2048 bytes (2 layers x K,V x 16 "
            "tokens x 2 kv heads x head_dim 8 x 2 bytes)");
  KvCacheConfig wide{.block_size = 1 << 16, .num_layers = 1, .num_kv_heads = 1, .head_dim = 1, .dtype = DType::f32};
  EXPECT_EQ(KvCache::num_blocks_for_budget(wide, size_t{1} << 40), 32767);  // capped by the int32 slot range
  c.num_blocks = KvCache::num_blocks_for_budget(c, 10000);
  EXPECT_LE(KvCache(c).memory().nbytes(), 10000u);
}

TEST(KvCache, BadConfigsAreRefused) {
  KvCacheConfig c = small_config();
  c.dtype = DType::i32;
  EXPECT_EQ(error_message([&] { KvCache cache(c); }, ErrorKind::type_error),
            "KvCache: dtype must be float32, float16 or bfloat16, got int32");
  c = small_config();
  c.num_layers = 0;
  EXPECT_EQ(error_message([&] { KvCache cache(c); }), "KvCache: num_layers must be > 0, got 0");
  c = small_config();
  c.num_kv_heads = -1;
  EXPECT_EQ(error_message([&] { KvCache cache(c); }), "KvCache: num_kv_heads must be > 0, got -1");
  c = small_config();
  c.head_dim = 0;
  EXPECT_EQ(error_message([&] { (void)KvCache::bytes_per_block(c); }), "KvCache::bytes_per_block: head_dim must be > 0, got 0");
  c = small_config();
  c.num_blocks = 0;
  EXPECT_EQ(error_message([&] { KvCache cache(c); }), "KvCacheManager: num_blocks must be > 0, got 0");
  KvCache cache(small_config());
  EXPECT_EQ(error_message([&] { (void)cache.key(3); }), "KvCache::key: layer 3: expected a layer in [0, 3)");
  EXPECT_EQ(error_message([&] { (void)cache.value(-1); }), "KvCache::value: layer -1: expected a layer in [0, 3)");
  EXPECT_EQ(error_message([&] { cache.copy_block({0, 6}); }),
            "KvCache::copy_block: block id 6: expected a block id in [0, 6)");
}

TEST(KvCache, CopyOnWriteCopiesTheSharedTailOnEveryLayer) {
  for (const DType dtype : {DType::f32, DType::f16, DType::bf16}) {
    SCOPED_TRACE(dtype_name(dtype));
    KvCache cache(small_config(dtype));
    std::mt19937_64 rng(7);
    std::vector<TokenKv> kv;
    for (int i = 0; i < 7; ++i) kv.push_back(random_token_kv(cache.config(), rng));

    const SeqId parent = cache.add_sequence();
    write_tokens(cache, cache.append(parent, 6).value(), {kv.begin(), kv.begin() + 6});  // blocks 0, 1 (2 tokens)
    const SeqId child = cache.fork(parent);
    const std::vector<int32_t> slots = cache.append(child, 1).value();  // copies block 1 first
    ASSERT_NE(cache.manager().block_table(child)[1], cache.manager().block_table(parent)[1]);
    write_tokens(cache, slots, {kv[6]});

    for (int32_t l = 0; l < 3; ++l) {
      for (int64_t p = 0; p < 6; ++p) {  // the child sees the parent's tokens, copied ones included
        EXPECT_EQ(read_row(cache, l, false, slot_of(cache, child, p)), kv[static_cast<size_t>(p)].key[static_cast<size_t>(l)]);
        EXPECT_EQ(read_row(cache, l, true, slot_of(cache, child, p)), kv[static_cast<size_t>(p)].value[static_cast<size_t>(l)]);
      }
      EXPECT_EQ(read_row(cache, l, false, slot_of(cache, child, 6)), kv[6].key[static_cast<size_t>(l)]);
      // The parent's block 1 still holds zeros after its 2 tokens: the child's write went to the copy.
      EXPECT_EQ(read_row(cache, l, false, slot_of(cache, parent, 5) + 1), std::vector<float>(16, 0.0f));
    }
    EXPECT_NO_THROW(cache.manager().check_invariants());
  }
}

TEST(KvCache, RunningOutOfBlocksReturnsNothingAndChangesNothing) {
  KvCache cache(small_config());
  const SeqId s = cache.add_sequence();
  ASSERT_TRUE(cache.append(s, 24));
  EXPECT_EQ(cache.append(s, 1), std::nullopt);
  EXPECT_EQ(cache.manager().num_tokens(s), 24);
  cache.rewind(s, 4);
  EXPECT_EQ(cache.append(s, Tokens{1, 2, 3, 4}), (std::vector<int32_t>{20, 21, 22, 23}));
  cache.release(s);
  EXPECT_EQ(cache.manager().pool().num_free(), 6);
}

// The whole path of one step: prefix hit + fork + chunked prefill + decode in one batch.
TEST(KvCache, AStepThroughMetadataWriteKvAndPagedAttentionMatchesDenseAttention) {
  for (const DType dtype : {DType::f32, DType::bf16}) {
    SCOPED_TRACE(dtype_name(dtype));
    KvCacheConfig config = small_config(dtype);
    config.num_blocks = 16;
    KvCache cache(config);
    std::mt19937_64 rng(11);
    std::map<SeqId, std::vector<TokenKv>> kv;  // what each sequence's positions must hold

    auto append = [&](SeqId seq, const Tokens& ids) {
      std::vector<TokenKv> rows;
      for (size_t i = 0; i < ids.size(); ++i) rows.push_back(random_token_kv(config, rng));
      write_tokens(cache, cache.append(seq, ids).value(), rows);
      kv[seq].insert(kv[seq].end(), rows.begin(), rows.end());
    };

    const SeqId a = cache.add_sequence();
    append(a, Tokens{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
    const SeqId b = cache.fork(a);
    kv[b] = kv[a];
    const SeqId c = cache.add_sequence();
    const Tokens prompt_c{1, 2, 3, 4, 5, 6, 7, 8, 20, 21, 22};
    ASSERT_EQ(cache.attach_cached_prefix(c, prompt_c), 8);  // a's first two blocks
    kv[c].assign(kv[a].begin(), kv[a].begin() + 8);

    // This step: a decodes 1, b (its tail shared with a: copy-on-write) prefills a chunk of 3, c its last 3.
    append(a, Tokens{11});
    append(b, Tokens{30, 31, 32});
    append(c, Tokens{20, 21, 22});
    const std::vector<ScheduledSeq> batch{{a, 1}, {b, 3}, {c, 3}};
    const AttentionMetadata md = cache.metadata(batch);

    const int64_t hq = 4, hkv = config.num_kv_heads, d = config.head_dim, t_rows = 7;
    std::vector<float> q(static_cast<size_t>(t_rows * hq * d));
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (float& x : q) x = round_to(dtype, u(rng));
    const Tensor query = tensor_of(q, {t_rows, hq, d}, dtype);

    for (int32_t layer = 0; layer < config.num_layers; ++layer) {
      const Tensor out = Tensor::zeros({t_rows, hq, d}, dtype);
      paged_attention({.out = out, .query = query, .key_cache = cache.key(layer), .value_cache = cache.value(layer),
                       .block_tables = md.block_tables, .context_lens = md.context_lens,
                       .query_start = md.query_start.view()});

      // Dense causal attention from the per-sequence rows, in double.
      std::vector<double> ref;
      const double scale = 1.0 / std::sqrt(static_cast<double>(d));
      int64_t row = 0;
      for (const ScheduledSeq& entry : batch) {
        const std::vector<TokenKv>& rows = kv[entry.seq];
        const int64_t ctx = std::ssize(rows);
        for (int64_t j = 0; j < entry.num_new_tokens; ++j, ++row) {
          const int64_t last = ctx - entry.num_new_tokens + j;
          for (int64_t h = 0; h < hq; ++h) {
            const int64_t g = h / (hq / hkv);
            std::vector<double> w;
            double max_w = -INFINITY, sum = 0;
            for (int64_t p = 0; p <= last; ++p) {
              double dot = 0;
              for (int64_t i = 0; i < d; ++i) {
                dot += static_cast<double>(q[static_cast<size_t>((row * hq + h) * d + i)]) *
                       rows[static_cast<size_t>(p)].key[static_cast<size_t>(layer)][static_cast<size_t>(g * d + i)];
              }
              w.push_back(dot * scale);
              max_w = std::max(max_w, w.back());
            }
            for (double& x : w) sum += (x = std::exp(x - max_w));
            for (int64_t i = 0; i < d; ++i) {
              double acc = 0;
              for (int64_t p = 0; p <= last; ++p) {
                acc += w[static_cast<size_t>(p)] *
                       rows[static_cast<size_t>(p)].value[static_cast<size_t>(layer)][static_cast<size_t>(g * d + i)];
              }
              ref.push_back(acc / sum);
            }
          }
        }
      }
      EXPECT_TRUE(pagedattn::testing::matches_reference(out, ref, pagedattn::testing::tolerance_for(dtype)))
          << "layer " << layer;
    }
    EXPECT_NO_THROW(cache.manager().check_invariants());
  }
}
