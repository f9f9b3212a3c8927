// bench_decode (CPU): paged-attention decode on the DESIGN.md §9 reference shapes scaled to a small
// machine, against yardsticks measured in the same run and interleaved with it (every repeat runs each
// once; each ratio is taken within a repeat, then the median over repeats, because a shared machine's
// bandwidth drifts):
//   - the read bandwidth: a plain streaming read of a buffer far larger than the caches, on all threads;
//   - the paged read: the same live K/V blocks read whole, one after another, the next one's lines
//     prefetched meanwhile, and no computation: what this machine gives for scattered pages (below the
//     streaming read where the hardware prefetchers need long runs to reach full speed);
//   - the naive path: gather every sequence's pages into a dense [B, ctx, Hkv, D] tensor (one memcpy per
//     block, all threads), then the same attention kernel over that dense copy (a strong naive path: the
//     best gather there is, into a buffer allocated once, and a SIMD attention);
//   - for the one-request shape, the same call on one thread (the split-KV scaling), and the streaming read on
//     one thread.
// Two ceilings follow from the yardsticks, per repeat: the speedup over the naive path that a call at the
// streaming read's rate would reach (its gather alone moves twice our bytes), and the scaling that a call on all
// threads at that rate would reach against the one-thread time measured.
// Bytes read = the K and V rows of every live position + the queries (+ the outputs written).
//
// The caches, the dense copy and the probe's buffer live on 2 MiB pages (madvise, for the kernel's
// transparent huge pages), as a KV pool allocated once should: with 4 KiB pages every f32 token row of a
// 32x128-head model is its own page, and page walks, not DRAM, set the pace (--small-pages shows it).
//
//   bench_decode [--quick] [--repeats N] [--dtype f32|bf16|f16|all] [--all-shapes] [--small-pages]
#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "common/paged_problem.h"
#include "pagedattn/attention.h"

using namespace pagedattn;
using namespace pagedattn::testing;

namespace {

struct BenchShape {
  int32_t batch, context;
  int64_t q_heads, kv_heads, head_dim;
  bool single_thread;  // also time it on one thread (split-KV scaling)
  bool core;           // part of the default set
};

// DESIGN.md §9 shapes (block 16), scaled to a 2-core, 24 GiB machine.
const BenchShape kShapes[] = {
    {16, 4096, 32, 8, 128, false, true},   // (16, 4096, 32, 8)
    {1, 32768, 32, 8, 128, true, true},    // (1, 32768, 32, 8): one request, split over KV
    {16, 2048, 9, 3, 64, false, true},     // SmolLM2-135M: 9 q heads over 3 KV heads
    {64, 1024, 32, 8, 128, false, false},  // (64, 2048, 32, 8) at half the length
    {8, 2048, 32, 32, 128, false, false},  // (32, 4096, 32, 32) scaled: MHA, no GQA sharing
    {2, 8192, 64, 8, 128, false, false},   // (8, 8192, 64, 8) scaled: group 8
};

using Clock = std::chrono::steady_clock;

bool g_huge_pages = true;

// A zeroed buffer, 2 MiB aligned and marked for huge pages (unless --small-pages), first touched by all
// threads.
class HugeBuffer {
 public:
  explicit HugeBuffer(size_t bytes) : bytes_((bytes + kHuge - 1) / kHuge * kHuge) {
    data_ = static_cast<char*>(std::aligned_alloc(kHuge, bytes_));
    if (data_ == nullptr) throw std::bad_alloc();
    if (g_huge_pages) madvise(data_, bytes_, MADV_HUGEPAGE);
    const auto n = static_cast<int64_t>(bytes_ / kHuge);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) std::memset(data_ + i * kHuge, 0, kHuge);
  }
  ~HugeBuffer() { std::free(data_); }
  HugeBuffer(const HugeBuffer&) = delete;
  HugeBuffer& operator=(const HugeBuffer&) = delete;
  char* data() const { return data_; }
  size_t bytes() const { return bytes_; }

 private:
  static constexpr size_t kHuge = size_t{2} << 20;
  size_t bytes_;
  char* data_;
};

// `view` with its data moved into a huge-page buffer.
TensorView huge_copy(const TensorView& view, std::vector<std::unique_ptr<HugeBuffer>>& keep) {
  keep.push_back(std::make_unique<HugeBuffer>(view.nbytes()));
  std::memcpy(keep.back()->data(), view.data, view.nbytes());
  TensorView moved = view;
  moved.data = keep.back()->data();
  return moved;
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// The hardware limit: every thread streams its share of a buffer far larger than the last-level cache.
class ReadBandwidthProbe {
 public:
  explicit ReadBandwidthProbe(size_t bytes) : buffer_(bytes) {
    auto* w = reinterpret_cast<uint64_t*>(buffer_.data());
    const auto n = static_cast<int64_t>(buffer_.bytes() / sizeof(uint64_t));
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) w[i] = static_cast<uint64_t>(i);
  }
  // Seconds for one pass on the current OpenMP thread count; the sum keeps the loads alive.
  double time_pass() {
    const auto* w = reinterpret_cast<const uint64_t*>(buffer_.data());
    const auto n = static_cast<int64_t>(buffer_.bytes() / sizeof(uint64_t));
    uint64_t sum = 0;
    const auto t0 = Clock::now();
#pragma omp parallel for schedule(static) reduction(+ : sum)
    for (int64_t i = 0; i < n; ++i) sum += w[i];
    const double t = seconds_since(t0);
    sink_ += sum;
    return t;
  }
  size_t bytes() const { return buffer_.bytes(); }
  uint64_t sink() const { return sink_; }

 private:
  HugeBuffer buffer_;
  uint64_t sink_ = 0;
};

// The blocks of a problem's tables as the gather and the paged read walk them: block (b, i) of sequence b.
class TableWalk {
 public:
  struct Block {
    int64_t first = 0;        // first position it holds
    size_t rows = 0;          // live positions in it (0: past the sequence's length)
    size_t offset = 0;        // byte offset of its first row in a cache
    size_t next_offset = 0;   // the same for the sequence's next block (its own at the sequence's end)
  };

  explicit TableWalk(const Problem& p)
      : num_seqs(p.spec.num_seqs()),
        cols(p.block_tables.size(1)),
        row_bytes(static_cast<size_t>(p.spec.num_kv_heads * p.spec.head_dim) * dtype_size(p.spec.dtype)),
        bs_(p.spec.block_size),
        table_(p.block_tables.data_as<int32_t>()),
        lens_(p.spec.context_lens.data()) {}

  Block at(int64_t b, int64_t i) const {
    const int64_t len = lens_[b], first = i * bs_;
    if (first >= len) return {};
    const int32_t next = first + bs_ < len ? table_[b * cols + i + 1] : table_[b * cols + i];
    return {first, static_cast<size_t>(std::min(bs_, len - first)), offset(table_[b * cols + i]), offset(next)};
  }

  const int64_t num_seqs, cols;
  const size_t row_bytes;

 private:
  size_t offset(int32_t block) const { return static_cast<size_t>(int64_t{block} * bs_) * row_bytes; }
  const int64_t bs_;
  const int32_t* table_;
  const int32_t* lens_;
};

// Seconds for one read of every live K and V block of `a` (the paged read), all threads: each block's lines
// summed while the same lines of the sequence's next block are prefetched into L2, as the kernel does. The
// sum keeps the loads alive.
double time_paged_read(const Problem& p, const PagedAttentionArgs& a, uint64_t& sink) {
  const TableWalk walk(p);
  const auto* keys = static_cast<const char*>(a.key_cache.data);
  const auto* values = static_cast<const char*>(a.value_cache.data);
  uint64_t sum = 0;
  const auto t0 = Clock::now();
#pragma omp parallel for collapse(2) schedule(static) reduction(+ : sum)
  for (int64_t b = 0; b < walk.num_seqs; ++b) {
    for (int64_t i = 0; i < walk.cols; ++i) {
      const TableWalk::Block blk = walk.at(b, i);
      const auto* k = reinterpret_cast<const uint64_t*>(keys + blk.offset);
      const auto* v = reinterpret_cast<const uint64_t*>(values + blk.offset);
      const size_t words = blk.rows * walk.row_bytes / sizeof(uint64_t);
      constexpr size_t kLineWords = 64 / sizeof(uint64_t);
      for (size_t w = 0; w < words; w += kLineWords) {
        __builtin_prefetch(keys + blk.next_offset + w * sizeof(uint64_t), 0, 2);
        __builtin_prefetch(values + blk.next_offset + w * sizeof(uint64_t), 0, 2);
        for (size_t j = w; j < std::min(words, w + kLineWords); ++j) sum += k[j] + v[j];
      }
    }
  }
  const double t = seconds_since(t0);
  sink += sum;
  return t;
}

// The naive path's state: a dense copy of every sequence's K/V, viewed as a cache of one block per sequence.
struct DenseCopy {
  std::vector<std::unique_ptr<HugeBuffer>> buffers;
  TensorView key, value;
  Tensor tables, lens;

  explicit DenseCopy(const Problem& p) {
    const ProblemSpec& s = p.spec;
    const int64_t B = s.num_seqs(), ctx = *std::max_element(s.context_lens.begin(), s.context_lens.end());
    const int64_t shape[] = {B, ctx, s.num_kv_heads, s.head_dim};
    for (TensorView* t : {&key, &value}) {
      buffers.push_back(std::make_unique<HugeBuffer>(static_cast<size_t>(B * ctx * s.num_kv_heads * s.head_dim) *
                                                     dtype_size(s.dtype)));
      *t = TensorView(buffers.back()->data(), s.dtype, shape);
    }
    tables = Tensor::empty({B, 1}, DType::i32);
    lens = Tensor::empty({B}, DType::i32);
    for (int64_t b = 0; b < B; ++b) {
      tables.data_as<int32_t>()[b] = static_cast<int32_t>(b);
      lens.data_as<int32_t>()[b] = s.context_lens[static_cast<size_t>(b)];
    }
  }

  // Gathers the pages (one memcpy per live block and tensor, all threads).
  void gather(const Problem& p, const PagedAttentionArgs& paged) {
    const TableWalk walk(p);
    const int64_t dense_rows = key.size(1);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t b = 0; b < walk.num_seqs; ++b) {
      for (int64_t i = 0; i < walk.cols; ++i) {
        const TableWalk::Block blk = walk.at(b, i);
        const size_t dst = static_cast<size_t>(b * dense_rows + blk.first) * walk.row_bytes;
        std::memcpy(static_cast<char*>(key.data) + dst, static_cast<const char*>(paged.key_cache.data) + blk.offset,
                    blk.rows * walk.row_bytes);
        std::memcpy(static_cast<char*>(value.data) + dst,
                    static_cast<const char*>(paged.value_cache.data) + blk.offset, blk.rows * walk.row_bytes);
      }
    }
  }

  PagedAttentionArgs args(const PagedAttentionArgs& paged) const {
    PagedAttentionArgs a = paged;
    a.key_cache = key;
    a.value_cache = value;
    a.block_tables = tables;
    a.context_lens = lens;
    return a;
  }
};

struct Options {
  int repeats = 11;
  bool quick = false;
  bool all_shapes = false;
  std::vector<DType> dtypes = {DType::f32, DType::bf16};
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--quick") {
      o.quick = true;
      o.repeats = 3;
    } else if (arg == "--repeats" && i + 1 < argc) {
      o.repeats = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--small-pages") {
      g_huge_pages = false;
    } else if (arg == "--all-shapes") {
      o.all_shapes = true;
    } else if (arg == "--dtype" && i + 1 < argc) {
      const std::string d = argv[++i];
      if (d == "f32") o.dtypes = {DType::f32};
      else if (d == "bf16") o.dtypes = {DType::bf16};
      else if (d == "f16") o.dtypes = {DType::f16};
      else o.dtypes = {DType::f32, DType::bf16, DType::f16};
    } else {
      std::fprintf(stderr,
                   "usage: bench_decode [--quick] [--repeats N] [--dtype f32|bf16|f16|all] [--all-shapes] "
                   "[--small-pages]\n");
      std::exit(arg == "--help" ? 0 : 2);
    }
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse(argc, argv);
  const int threads = omp_get_max_threads();
  ReadBandwidthProbe probe(size_t{1} << 30);
  fmt::print("bench_decode: {} threads, {} repeats (median), read-bandwidth probe over {} MiB, {} pages\n\n",
             threads, opt.repeats, probe.bytes() >> 20, g_huge_pages ? "2 MiB (madvise)" : "4 KiB");
  fmt::print("| B | ctx | Hq/Hkv | D | dtype | time ms | MB read | GB/s | read BW GB/s | % of BW | paged read GB/s | "
             "% of paged read | gather+attend ms (gather, attend) | speedup | speedup at BW | 1-thread ms | scaling | "
             "1-thread read BW GB/s | scaling at BW |\n");
  fmt::print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  uint64_t sink = 0;

  for (const BenchShape& shape : kShapes) {
    if (!shape.core && !opt.all_shapes) continue;
    for (DType dtype : opt.dtypes) {
      ProblemSpec spec;
      spec.context_lens.assign(static_cast<size_t>(shape.batch), shape.context);
      spec.num_q_heads = shape.q_heads;
      spec.num_kv_heads = shape.kv_heads;
      spec.head_dim = shape.head_dim;
      spec.block_size = 16;
      spec.dtype = dtype;
      spec.spare_blocks = 0;
      const Problem p = make_problem(spec);
      std::vector<std::unique_ptr<HugeBuffer>> keep;
      PagedAttentionArgs paged_args = p.args();
      paged_args.key_cache = huge_copy(p.key_cache, keep);
      paged_args.value_cache = huge_copy(p.value_cache, keep);
      DenseCopy dense(p);
      const PagedAttentionArgs dense_args = dense.args(paged_args);

      const double kv_bytes = 2.0 * shape.batch * shape.context * static_cast<double>(shape.kv_heads * shape.head_dim) *
                              static_cast<double>(dtype_size(dtype));
      const double bytes = kv_bytes + 2.0 * static_cast<double>(p.query.nbytes());

      // Warm-up (page faults, thread team, scratch), then repeats that interleave every measurement. The
      // machine's bandwidth drifts (other tenants): each ratio is taken within one repeat, then the median.
      paged_attention(paged_args);
      dense.gather(p, paged_args);
      paged_attention(dense_args);
      auto timed = [](auto&& f) {
        const auto t0 = Clock::now();
        f();
        return seconds_since(t0);
      };
      std::vector<double> t_paged, bw, pct, paged_bw, paged_pct, t_gather, t_dense, speedup, speedup_at_bw, t_single,
          scaling, bw_single, scaling_at_bw;
      for (int r = 0; r < opt.repeats; ++r) {
        bw.push_back(static_cast<double>(probe.bytes()) / probe.time_pass());
        paged_bw.push_back(kv_bytes / time_paged_read(p, paged_args, sink));
        const double paged = timed([&] { paged_attention(paged_args); });
        const double gather = timed([&] { dense.gather(p, paged_args); });
        const double attend = timed([&] { paged_attention(dense_args); });
        t_paged.push_back(paged);
        pct.push_back(100.0 * bytes / paged / bw.back());
        paged_pct.push_back(100.0 * bytes / paged / paged_bw.back());
        t_gather.push_back(gather);
        t_dense.push_back(attend);
        speedup.push_back((gather + attend) / paged);
        const double at_bw = bytes / bw.back();  // a call at the streaming read's rate
        speedup_at_bw.push_back((gather + at_bw) / at_bw);
        if (shape.single_thread) {
          omp_set_num_threads(1);
          bw_single.push_back(static_cast<double>(probe.bytes()) / probe.time_pass());
          t_single.push_back(timed([&] { paged_attention(paged_args); }));
          omp_set_num_threads(threads);
          scaling.push_back(t_single.back() / paged);
          scaling_at_bw.push_back(t_single.back() / at_bw);
        }
      }

      const double t = median(t_paged);
      const std::string single =
          t_single.empty() ? std::string(" |  |  | ")
                           : fmt::format("{:.2f} | {:.2f}x | {:.1f} | {:.2f}x", median(t_single) * 1e3, median(scaling),
                                         median(bw_single) / 1e9, median(scaling_at_bw));
      fmt::print("| {} | {} | {}/{} | {} | {} | {:.2f} | {:.0f} | {:.1f} | {:.1f} | {:.0f}% | {:.1f} | {:.0f}% | "
                 "{:.2f} ({:.2f}, {:.2f}) | {:.2f}x | {:.2f}x | {} |\n",
                 shape.batch, shape.context, shape.q_heads, shape.kv_heads, shape.head_dim, dtype_name(dtype), t * 1e3,
                 bytes / 1e6, bytes / t / 1e9, median(bw) / 1e9, median(pct), median(paged_bw) / 1e9, median(paged_pct),
                 (median(t_gather) + median(t_dense)) * 1e3, median(t_gather) * 1e3, median(t_dense) * 1e3,
                 median(speedup), median(speedup_at_bw), single);
      std::fflush(stdout);
    }
  }
  return probe.sink() + sink == 42 ? 1 : 0;  // keep the probes' loads observable
}
