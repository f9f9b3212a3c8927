// The CPU backend of write_kv against reference::write_kv: the caches must come out byte-identical
// (a store is a copy in the cache dtype, so there is no tolerance).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <random>

#include "attention/reference.h"
#include "common/paged_problem.h"

using namespace pagedattn;
using namespace pagedattn::testing;

namespace {

struct WriteCase {
  int64_t num_blocks, block_size, num_kv_heads, head_dim, num_tokens;
  int64_t row_padding;  // extra elements per input row: key/value as strided views
};

void expect_matches_reference(const WriteCase& c, DType dtype, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const int64_t T = c.num_tokens, H = c.num_kv_heads, D = c.head_dim, row = H * D + c.row_padding;
  Tensor key_buf = Tensor::empty({T, row}, dtype), value_buf = Tensor::empty({T, row}, dtype);
  fill_uniform(key_buf, rng, -2.0f, 2.0f);
  fill_uniform(value_buf, rng, -2.0f, 2.0f);
  const std::array<int64_t, 3> shape{T, H, D}, strides{row, D, 1};
  const TensorView key(key_buf.data(), dtype, shape, strides), value(value_buf.data(), dtype, shape, strides);

  // Distinct slots in random order, every fifth token padding (-1).
  std::vector<int32_t> all(static_cast<size_t>(c.num_blocks * c.block_size));
  std::iota(all.begin(), all.end(), 0);
  std::shuffle(all.begin(), all.end(), rng);
  Tensor slots = Tensor::empty({T}, DType::i32);
  for (int64_t t = 0; t < T; ++t) slots.data_as<int32_t>()[t] = t % 5 == 3 ? -1 : all[static_cast<size_t>(t)];

  const int64_t cache_shape[] = {c.num_blocks, c.block_size, H, D};
  Tensor key_cache = Tensor::empty(cache_shape, dtype), value_cache = Tensor::empty(cache_shape, dtype);
  fill_uniform(key_cache, rng, -1.0f, 1.0f);
  fill_uniform(value_cache, rng, -1.0f, 1.0f);
  Tensor key_expected = Tensor::empty(cache_shape, dtype), value_expected = Tensor::empty(cache_shape, dtype);
  copy(key_expected, key_cache);
  copy(value_expected, value_cache);

  write_kv({key, value, key_cache, value_cache, slots});
  reference::write_kv({key, value, key_expected, value_expected, slots});
  EXPECT_EQ(std::memcmp(key_cache.data(), key_expected.data(), key_cache.nbytes()), 0) << dtype_name(dtype);
  EXPECT_EQ(std::memcmp(value_cache.data(), value_expected.data(), value_cache.nbytes()), 0) << dtype_name(dtype);
}

TEST(CpuWriteKv, MatchesReference) {
  const WriteCase cases[] = {
      {.num_blocks = 6, .block_size = 4, .num_kv_heads = 3, .head_dim = 40, .num_tokens = 10, .row_padding = 0},
      {.num_blocks = 5, .block_size = 16, .num_kv_heads = 2, .head_dim = 64, .num_tokens = 33, .row_padding = 7},
      {.num_blocks = 3, .block_size = 1, .num_kv_heads = 1, .head_dim = 3, .num_tokens = 3, .row_padding = 1},
      // Over 1 MiB of rows: the multi-threaded path.
      {.num_blocks = 160, .block_size = 16, .num_kv_heads = 8, .head_dim = 128, .num_tokens = 2048, .row_padding = 0},
  };
  uint64_t seed = 1;
  for (const WriteCase& c : cases)
    for (DType dtype : {DType::f32, DType::f16, DType::bf16}) expect_matches_reference(c, dtype, seed++);
}

TEST(CpuWriteKv, WrittenRowsAreReadBackByAttention) {
  // A 1-token cache per sequence written by write_kv, then decode: with one position the output is V.
  const int64_t H = 2, D = 16;
  Tensor key_cache = Tensor::zeros({4, 1, H, D}, DType::f32), value_cache = Tensor::zeros({4, 1, H, D}, DType::f32);
  Tensor k = Tensor::empty({2, H, D}, DType::f32), v = Tensor::empty({2, H, D}, DType::f32);
  for (int64_t i = 0; i < 2 * H * D; ++i) k.data_as<float>()[i] = 0.01f * static_cast<float>(i), v.data_as<float>()[i] = static_cast<float>(i);
  Tensor slots = Tensor::empty({2}, DType::i32);
  slots.data_as<int32_t>()[0] = 3;
  slots.data_as<int32_t>()[1] = 1;
  write_kv({k, v, key_cache, value_cache, slots});

  Tensor query = Tensor::empty({2, H, D}, DType::f32), out = Tensor::empty({2, H, D}, DType::f32);
  fill_constant(query, 0.5);
  Tensor tables = Tensor::empty({2, 1}, DType::i32), lens = Tensor::empty({2}, DType::i32);
  tables.data_as<int32_t>()[0] = 3, tables.data_as<int32_t>()[1] = 1;
  lens.data_as<int32_t>()[0] = 1, lens.data_as<int32_t>()[1] = 1;
  PagedAttentionArgs a{.out = out, .query = query, .key_cache = key_cache, .value_cache = value_cache,
                       .block_tables = tables, .context_lens = lens};
  paged_attention(a);
  for (int64_t i = 0; i < 2 * H * D; ++i) EXPECT_EQ(out.data_as<float>()[i], v.data_as<float>()[i]) << i;
}

}  // namespace
