// bench_prefill_cuda: our causal paged prefill (the varlen path of paged_attention) on the shapes of issue 7,
// B x L tokens with (B, L) = (1, 8192) (4, 4096) (16, 1024) (64, 256), Hq = 32, Hkv = 8, D = 128, bf16,
// block 16, in TFLOP/s (4 B L^2 Hq D / 2 flops for causal); and a mixed batch (200 decode rows + 2 chunks
// of 512 on top of a cache) as one call against its decode and prefill parts as two separate calls.
// Timings are medians over replays of a CUDA graph (graph_timer.h). Writes a CSV that
// bench/peers/peer_prefill.py completes with the hardware limit and the peers of the same run
// (torch SDPA flash / cuDNN on dense K/V, FlashInfer's paged prefill).
//   bench_prefill_cuda [--csv out.csv] [--iters 10] [--reps 10] [--placements N]
// --placements N (a diagnostic) also times each row on N fresh allocations of the same data, twice each.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "device_fill.h"
#include "graph_timer.h"
#include "pagedattn/attention.h"

namespace {

using namespace pagedattn;
using bench::check;
using bench::time_graph;

constexpr int64_t kHq = 32, kHkv = 8, kD = 128, kBlock = 16;

Tensor host_i32(std::span<const int32_t> values) {
  Tensor t = Tensor::empty({static_cast<int64_t>(values.size())}, DType::i32);
  std::memcpy(t.data(), values.data(), values.size() * sizeof(int32_t));
  return t;
}

// One paged batch on the GPU: random values, every sequence's pages in a random order of the pool.
struct Batch {
  std::vector<int32_t> context_lens, query_start;
  Tensor query, out, key_cache, value_cache, block_tables, lens, starts;

  Batch(std::vector<int32_t> ctx, const std::vector<int32_t>& q_lens, uint64_t seed) : context_lens(std::move(ctx)) {
    const int64_t B = static_cast<int64_t>(context_lens.size());
    int64_t cols = 0, pages = 0;
    for (int32_t c : context_lens) cols = std::max<int64_t>(cols, (c + kBlock - 1) / kBlock), pages += (c + kBlock - 1) / kBlock;
    std::vector<int32_t> ids(static_cast<size_t>(pages)), table(static_cast<size_t>(B * cols), -1);
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), std::mt19937_64(seed));
    size_t next = 0;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < (context_lens[b] + kBlock - 1) / kBlock; ++i) table[b * cols + i] = ids[next++];
    query_start.assign(1, 0);
    for (int32_t q : q_lens) query_start.push_back(query_start.back() + q);
    const int64_t T = query_start.back();
    query = Tensor::empty({T, kHq, kD}, DType::bf16, Device::cuda());
    out = Tensor::empty({T, kHq, kD}, DType::bf16, Device::cuda());
    key_cache = Tensor::empty({pages, kBlock, kHkv, kD}, DType::bf16, Device::cuda());
    value_cache = Tensor::empty({pages, kBlock, kHkv, kD}, DType::bf16, Device::cuda());
    bench::fill_random(query, seed + 1);
    bench::fill_random(key_cache, seed + 2);
    bench::fill_random(value_cache, seed + 3);
    Tensor host_table = Tensor::empty({B, cols}, DType::i32);
    std::memcpy(host_table.data(), table.data(), table.size() * sizeof(int32_t));
    block_tables = host_table.to(Device::cuda());
    lens = host_i32(context_lens).to(Device::cuda());
    starts = host_i32(query_start).to(Device::cuda());
  }

  // Sequences [first, last) as their own call (views of this batch); varlen unless every row is a decode row.
  PagedAttentionArgs args(int64_t first, int64_t last, bool varlen, cudaStream_t stream) const {
    const int64_t r0 = query_start[first], r1 = query_start[last], cols = block_tables.size(1);
    const size_t row_bytes = kHq * kD * 2;
    PagedAttentionArgs a;
    a.query = TensorView(static_cast<char*>(query.data()) + r0 * row_bytes, DType::bf16, {r1 - r0, kHq, kD}, Device::cuda());
    a.out = TensorView(static_cast<char*>(out.data()) + r0 * row_bytes, DType::bf16, {r1 - r0, kHq, kD}, Device::cuda());
    a.key_cache = key_cache;
    a.value_cache = value_cache;
    a.block_tables = TensorView(block_tables.data_as<int32_t>() + first * cols, DType::i32, {last - first, cols},
                                Device::cuda());
    a.context_lens = TensorView(lens.data_as<int32_t>() + first, DType::i32, {last - first}, Device::cuda());
    if (varlen) a.query_start = TensorView(starts.data_as<int32_t>() + first, DType::i32, {last - first + 1}, Device::cuda());
    a.stream = stream;
    return a;
  }
};

// query_start entries are absolute row indices: a call on a later slice of sequences needs its own, rebased.
Tensor rebased_starts(const Batch& batch, int64_t first, int64_t last) {
  std::vector<int32_t> v;
  for (int64_t b = first; b <= last; ++b) v.push_back(batch.query_start[b] - batch.query_start[first]);
  return host_i32(v).to(Device::cuda());
}

int64_t non_finite(const Tensor& out) {
  const Tensor host = out.to(Device::cpu());
  int64_t n = 0;
  for (int64_t i = 0; i < host.numel(); ++i) n += !std::isfinite(to_f32(host.data_as<bf16>()[i]));
  return n;
}

AttentionPlan make_plan(std::span<const int32_t> lens, int64_t cols, cudaStream_t stream) {
  AttentionPlan plan({.max_seqs = static_cast<int64_t>(lens.size()), .max_blocks_per_seq = cols, .num_q_heads = kHq,
                      .num_kv_heads = kHkv, .head_dim = kD},
                     Device::cuda());
  plan.update(lens, kBlock, stream);
  return plan;
}

int run(int argc, char** argv) {
  std::string csv_path;
  int iters = 10, reps = 10;
  int placements = 1;  // > 1: each row also timed on this many more copies of its data, each allocated anew
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--csv" && i + 1 < argc) csv_path = argv[++i];
    else if (arg == "--iters" && i + 1 < argc) iters = std::atoi(argv[++i]);
    else if (arg == "--reps" && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (arg == "--placements" && i + 1 < argc) placements = std::atoi(argv[++i]);
    else throw std::runtime_error("usage: bench_prefill_cuda [--csv out.csv] [--iters N] [--reps N] [--placements N]");
  }
  if (placements < 1) throw std::runtime_error("--placements " + std::to_string(placements) + ": expected >= 1");
  if (!cuda_available()) {
    std::printf("no CUDA device: nothing to measure\n");
    return 0;
  }
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, 0), "properties");
  cudaStream_t stream = nullptr;
  check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream");
  std::printf("device %s, %d SMs; Hq=%lld Hkv=%lld D=%lld bf16, block %lld, causal\n", prop.name,
              prop.multiProcessorCount, (long long)kHq, (long long)kHkv, (long long)kD, (long long)kBlock);
  FILE* csv = csv_path.empty() ? nullptr : std::fopen(csv_path.c_str(), "w");
  if (csv) std::fprintf(csv, "kind,B,L,Hq,Hkv,D,bs,flops,ours_us,note\n");

  std::printf("%-8s %5s %9s %9s %9s\n", "B", "L", "GFLOP", "ours us", "TFLOP/s");
  for (auto [B, L] : std::vector<std::pair<int64_t, int64_t>>{{1, 8192}, {4, 4096}, {16, 1024}, {64, 256}}) {
    // B prompts of L tokens on an empty cache (context = q_len = L), the same data on every call.
    const auto make_batch = [&] {
      return Batch(std::vector<int32_t>(B, static_cast<int32_t>(L)), std::vector<int32_t>(B, static_cast<int32_t>(L)),
                   static_cast<uint64_t>(B * 7919 + L));
    };
    const Batch batch = make_batch();
    const PagedAttentionArgs args = batch.args(0, B, true, stream);
    paged_attention(args);
    check_cuda_errors();
    const int64_t bad = non_finite(batch.out);
    const double us = time_graph([&](int) { paged_attention(args); }, iters, reps, stream);
    const double flops = 4.0 * B * L * L * kHq * kD / 2;
    std::printf("%-8lld %5lld %9.1f %9.1f %9.1f%s\n", (long long)B, (long long)L, flops / 1e9, us, flops / us / 1e6,
                bad ? "  NON-FINITE OUTPUT" : "");
    std::fflush(stdout);
    if (csv) std::fprintf(csv, "prefill,%lld,%lld,%lld,%lld,%lld,%lld,%.6g,%.3f,\n", (long long)B, (long long)L,
                          (long long)kHq, (long long)kHkv, (long long)kD, (long long)kBlock, flops, us);
    if (placements > 1) {
      // The same data in fresh allocations, each timed twice in interleaved passes: whether a row's time
      // follows where its memory landed (a property of the allocation) or drifts (of the moment).
      std::vector<Batch> copies;
      for (int c = 0; c < placements; ++c) copies.push_back(make_batch());
      for (int pass = 0; pass < 2; ++pass) {
        std::printf("  placements, pass %d:", pass + 1);
        for (const Batch& copy : copies) {
          const PagedAttentionArgs a = copy.args(0, B, true, stream);
          std::printf(" %.1f", time_graph([&](int) { paged_attention(a); }, iters, reps, stream));
        }
        std::printf("\n");
        std::fflush(stdout);
      }
    }
  }

  // Mixed batch: 200 decode rows (context 2048) first, then 2 chunks of 512 rows on top of 1536 cached tokens.
  constexpr int64_t kDecodes = 200, kChunks = 2, kChunk = 512, kContext = 2048;
  std::vector<int32_t> ctx(kDecodes + kChunks, kContext), q_lens(kDecodes, 1);
  q_lens.insert(q_lens.end(), kChunks, kChunk);
  const Batch mixed(ctx, q_lens, 99);
  const int64_t B = kDecodes + kChunks;
  const PagedAttentionArgs all = mixed.args(0, B, true, stream);
  const PagedAttentionArgs decodes = mixed.args(0, kDecodes, false, stream);
  PagedAttentionArgs chunks = mixed.args(kDecodes, B, true, stream);
  const Tensor chunk_starts = rebased_starts(mixed, kDecodes, B);
  chunks.query_start = chunk_starts.view();
  const int64_t cols = mixed.block_tables.size(1);
  const AttentionPlan all_plan = make_plan(ctx, cols, stream);
  const AttentionPlan decode_plan = make_plan(std::span(ctx).first(kDecodes), cols, stream);
  const auto with = [](PagedAttentionArgs a, const AttentionPlan* plan) {
    a.plan = plan;
    return a;
  };
  struct Row {
    const char* name;
    PagedAttentionArgs args;
  };
  const std::vector<Row> rows = {{"mixed (one call)", all},
                                 {"mixed (one call, plan)", with(all, &all_plan)},
                                 {"decode part", decodes},
                                 {"decode part (plan)", with(decodes, &decode_plan)},
                                 {"prefill part", chunks}};
  std::printf("\nmixed batch: %lld decode rows (context %lld) + %lld chunks of %lld (context %lld)\n",
              (long long)kDecodes, (long long)kContext, (long long)kChunks, (long long)kChunk, (long long)kContext);
  std::vector<double> t;
  for (const Row& r : rows) {
    paged_attention(r.args);
    check_cuda_errors();
    t.push_back(time_graph([&](int) { paged_attention(r.args); }, iters, reps, stream));
    std::printf("%-28s %9.1f us\n", r.name, t.back());
    if (csv) std::fprintf(csv, "mixed,%lld,%lld,%lld,%lld,%lld,%lld,0,%.3f,\"%s\"\n", (long long)B, (long long)kContext,
                          (long long)kHq, (long long)kHkv, (long long)kD, (long long)kBlock, t.back(), r.name);
  }
  const int64_t bad = non_finite(mixed.out);
  std::printf("%-28s %9.1f us (decode + prefill parts); one call / two calls: %.2f (no plan), %.2f (plan)%s\n",
              "two separate calls", t[2] + t[4], t[0] / (t[2] + t[4]), t[1] / (t[3] + t[4]),
              bad ? "  NON-FINITE OUTPUT" : "");
  if (csv) std::fclose(csv);
  check(cudaStreamDestroy(stream), "stream");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_prefill_cuda: %s\n", e.what());
    return 1;
  }
}
