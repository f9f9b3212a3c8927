// bench_decode_cuda: our paged decode on the reference shapes of DESIGN.md §9, SmolLM2's shape and a
// block-size sweep, against the memory floor (K+V bytes / device-to-device copy bandwidth, measured in
// this run). Each timing is the median over replays of a CUDA graph of `iters` calls, cycling over
// enough copies of the cache that the working set is several times the L2. Writes a CSV for
// bench/peers/peer_decode.py, which adds the peers (torch SDPA, gather+SDPA, FlashInfer) of the same run.
//   bench_decode_cuda [--csv out.csv] [--iters 20] [--reps 15] [--quick] [--only INDEX] [--shape B,ctx,Hq,Hkv,D,bs]...
//                     [--layout shuffled|sorted|in-order]
// --shape (repeatable) adds a shape of one's own to the table, e.g. to compare layouts of the same bytes.
// --layout places the pages: the default shuffles all block ids (the worst case for locality, and what the
// peers get); the others show what that scatter costs.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "device_fill.h"
#include "graph_timer.h"
#include "pagedattn/attention.h"

namespace {

using namespace pagedattn;
using bench::check;
using bench::time_graph;

struct Shape {
  std::string group;
  int64_t B, ctx, Hq, Hkv, D, bs;
};

std::vector<Shape> shapes(bool quick) {
  std::vector<Shape> s = {{"reference", 1, 32768, 32, 8, 128, 16},  {"reference", 16, 4096, 32, 8, 128, 16},
                          {"reference", 64, 2048, 32, 8, 128, 16},  {"reference", 256, 512, 32, 8, 128, 16},
                          {"reference", 32, 4096, 32, 32, 128, 16}, {"reference", 8, 8192, 64, 8, 128, 16},
                          {"smollm2", 64, 2048, 9, 3, 64, 16}};
  for (int64_t bs : {1, 8, 16, 64, 256}) s.push_back({"block size", 16, 4096, 32, 8, 128, bs});
  if (quick) s.resize(3);
  return s;
}

Shape parse_shape(const std::string& text) {
  Shape s{"custom"};
  const int fields = std::sscanf(text.c_str(), "%" SCNd64 ",%" SCNd64 ",%" SCNd64 ",%" SCNd64 ",%" SCNd64 ",%" SCNd64,
                                 &s.B, &s.ctx, &s.Hq, &s.Hkv, &s.D, &s.bs);
  if (fields != 6 || s.B < 1 || s.ctx < 1 || s.Hq < 1 || s.Hkv < 1 || s.Hq % s.Hkv != 0 || s.D < 1 || s.bs < 1)
    throw std::runtime_error("--shape " + text + ": expected B,ctx,Hq,Hkv,D,bs (positive, Hq a multiple of Hkv)");
  return s;
}

// Device-to-device copy bandwidth, bytes read + written per second (as the peers' script measures it).
double copy_bandwidth(cudaStream_t stream) {
  const size_t bytes = size_t{2} << 30;
  const Tensor a = Tensor::empty({static_cast<int64_t>(bytes / 2)}, DType::bf16, Device::cuda());
  const Tensor b = Tensor::empty({static_cast<int64_t>(bytes / 2)}, DType::bf16, Device::cuda());
  bench::fill_random(a, 1);
  const double us = time_graph([&](int) { check(cudaMemcpyAsync(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice, stream), "copy"); },
                               4, 10, stream);
  return 2.0 * static_cast<double>(bytes) / (us * 1e-6);
}

struct Copy {
  Tensor query, key_cache, value_cache, out;
};

int run(int argc, char** argv) {
  std::string csv_path;
  int iters = 20, reps = 15;
  bool quick = false;
  int only = -1;  // one shape (by its index in the table), e.g. under a profiler
  // Where a sequence's pages lie (diagnostics; the default is the worst case): "shuffled" (random block ids),
  // "sorted" (random ids, each sequence's ascending), "in-order" (each sequence's pages consecutive).
  std::string layout = "shuffled";
  std::vector<Shape> extra;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--csv" && i + 1 < argc) csv_path = argv[++i];
    else if (arg == "--iters" && i + 1 < argc) iters = std::atoi(argv[++i]);
    else if (arg == "--reps" && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (arg == "--quick") quick = true;
    else if (arg == "--only" && i + 1 < argc) only = std::atoi(argv[++i]);
    else if (arg == "--shape" && i + 1 < argc) extra.push_back(parse_shape(argv[++i]));
    else if (arg == "--layout" && i + 1 < argc) layout = argv[++i];
    else throw std::runtime_error("usage: bench_decode_cuda [--csv out.csv] [--iters N] [--reps N] [--quick] [--only INDEX] "
                                  "[--shape B,ctx,Hq,Hkv,D,bs]... [--layout shuffled|sorted|in-order]");
  }
  if (layout != "shuffled" && layout != "sorted" && layout != "in-order")
    throw std::runtime_error("--layout " + layout + ": expected shuffled, sorted or in-order");
  if (!cuda_available()) {
    std::printf("no CUDA device: nothing to measure\n");
    return 0;
  }
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, 0), "properties");
  cudaStream_t stream = nullptr;
  check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream");
  const double bandwidth = copy_bandwidth(stream);
  std::printf("device %s, %d SMs, L2 %.0f MB; copy bandwidth %.3f TB/s (read + write)\n", prop.name,
              prop.multiProcessorCount, prop.l2CacheSize / 1e6, bandwidth / 1e12);
  std::printf("%-10s %4s %6s %3s %3s %4s %4s %9s %9s %9s %6s %9s %6s %5s\n", "group", "B", "ctx", "Hq", "Hkv", "D", "bs",
              "KV MB", "floor us", "ours us", "floor%", "noplan us", "items", "split");
  FILE* csv = csv_path.empty() ? nullptr : std::fopen(csv_path.c_str(), "w");
  if (csv) std::fprintf(csv, "group,B,ctx,Hq,Hkv,D,bs,kv_bytes,copy_bw,floor_us,ours_us,ours_noplan_us,items,split_seqs\n");

  std::vector<Shape> selected = shapes(quick);
  if (only >= 0) selected = {selected.at(static_cast<size_t>(only))};
  selected.insert(selected.end(), extra.begin(), extra.end());
  for (const Shape& s : selected) {
    const int64_t pages_per_seq = (s.ctx + s.bs - 1) / s.bs, num_blocks = s.B * pages_per_seq;
    const double kv_bytes = 2.0 * s.B * s.ctx * s.Hkv * s.D * 2;
    const int copies = static_cast<int>(std::clamp<double>(std::ceil(4.0 * prop.l2CacheSize / kv_bytes), 1, 8));
    std::vector<int32_t> ids(static_cast<size_t>(num_blocks)), lens(static_cast<size_t>(s.B), static_cast<int32_t>(s.ctx));
    std::iota(ids.begin(), ids.end(), 0);
    if (layout != "in-order") std::shuffle(ids.begin(), ids.end(), std::mt19937_64(s.B * 131 + s.bs));
    if (layout == "sorted")
      for (int64_t b = 0; b < s.B; ++b) std::sort(ids.begin() + b * pages_per_seq, ids.begin() + (b + 1) * pages_per_seq);
    const Tensor table = Tensor::empty({s.B, pages_per_seq}, DType::i32);
    std::memcpy(table.data(), ids.data(), ids.size() * 4);
    const Tensor lens_host = Tensor::empty({s.B}, DType::i32);
    std::memcpy(lens_host.data(), lens.data(), lens.size() * 4);
    const Tensor table_gpu = table.to(Device::cuda()), lens_gpu = lens_host.to(Device::cuda());
    std::vector<Copy> data;
    for (int c = 0; c < copies; ++c) {
      Copy d{Tensor::empty({s.B, s.Hq, s.D}, DType::bf16, Device::cuda()),
             Tensor::empty({num_blocks, s.bs, s.Hkv, s.D}, DType::bf16, Device::cuda()),
             Tensor::empty({num_blocks, s.bs, s.Hkv, s.D}, DType::bf16, Device::cuda()),
             Tensor::empty({s.B, s.Hq, s.D}, DType::bf16, Device::cuda())};
      bench::fill_random(d.query, 10 * c + 1);
      bench::fill_random(d.key_cache, 10 * c + 2);
      bench::fill_random(d.value_cache, 10 * c + 3);
      data.push_back(std::move(d));
    }
    AttentionPlan plan({.max_seqs = s.B, .max_blocks_per_seq = pages_per_seq, .num_q_heads = s.Hq,
                        .num_kv_heads = s.Hkv, .head_dim = s.D},
                       Device::cuda());
    plan.update(lens, s.bs, stream);
    auto call = [&](int i, bool with_plan) {
      const Copy& d = data[static_cast<size_t>(i % copies)];
      paged_attention({.out = d.out, .query = d.query, .key_cache = d.key_cache, .value_cache = d.value_cache,
                       .block_tables = table_gpu, .context_lens = lens_gpu, .stream = stream,
                       .plan = with_plan ? &plan : nullptr});
    };
    for (int i = 0; i < copies; ++i) call(i, true), call(i, false);
    check_cuda_errors();
    const Tensor out = data[0].out.to(Device::cpu());
    int64_t non_finite = 0;
    for (int64_t i = 0; i < out.numel(); ++i) non_finite += !std::isfinite(to_f32(out.data_as<bf16>()[i]));
    const double ours = time_graph([&](int i) { call(i, true); }, iters, reps, stream);
    const double noplan = time_graph([&](int i) { call(i, false); }, iters, reps, stream);
    const double floor_us = kv_bytes / bandwidth * 1e6;
    std::printf("%-10s %4lld %6lld %3lld %3lld %4lld %4lld %9.1f %9.1f %9.1f %5.1f%% %9.1f %6lld %5lld%s\n",
                s.group.c_str(), (long long)s.B, (long long)s.ctx, (long long)s.Hq, (long long)s.Hkv, (long long)s.D,
                (long long)s.bs, kv_bytes / 1e6, floor_us, ours, 100.0 * floor_us / ours, noplan,
                (long long)plan.num_work_items(), (long long)plan.num_split_seqs(),
                non_finite ? "  NON-FINITE OUTPUT" : "");
    std::fflush(stdout);
    if (csv)
      std::fprintf(csv, "%s,%lld,%lld,%lld,%lld,%lld,%lld,%.0f,%.6g,%.3f,%.3f,%.3f,%lld,%lld\n", s.group.c_str(),
                   (long long)s.B, (long long)s.ctx, (long long)s.Hq, (long long)s.Hkv, (long long)s.D, (long long)s.bs,
                   kv_bytes, bandwidth, floor_us, ours, noplan, (long long)plan.num_work_items(),
                   (long long)plan.num_split_seqs());
  }
  if (csv) std::fclose(csv);
  check(cudaStreamDestroy(stream), "stream");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_decode_cuda: %s\n", e.what());
    return 1;
  }
}
