// `pagedattn demo`: a paged KV cache on the CPU in a few steps — scatter each sequence's K/V into
// shuffled blocks with write_kv, run one decode step of paged_attention, check it against the fp64
// reference and report the time and the bandwidth it reached.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <vector>

#include "attention/reference.h"
#include "commands.h"
#include "pagedattn/attention.h"

namespace pagedattn::cli {
namespace {

struct DemoOptions {
  int64_t seqs = 8, context = 1024, heads = 32, kv_heads = 8, head_dim = 128, block_size = 16;
  int iters = 20;
  uint64_t seed = 0;
};

void fill_random(const Tensor& t, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (int64_t i = 0; i < t.numel(); ++i) t.data_as<bf16>()[i] = from_f32<bf16>(dist(rng));
}

int run_demo(const DemoOptions& o) {
  std::mt19937_64 rng(o.seed);
  const int64_t blocks_per_seq = (o.context + o.block_size - 1) / o.block_size;
  const int64_t num_blocks = o.seqs * blocks_per_seq;
  std::fprintf(stderr, "demo: %lld sequences x %lld tokens, %lld q heads / %lld kv heads, D=%lld, block %lld, bf16\n",
               static_cast<long long>(o.seqs), static_cast<long long>(o.context), static_cast<long long>(o.heads),
               static_cast<long long>(o.kv_heads), static_cast<long long>(o.head_dim),
               static_cast<long long>(o.block_size));

  // The pool: every block of every sequence, handed out in a random order so the pages are scattered.
  Tensor key_cache = Tensor::zeros({num_blocks, o.block_size, o.kv_heads, o.head_dim}, DType::bf16);
  Tensor value_cache = Tensor::zeros({num_blocks, o.block_size, o.kv_heads, o.head_dim}, DType::bf16);
  std::vector<int32_t> ids(static_cast<size_t>(num_blocks));
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), rng);
  Tensor block_tables = Tensor::empty({o.seqs, blocks_per_seq}, DType::i32);
  Tensor context_lens = Tensor::empty({o.seqs}, DType::i32);
  std::copy(ids.begin(), ids.end(), block_tables.data_as<int32_t>());
  std::fill_n(context_lens.data_as<int32_t>(), o.seqs, static_cast<int32_t>(o.context));

  // Prefill the cache: each sequence's K/V rows go to block_tables[b][p / bs] * bs + p % bs.
  Tensor keys = Tensor::empty({o.context, o.kv_heads, o.head_dim}, DType::bf16);
  Tensor values = Tensor::empty({o.context, o.kv_heads, o.head_dim}, DType::bf16);
  Tensor slots = Tensor::empty({o.context}, DType::i32);
  for (int64_t b = 0; b < o.seqs; ++b) {
    fill_random(keys, rng);
    fill_random(values, rng);
    for (int64_t p = 0; p < o.context; ++p)
      slots.data_as<int32_t>()[p] =
          static_cast<int32_t>(block_tables.data_as<int32_t>()[b * blocks_per_seq + p / o.block_size] * o.block_size +
                               p % o.block_size);
    write_kv({keys, values, key_cache, value_cache, slots});
  }

  // One decode step: a query row per sequence.
  Tensor query = Tensor::empty({o.seqs, o.heads, o.head_dim}, DType::bf16);
  Tensor out = Tensor::empty({o.seqs, o.heads, o.head_dim}, DType::bf16);
  fill_random(query, rng);
  const PagedAttentionArgs args{out, query, key_cache, value_cache, block_tables, context_lens};
  paged_attention(args);  // warm-up
  std::vector<double> times;
  for (int i = 0; i < o.iters; ++i) {
    const auto start = std::chrono::steady_clock::now();
    paged_attention(args);
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];

  const std::vector<double> ref = reference::paged_attention_f64(args);
  double max_err = 0;
  for (int64_t i = 0; i < out.numel(); ++i)
    max_err = std::max(max_err, std::abs(static_cast<double>(to_f32(out.data_as<bf16>()[i])) - ref[i]));

  const double bytes = 2.0 * static_cast<double>(o.seqs * o.context * o.kv_heads * o.head_dim) * 2;
  std::printf("out[0, 0, :4] = [%.4f, %.4f, %.4f, %.4f]\n", to_f32(out.data_as<bf16>()[0]),
              to_f32(out.data_as<bf16>()[1]), to_f32(out.data_as<bf16>()[2]), to_f32(out.data_as<bf16>()[3]));
  std::printf("max |out - fp64 reference| = %.2e (bf16 output)\n", max_err);
  std::printf("paged_attention decode: %.3f ms (median of %d), %.1f MB of K/V read, %.2f GB/s\n", median * 1e3,
              o.iters, bytes / 1e6, bytes / median / 1e9);
  return max_err < 2e-2 ? 0 : 1;
}

}  // namespace

Command add_demo(CLI::App& app) {
  auto options = std::make_shared<DemoOptions>();
  CLI::App* sub = app.add_subcommand("demo", "Build a paged KV cache on the CPU, run paged_attention, time it");
  sub->add_option("--seqs", options->seqs, "number of sequences")->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--context", options->context, "tokens per sequence")->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--heads", options->heads, "query heads")->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--kv-heads", options->kv_heads, "key/value heads")->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--head-dim", options->head_dim, "head dimension")->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--block-size", options->block_size, "tokens per block")->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--iters", options->iters, "timed repetitions")->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--seed", options->seed, "random seed")->capture_default_str();
  return [options] { return run_demo(*options); };
}

}  // namespace pagedattn::cli
