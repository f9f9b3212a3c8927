// Issue 6 (bench/results/cuda_h200.md): our decode kernel trails cuDNN's SDPA on dense K/V by 0-3% on shuffled
// pages and reaches it on in-order pages (runs 40-42). This lab measures the access pattern alone: every K/V byte
// of the reference shapes read into shared memory through a multi-stage pipeline, with no attention math, under
// different schemes, beside the same read of the dense [B, Hkv, ctx, D] layout cuDNN's SDPA reads. If no scheme
// reads shuffled pages in less time than cuDNN takes for the whole attention, no kernel of that scheme can beat
// cuDNN there. Every scheme's reads are checked: the sum of every 32-bit word read must equal the sum over the
// whole cache (each word read exactly once). bf16; timings as bench_decode_cuda's (median over replays of a CUDA
// graph of 20 calls, cycling over enough copies of the cache that the working set is at least 4 x the L2).
// A lab, not part of the build; on the GPU machine (nvcc 13, an sm_90 GPU):
//   nvcc -O3 -std=c++20 -arch=sm_90a -I src bench/results/raw/cuda_access_pattern.cu -o access_gpu && ./access_gpu
// (from the repository root; [--reps N])
// Schemes (a "unit" is what one CTA of our kernel reads: one sequence's range of pages for one KV head):
//   head      our kernel's decomposition: a CTA per (work item, KV head), 64-row tiles of 16-byte cp.async,
//             6 stages with one CTA per SM when the grid fits on the SMs, else 3 with two per SM
//   dense     the same CTAs over the dense layout (each (sequence, KV head) contiguous: what cuDNN reads)
//   whole     a CTA per work item reading all KV heads of its tokens (each page's rows contiguous)
//   heads xN  a CTA per work item and N adjacent KV heads (N x 256 contiguous bytes per row at D = 128)
//   persist   one CTA per SM slot (all SMs) walking an equal share of the tiles through one pipeline, across unit
//             boundaries (no prologue per unit, no tail; the merge of a cut unit is not costed)
//   bulk      cp.async.bulk per contiguous run (a row of one head, or a page's rows of all heads), mbarriers
//   cluster   `head` launched in thread-block clusters of an item's KV heads (up to 8): the CTAs that read the
//             same pages run on one GPC at once. If the scatter costs through address translation (a 16-token
//             page gives a head's CTA 4 KB per translation; bs 64 and 256 reach the in-order times), this and
//             `whole` (32 KB per translation) should both close on `head in-order`.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "../../cuda/graph_timer.h"  // bench/cuda: the CUDA benchmarks' timer
#include "attention/cuda/mbarrier.cuh"
#include "attention/cuda/ptx.cuh"

using pagedattn::bench::check;
using pagedattn::bench::time_graph;

constexpr int kThreads = 128;
constexpr int kTileRows = 64;     // head rows per tile (a tile of N heads holds 64 / N tokens of each)
constexpr int kMaxPasses = 8;     // 16-byte copies per thread per tile and K/V: tiles of at most 16 KB each
constexpr int kMaxTileBytes = kMaxPasses * kThreads * 16;

struct Tile {
  int seq, tok0, ntok;
  uint32_t col;  // byte offset of the unit's first head in a token's row
};

struct Params {
  const char *k, *v;
  const int* table;
  int pages_per_seq, bs_log2;
  uint32_t row_pitch;  // bytes per token: all KV heads
  uint32_t run_bytes;  // bytes per token a unit reads: its heads
  int tile_tokens;
  const Tile* tiles;
  const int* cta_first;  // CTA c reads tiles[cta_first[c] .. cta_first[c + 1])
  uint32_t* sums;        // per CTA: the sum of every word it read
};

// The kernel's own PTX wrappers (the same cp.async as the decode kernel); two sm_90 ones it does not use.
using pagedattn::cuda::ptx::cp_async_16;
using pagedattn::cuda::ptx::cp_async_commit;
using pagedattn::cuda::ptx::cp_async_wait;
using pagedattn::cuda::ptx::smem_address;
namespace mbarrier = pagedattn::cuda::mbarrier;
__device__ inline void bar_expect(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ inline void bulk_copy(uint32_t dst, const void* src, uint32_t bytes, uint32_t bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(dst),
               "l"(src), "r"(bytes), "r"(bar)
               : "memory");
}

// The cache slot of token `tok` of sequence `seq`.
__device__ inline uint32_t slot_of(const Params& p, int seq, int tok) {
  const int id = __ldg(p.table + seq * p.pages_per_seq + (tok >> p.bs_log2));
  return (static_cast<uint32_t>(id) << p.bs_log2) + (tok & ((1 << p.bs_log2) - 1));
}

// cp.async: thread t copies chunks t + 128k of a tile (row = chunk / chunks per row). bulk: thread r < 64 copies the
// K run starting at row r and thread 64 + r the V run (a run: one row, or with whole rows the rows up to the page's end).
template <int kStages, bool kBulk>
__global__ void __launch_bounds__(kThreads) read_kernel(const __grid_constant__ Params p) {
  extern __shared__ __align__(128) unsigned char smem[];
  const int tid = threadIdx.x;
  const int first = p.cta_first[blockIdx.x], count = p.cta_first[blockIdx.x + 1] - first;
  const int chunks_per_row = static_cast<int>(p.run_bytes / 16);
  const uint32_t tile_bytes = static_cast<uint32_t>(p.tile_tokens) * p.run_bytes;  // K or V
  const uint32_t base = smem_address(smem);
  const uint32_t bars = base + kStages * 2 * tile_bytes;
  const bool contiguous_rows = p.run_bytes == p.row_pitch;  // a page's rows of all heads are one run
  if constexpr (kBulk) {
    if (tid < kStages) mbarrier::init(bars + 8 * tid, 1);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    __syncthreads();
  }
  // Row of a thread's copy k, and whether it has one (a tile may be short).
  auto row_of = [&](int k) { return kBulk ? tid % kTileRows : (tid + k * kThreads) / chunks_per_row; };
  constexpr int kSlots = kBulk ? 1 : kMaxPasses;
  auto look_up = [&](const Tile& t, uint32_t (&slots)[kSlots]) {
#pragma unroll
    for (int k = 0; k < kSlots; ++k) {
      const int r = row_of(k);
      slots[k] = r < t.ntok ? slot_of(p, t.seq, t.tok0 + r) : 0u;
    }
  };
  auto issue = [&](const Tile& t, const uint32_t (&slots)[kSlots], int n) {
    const uint32_t sk = base + (n % kStages) * 2 * tile_bytes, sv = sk + tile_bytes;
    if constexpr (kBulk) {
      const int r = tid % kTileRows;
      const uint32_t bar = bars + 8 * (n % kStages);
      const int in_page = (t.tok0 + r) & ((1 << p.bs_log2) - 1);
      const bool starts = r < t.ntok && (!contiguous_rows || r == 0 || in_page == 0);
      if (starts) {
        const int rows = contiguous_rows ? min(t.ntok - r, (1 << p.bs_log2) - in_page) : 1;
        const char* src = (tid < kTileRows ? p.k : p.v) + static_cast<uint64_t>(slots[0]) * p.row_pitch + t.col;
        bulk_copy((tid < kTileRows ? sk : sv) + r * p.run_bytes, src, rows * p.run_bytes, bar);
      }
      if (tid == 0) bar_expect(bar, 2u * t.ntok * p.run_bytes);
    } else {
#pragma unroll
      for (int k = 0; k < kMaxPasses; ++k) {
        const int i = tid + k * kThreads, r = i / chunks_per_row;
        if (r >= t.ntok) break;
        const uint64_t at = static_cast<uint64_t>(slots[k]) * p.row_pitch + t.col + (i - r * chunks_per_row) * 16;
        cp_async_16(sk + i * 16, p.k + at, true);
        cp_async_16(sv + i * 16, p.v + at, true);
      }
    }
  };

  // Prologue: the first kStages - 1 tiles, then the look-ups run ahead of the issue (slots one tile ahead, the
  // descriptors two), so that no table or descriptor load stalls a tile's copies.
  uint32_t slots[kSlots];
#pragma unroll
  for (int n = 0; n < kStages - 1; ++n) {
    if (n < count) {
      const Tile t = p.tiles[first + n];
      look_up(t, slots);
      issue(t, slots, n);
    }
    if constexpr (!kBulk) cp_async_commit();
  }
  Tile ahead = kStages - 1 < count ? p.tiles[first + kStages - 1] : Tile{};
  look_up(ahead, slots);
  Tile ahead2 = kStages < count ? p.tiles[first + kStages] : Tile{};

  uint32_t sum = 0;
  for (int n = 0; n < count; ++n) {
    const int live = p.tiles[first + n].ntok * chunks_per_row;  // loaded while the tile lands
    if constexpr (kBulk) mbarrier::wait(bars + 8 * (n % kStages), (n / kStages) & 1);
    else cp_async_wait<kStages - 2>();
    __syncthreads();  // every thread's copies of tile n landed; everyone is done with the slot refilled next
    const int next = n + kStages - 1;
    if (next < count) issue(ahead, slots, next);
    if constexpr (!kBulk) cp_async_commit();
    ahead = ahead2;
    if (next + 1 < count) look_up(ahead, slots);
    if (next + 2 < count) ahead2 = p.tiles[first + next + 2];
    // Consume: every thread reads a share of the tile's K and V (the math's ldmatrix traffic, roughly).
    const uint4* tk = reinterpret_cast<const uint4*>(smem + (n % kStages) * 2 * tile_bytes);
    const uint4* tv = tk + tile_bytes / 16;
    for (int i = tid; i < live; i += kThreads) {
      const uint4 a = tk[i], b = tv[i];
      sum += a.x + a.y + a.z + a.w + b.x + b.y + b.z + b.w;
    }
  }
  for (int o = 16; o > 0; o /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  __syncthreads();
  uint32_t* warp_sums = reinterpret_cast<uint32_t*>(smem);
  if (tid % 32 == 0) warp_sums[tid / 32] = sum;
  __syncthreads();
  if (tid == 0) p.sums[blockIdx.x] = warp_sums[0] + warp_sums[1] + warp_sums[2] + warp_sums[3];
}

__global__ void fill_kernel(uint32_t* data, size_t n, uint64_t seed) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n; i += size_t{gridDim.x} * blockDim.x) {
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + i;
    x ^= x >> 33, x *= 0xff51afd7ed558ccdull, x ^= x >> 33;
    data[i] = static_cast<uint32_t>(x);
  }
}
__global__ void sum_kernel(const uint32_t* data, size_t n, uint32_t* out) {
  uint32_t s = 0;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n; i += size_t{gridDim.x} * blockDim.x)
    s += data[i];
  atomicAdd(out, s);
}

struct Shape {
  int B, ctx, Hq, Hkv, D, bs;
};
enum class Layout { shuffled, sorted, in_order, dense };
struct Scheme {
  const char* name;
  Layout layout;
  int heads = 1;  // KV heads per CTA; 0: all
  bool persistent = false, bulk = false, cluster = false;
};

struct Work {
  std::vector<Tile> tiles;
  std::vector<int> cta_first{0};
  int ctas_per_sm = 1;
};

// The units and, per CTA, its tiles. Splits as our planner makes them: none when the unsplit grid puts a CTA on
// 90% of the SMs, else about one wave (at least 256 tokens, at most 2048 pages per item).
Work plan(int seqs, int ctx, int kv_heads, int head_bytes, int bs, int heads, bool persistent, int sms) {
  const int groups = kv_heads / heads, pages = (ctx + bs - 1) / bs;
  const int unsplit = seqs * groups;
  int splits = unsplit * 10 >= sms * 9 ? 1 : std::max(1, sms / unsplit);
  int chunk = (pages + splits - 1) / splits;
  chunk = std::max(chunk, (256 + bs - 1) / bs);
  chunk = std::min(chunk, 2048);
  splits = (pages + chunk - 1) / chunk;
  const int tile_tokens = std::max(1, kTileRows / heads);
  Work w;
  std::vector<int> unit_ends;  // into w.tiles
  for (int b = 0; b < seqs; ++b)
    for (int s = 0; s < splits; ++s)
      for (int g = 0; g < groups; ++g) {
        const int t0 = s * chunk * bs, t1 = std::min(ctx, (s + 1) * chunk * bs);
        for (int t = t0; t < t1; t += tile_tokens)
          w.tiles.push_back({b, t, std::min(tile_tokens, t1 - t), static_cast<uint32_t>(g * heads * head_bytes)});
        unit_ends.push_back(static_cast<int>(w.tiles.size()));
      }
  const int num_units = static_cast<int>(unit_ends.size());
  w.ctas_per_sm = num_units <= sms ? 1 : 2;
  if (!persistent) {
    w.cta_first.insert(w.cta_first.end(), unit_ends.begin(), unit_ends.end());
    return w;
  }
  // Persistent: every SM slot takes an equal share of the tiles in unit order (units cut anywhere: a kernel
  // would merge the parts, which this lab does not cost).
  const int64_t grid = int64_t{sms} * w.ctas_per_sm, total = static_cast<int64_t>(w.tiles.size());
  for (int64_t c = 1; c <= grid; ++c) w.cta_first.push_back(static_cast<int>(total * c / grid));
  return w;
}

using Kernel = void (*)(Params);
Kernel pick(int stages, bool bulk) {
  switch (stages * 2 + bulk) {
    case 6: return read_kernel<3, false>;
    case 7: return read_kernel<3, true>;
    case 8: return read_kernel<4, false>;
    case 9: return read_kernel<4, true>;
    case 12: return read_kernel<6, false>;
    case 13: return read_kernel<6, true>;
    case 16: return read_kernel<8, false>;
    case 17: return read_kernel<8, true>;
  }
  std::fprintf(stderr, "no build with %d stages\n", stages);
  std::exit(1);
}

int run(int argc, char** argv) {
  int reps = 15, iters = 20;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: access_gpu [--reps N]\n");
      return 2;
    }
  }
  cudaDeviceProp prop;
  check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  const int sms = prop.multiProcessorCount;
  cudaStream_t stream;
  check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  std::printf("device %s, %d SMs, L2 %.0f MB\n", prop.name, sms, prop.l2CacheSize / 1e6);

  const std::vector<Shape> shapes = {{1, 32768, 32, 8, 128, 16}, {16, 4096, 32, 8, 128, 16}, {64, 2048, 32, 8, 128, 16},
                                     {256, 512, 32, 8, 128, 16}, {32, 4096, 32, 32, 128, 16}, {8, 8192, 64, 8, 128, 16},
                                     {64, 2048, 9, 3, 64, 16},   {16, 4096, 32, 8, 128, 1},   {16, 4096, 32, 8, 128, 256}};
  const std::vector<Scheme> schemes = {
      {"dense", Layout::dense},  // first: the others are printed as a ratio to it
      {"head", Layout::shuffled},
      {"head sorted", Layout::sorted},
      {"head in-order", Layout::in_order},
      {"head persist", Layout::shuffled, 1, true},
      {"head bulk", Layout::shuffled, 1, false, true},
      {"head cluster", Layout::shuffled, 1, false, false, true},
      {"head cluster in-order", Layout::in_order, 1, false, false, true},
      {"heads x2", Layout::shuffled, 2},
      {"heads x4", Layout::shuffled, 4},
      {"whole", Layout::shuffled, 0},
      {"whole in-order", Layout::in_order, 0},
      {"whole bulk", Layout::shuffled, 0, false, true},
      {"whole persist", Layout::shuffled, 0, true},
      {"dense persist", Layout::dense, 1, true},
      {"dense bulk", Layout::dense, 1, false, true},
  };
  std::printf("%-26s %-22s %6s %6s %5s %9s %7s %8s %s\n", "shape (B,ctx,Hq,Hkv,D,bs)", "scheme", "CTAs", "tiles", "CTA/SM",
              "us", "TB/s", "/dense", "check");
  for (const Shape& s : shapes) {
    const int head_bytes = s.D * 2, pages = (s.ctx + s.bs - 1) / s.bs, num_blocks = s.B * pages;
    const size_t cache_bytes = static_cast<size_t>(num_blocks) * s.bs * s.Hkv * head_bytes;
    const double kv_bytes = 2.0 * cache_bytes;
    const int copies = static_cast<int>(std::clamp<double>(std::ceil(4.0 * prop.l2CacheSize / kv_bytes), 1, 8));
    std::vector<uint32_t*> k(copies), v(copies);
    for (int c = 0; c < copies; ++c) {
      check(cudaMalloc(&k[c], cache_bytes), "cudaMalloc");
      check(cudaMalloc(&v[c], cache_bytes), "cudaMalloc");
      fill_kernel<<<1024, 256, 0, stream>>>(k[c], cache_bytes / 4, 2 * c + 1);
      fill_kernel<<<1024, 256, 0, stream>>>(v[c], cache_bytes / 4, 2 * c + 2);
    }
    uint32_t* d_expected;
    check(cudaMalloc(&d_expected, 4), "cudaMalloc");
    check(cudaMemsetAsync(d_expected, 0, 4, stream), "cudaMemsetAsync");
    sum_kernel<<<1024, 256, 0, stream>>>(k[0], cache_bytes / 4, d_expected);
    sum_kernel<<<1024, 256, 0, stream>>>(v[0], cache_bytes / 4, d_expected);
    uint32_t expected;
    check(cudaMemcpyAsync(&expected, d_expected, 4, cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync");
    check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    double dense_us = 0;
    for (const Scheme& sc : schemes) {
      // The dense layout is the same buffer read as B x Hkv sequences of one head, in-order 16-token pages.
      const bool dense = sc.layout == Layout::dense;
      const int seqs = dense ? s.B * s.Hkv : s.B, kv_heads = dense ? 1 : s.Hkv, bs = dense ? 16 : s.bs;
      const int seq_pages = (s.ctx + bs - 1) / bs;
      std::vector<int> ids(static_cast<size_t>(seqs) * seq_pages);
      std::iota(ids.begin(), ids.end(), 0);
      if (sc.layout == Layout::shuffled || sc.layout == Layout::sorted)
        std::shuffle(ids.begin(), ids.end(), std::mt19937_64(s.B * 131 + s.bs));  // as bench_decode_cuda
      if (sc.layout == Layout::sorted)
        for (int b = 0; b < seqs; ++b) std::sort(ids.begin() + b * seq_pages, ids.begin() + (b + 1) * seq_pages);
      const int heads = sc.heads == 0 ? kv_heads : sc.heads;
      if (kv_heads % heads != 0) continue;  // e.g. pairs of SmolLM2's 3 KV heads
      const Work w = plan(seqs, s.ctx, kv_heads, head_bytes, bs, heads, sc.persistent, sms);
      const int grid = static_cast<int>(w.cta_first.size()) - 1;
      // The plan covers every (sequence, token, head run) once (the device check then shows every word was read).
      std::vector<uint8_t> covered(static_cast<size_t>(seqs) * s.ctx * (kv_heads / heads));
      for (const Tile& t : w.tiles)
        for (int r = 0; r < t.ntok; ++r)
          ++covered[(static_cast<size_t>(t.seq) * s.ctx + t.tok0 + r) * (kv_heads / heads) + t.col / (heads * head_bytes)];
      if (std::any_of(covered.begin(), covered.end(), [](uint8_t c) { return c != 1; })) {
        std::fprintf(stderr, "%s: the plan does not cover every row once\n", sc.name);
        return 1;
      }
      const int tile_tokens = std::max(1, kTileRows / heads);
      const uint32_t run_bytes = static_cast<uint32_t>(heads * head_bytes);
      if (tile_tokens * run_bytes > static_cast<uint32_t>(kMaxTileBytes) || run_bytes % 16 != 0) {
        std::printf("%-26s %-22s tile of %u bytes: not built\n", "", sc.name, tile_tokens * run_bytes);
        continue;
      }
      const int tile_bytes = 2 * tile_tokens * static_cast<int>(run_bytes);
      const int budget = (w.ctas_per_sm == 1 ? 220 : 110) * 1024 - 64;
      const int stages = std::min(w.ctas_per_sm == 1 ? 8 : 4, budget / tile_bytes);
      const size_t smem = static_cast<size_t>(stages) * tile_bytes + 64;
      const Kernel kernel = pick(stages, sc.bulk);
      check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)),
            "cudaFuncSetAttribute");

      int *d_table, *d_first;
      Tile* d_tiles;
      uint32_t* d_sums;
      check(cudaMalloc(&d_table, ids.size() * 4), "cudaMalloc");
      check(cudaMalloc(&d_first, w.cta_first.size() * 4), "cudaMalloc");
      check(cudaMalloc(&d_tiles, w.tiles.size() * sizeof(Tile)), "cudaMalloc");
      check(cudaMalloc(&d_sums, static_cast<size_t>(grid) * 4), "cudaMalloc");
      check(cudaMemcpy(d_table, ids.data(), ids.size() * 4, cudaMemcpyHostToDevice), "cudaMemcpy");
      check(cudaMemcpy(d_first, w.cta_first.data(), w.cta_first.size() * 4, cudaMemcpyHostToDevice), "cudaMemcpy");
      check(cudaMemcpy(d_tiles, w.tiles.data(), w.tiles.size() * sizeof(Tile), cudaMemcpyHostToDevice), "cudaMemcpy");
      auto release = [&] {
        check(cudaFree(d_table), "cudaFree");
        check(cudaFree(d_first), "cudaFree");
        check(cudaFree(d_tiles), "cudaFree");
        check(cudaFree(d_sums), "cudaFree");
      };
      auto params = [&](int c) {
        return Params{reinterpret_cast<const char*>(k[c]), reinterpret_cast<const char*>(v[c]), d_table, seq_pages,
                      __builtin_ctz(static_cast<unsigned>(bs)), static_cast<uint32_t>(kv_heads * head_bytes), run_bytes,
                      tile_tokens, d_tiles, d_first, d_sums};
      };
      // Clusters of an item's consecutive head CTAs (whole clusters only: the cluster size divides the heads).
      int cluster = 1;
      if (sc.cluster)
        for (int c = std::min(kv_heads, 8); c > 1 && cluster == 1; --c)
          if (kv_heads % c == 0) cluster = c;
      cudaLaunchAttribute attribute{};
      attribute.id = cudaLaunchAttributeClusterDimension;
      attribute.val.clusterDim.x = static_cast<unsigned>(cluster);
      attribute.val.clusterDim.y = attribute.val.clusterDim.z = 1;
      auto launch = [&](int c) {
        cudaLaunchConfig_t config{};
        config.gridDim = dim3(static_cast<unsigned>(grid));
        config.blockDim = dim3(kThreads);
        config.dynamicSmemBytes = smem;
        config.stream = stream;
        config.attrs = &attribute;
        config.numAttrs = cluster > 1 ? 1 : 0;
        return cudaLaunchKernelEx(&config, kernel, params(c));
      };
      if (const cudaError_t e = launch(0); e != cudaSuccess) {  // e.g. a cluster that does not fit on a GPC
        std::printf("%-26s %-22s not launched: %s\n", "", sc.name, cudaGetErrorString(e));
        (void)cudaGetLastError();
        release();
        continue;
      }
      std::vector<uint32_t> sums(static_cast<size_t>(grid));
      check(cudaMemcpyAsync(sums.data(), d_sums, sums.size() * 4, cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync");
      check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
      const uint32_t got = std::accumulate(sums.begin(), sums.end(), 0u);
      const double us = time_graph([&](int i) { check(launch(i % copies), "launch"); }, iters, reps, stream);
      if (dense && !sc.bulk && !sc.persistent) dense_us = us;
      char label[64];
      std::snprintf(label, sizeof label, "(%d,%d,%d,%d,%d,%d)", s.B, s.ctx, s.Hq, s.Hkv, s.D, s.bs);
      char ratio[16] = "";
      if (dense_us > 0) std::snprintf(ratio, sizeof ratio, "%.3f", us / dense_us);
      std::printf("%-26s %-22s %6d %6zu %5d %9.1f %7.2f %8s %s\n", label, sc.name, grid, w.tiles.size(), w.ctas_per_sm,
                  us, kv_bytes / us / 1e6, ratio, got == expected ? "ok" : "WRONG SUM");
      std::fflush(stdout);
      release();
    }
    for (int c = 0; c < copies; ++c) {
      check(cudaFree(k[c]), "cudaFree");
      check(cudaFree(v[c]), "cudaFree");
    }
    check(cudaFree(d_expected), "cudaFree");
  }
  return 0;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {  // a failed CUDA call (bench::check)
    std::fprintf(stderr, "access_gpu: %s\n", e.what());
    return 1;
  }
}
