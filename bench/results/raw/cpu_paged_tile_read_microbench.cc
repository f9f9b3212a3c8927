// Microbenchmark behind bench/results/cpu_decode.md, "A fifth machine" (stop 24): the CPU kernel's memory
// pattern with a chosen amount of computation and no attention. Per "tile" a K block and a V block of 16
// tokens x token_bytes (f32 Hkv=8 D=128: 4096; bf16: 2048), at shuffled 64 KiB / 32 KiB-aligned places of a
// 1 GiB buffer on 2 MiB pages; each block walked as the kernel walks it (head-major: the 16 tokens' rows of
// head 0, then of head 1, ...; or token-major), `fmas` FMAs per 64-byte line into 8 accumulators, and with
// pf = 1 the next tile's K and V lines prefetched into L2 (prefetcht1), one per line consumed.
//   g++ -O2 -mavx512f -std=c++20 -pthread cpu_paged_tile_read_microbench.cc -o tile
//   chrt -f 10 ./tile <fmas> <threads> <token_bytes> <pf 0|1> <k token-major 0|1> <v token-major 0|1>
#include <immintrin.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

static const size_t kBuf = size_t{1} << 30;
static int fmas, threads, pfm, kmajor, vmajor;
static size_t token_bytes = 4096, heads = 8;
static char* buf;
static std::vector<size_t> order;
static float sink[64];

static void work(size_t begin, size_t end, int tid) {
  __m512 acc[8];
  for (auto& a : acc) a = _mm512_setzero_ps();
  const __m512 m = _mm512_set1_ps(1.0001f);
  const size_t block = 16 * token_bytes, row_lines = token_bytes / heads / 64;
  for (size_t c = begin; c + 2 <= end; c += 2) {
    const char* kb = buf + order[c] * block;
    const char* vb = buf + order[c + 1] * block;
    const char* nk = c + 3 < end ? buf + order[c + 2] * block : kb;
    const char* nv = c + 3 < end ? buf + order[c + 3] * block : vb;
    size_t prefetched = 0;  // lines of the next tile: its K block, then its V block
    auto row = [&](const char* p) {
      if (pfm) {
        for (size_t k = 0; k < row_lines; ++k, ++prefetched) {
          const char* q = prefetched < block / 64 ? nk + prefetched * 64 : nv + (prefetched - block / 64) * 64;
          _mm_prefetch(q, _MM_HINT_T1);
        }
      }
      for (size_t k = 0; k < row_lines; ++k) {
        const __m512 x = _mm512_load_ps(reinterpret_cast<const float*>(p + k * 64));
        for (int f = 0; f < fmas; ++f) acc[(k + f) & 7] = _mm512_fmadd_ps(x, m, acc[(k + f) & 7]);
      }
    };
    auto pass = [&](const char* b, bool token_major) {
      for (size_t outer = 0; outer < (token_major ? 16 : heads); ++outer)
        for (size_t inner = 0; inner < (token_major ? heads : 16); ++inner) {
          const size_t t = token_major ? outer : inner, h = token_major ? inner : outer;
          row(b + t * token_bytes + h * token_bytes / heads);
        }
    };
    pass(kb, kmajor);
    pass(vb, vmajor);
  }
  __m512 s = acc[0];
  for (int i = 1; i < 8; ++i) s = _mm512_add_ps(s, acc[i]);
  sink[tid] = _mm512_reduce_add_ps(s);
}

int main(int argc, char** argv) {
  if (argc < 7) {
    std::fprintf(stderr, "usage: tile <fmas> <threads> <token_bytes> <pf 0|1> <k token-major 0|1> <v token-major 0|1>\n");
    return 2;
  }
  fmas = std::atoi(argv[1]);
  threads = std::atoi(argv[2]);
  token_bytes = std::atol(argv[3]);
  pfm = std::atoi(argv[4]);
  kmajor = std::atoi(argv[5]);
  vmajor = std::atoi(argv[6]);
  buf = static_cast<char*>(std::aligned_alloc(size_t{1} << 21, kBuf));
  madvise(buf, kBuf, MADV_HUGEPAGE);
  std::memset(buf, 1, kBuf);
  order.resize(kBuf / (16 * token_bytes));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937(1));
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> ts;
    const size_t n = order.size();
    for (int t = 0; t < threads; ++t) ts.emplace_back([=] { work(n * t / threads, n * (t + 1) / threads, t); });
    for (auto& t : ts) t.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, kBuf / s / 1e9);
  }
  std::printf("fmas %d token_bytes %zu pf %d k-token-major %d v-token-major %d: %.1f GB/s (best of 5)\n", fmas,
              token_bytes, pfm, kmajor, vmajor, best);
  return sink[0] == 12345.0f;
}
