// Stop 27 (bench/results/cpu_decode.md "Zen 5, stop 27"): the CPU kernel's access pattern alone (f32, B=16
// ctx=4096 Hkv=8 D=128, block 16, shuffled blocks; per tile of 8 tokens and KV head the K pass's 4-row groups
// read line by line, then the V pass's parts of two lines over the tile's rows; the next tile prefetched into L2
// in steps), with no computation, under different prefetch schemes; % of a streaming-read probe measured in the
// same repeat, medians and quartiles over the repeats. A lab for the access pattern, not part of the build:
//   g++ -O2 -march=native -fopenmp -std=c++20 cpu_access_pattern.cpp -o access && chrt -f 10 ./access 21 c
// (the second argument picks a set of schemes: a, b, c or d). Needs AVX-512.
#include <omp.h>
#include <sys/mman.h>
#include <immintrin.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>
using Clock = std::chrono::steady_clock;
static double now() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }
static char* huge(size_t bytes) {
  bytes = (bytes + (2u << 20) - 1) / (2u << 20) * (2u << 20);
  char* p = (char*)std::aligned_alloc(2u << 20, bytes);
  madvise(p, bytes, MADV_HUGEPAGE);
#pragma omp parallel for
  for (size_t i = 0; i < bytes; i += 4096) std::memset(p + i, 1, 4096);
  return p;
}
constexpr int B = 16, CTX = 4096, BS = 16, HKV = 8, D = 128, NBLK = B * CTX / BS;
constexpr size_t ROW = HKV * D * 4, HEAD = D * 4, ROW_LINES = ROW / 64;
static const int kOrder8[8] = {0, 5, 3, 7, 4, 2, 6, 1};
static const int kOrder16[16] = {0, 13, 9, 4, 8, 6, 1, 12, 7, 11, 5, 2, 14, 3, 10, 15};
int table[B][CTX / BS];
char *K, *V;
volatile float sinkf;

struct Scheme {
  std::string name;
  int tile = 8;          // tokens per tile
  int lookahead = 1;     // tiles ahead
  int per_step = 32;     // lines per step (0: per demand line, `per_line` lines)
  int per_line = 1;
  bool scrambled = true;
  bool kv_interleaved_pf = true;  // prefetch list K tok0, V tok0, K tok1...; else K tile then V tile
  int locality = 2;
  bool prefetch = true;
  bool paged = false;    // the yardstick: tiles read whole, K and V line by line, next tile prefetched 1:1
  bool paged_k_then_v = false;
  bool paged_kernel_pf = false;
  bool k_groups_outer = false;
  bool kv_by_head = false;
  bool loads256 = false;  // each line as two 256-bit loads  // K(h0), K(h1), V(h0), K(h2), V(h1), ...  // K pass: for each 4-row group, all heads (rows read through in order)  // sequential demand, but the kernel's prefetch steps (32 lines per 64 demand lines)
};

static inline const char* tok(const char* base, int b, int t) { return base + ((size_t)table[b][t / BS] * BS + t % BS) * ROW; }

double run(const Scheme& s) {
  double t0 = now();
  float total = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(+ : total)
  for (int b = 0; b < B; ++b) {
    __m512 acc = _mm512_setzero_ps();
    const int T = s.tile;
    const int* order = T == 8 ? kOrder8 : kOrder16;
    for (int t0 = 0; t0 < CTX; t0 += T) {
      const int nt = t0 + s.lookahead * T;
      const char* pf[32];
      int npf = 0;
      if (s.prefetch && nt < CTX) {
        if (s.kv_interleaved_pf) {
          for (int i = 0; i < T; ++i) { pf[npf++] = tok(K, b, nt + i); pf[npf++] = tok(V, b, nt + i); }
        } else {
          for (int i = 0; i < T; ++i) pf[npf++] = tok(K, b, nt + i);
          for (int i = 0; i < T; ++i) pf[npf++] = tok(V, b, nt + i);
        }
      }
      const size_t lines = (size_t)npf * ROW_LINES;
      size_t issued = 0;
      auto issue = [&](size_t n) {
        const size_t end = std::min(lines, issued + n);
        for (; issued < end; ++issued) {
          const char* p = pf[issued / ROW_LINES] + (issued % ROW_LINES) * 64;
          if (s.locality == 3) __builtin_prefetch(p, 0, 3);
          else if (s.locality == 1) __builtin_prefetch(p, 0, 1);
          else if (s.locality == 0) __builtin_prefetch(p, 0, 0);
          else __builtin_prefetch(p, 0, 2);
        }
      };
      auto step = [&] { if (s.per_step) issue(s.per_step); };
      __m256 acc256 = _mm256_setzero_ps();
      auto load = [&](const char* p) {
        if (s.loads256) {
          acc256 = _mm256_add_ps(acc256, _mm256_load_ps((const float*)p));
          acc256 = _mm256_add_ps(acc256, _mm256_load_ps((const float*)(p + 32)));
        } else {
          acc = _mm512_add_ps(acc, _mm512_load_ps((const float*)p));
        }
        if (!s.per_step) issue(s.per_line);
      };
      if (s.paged && s.paged_k_then_v) {
        int n = 0;
        for (const char* base : {K, V})
          for (int i = 0; i < T; ++i) {
            const char* k = tok(base, b, t0 + i);
            for (size_t o = 0; o < ROW; o += 64) {
              acc = _mm512_add_ps(acc, _mm512_load_ps((const float*)(k + o)));
              if (s.paged_kernel_pf) { if (++n % 32 == 0) issue(32); } else issue(1);
            }
          }
        issue(lines);
        continue;
      }
      if (s.paged) {
        int n = 0;
        for (int i = 0; i < T; ++i) {
          const char* k = tok(K, b, t0 + i);
          const char* v = tok(V, b, t0 + i);
          for (size_t o = 0; o < ROW; o += 64) {
            acc = _mm512_add_ps(acc, _mm512_load_ps((const float*)(k + o)));
            acc = _mm512_add_ps(acc, _mm512_load_ps((const float*)(v + o)));
            if (s.paged_kernel_pf) { if (++n % 16 == 0) issue(32); } else issue(2);
          }
        }
        issue(lines);
        continue;
      }
      int row[16];
      for (int i = 0; i < T; ++i) row[i] = s.scrambled ? order[i] : i;
      // The kernel's K pass over rows g..g+3 of head h (line by line across the 4 rows), and its V pass over head h
      // (parts of 2 lines across all the tile's rows).
      auto k_group = [&](int h, int g) {
        step();
        const char* r[4];
        for (int i = 0; i < 4; ++i) r[i] = tok(K, b, t0 + row[g + i]) + h * HEAD;
        for (int c = 0; c < 8; ++c)
          for (int i = 0; i < 4; ++i) load(r[i] + 64 * c);
      };
      auto k_head = [&](int h) {
        for (int g = 0; g < T; g += 4) k_group(h, g);
      };
      auto v_head = [&](int h) {
        for (int part = 0; part < 4; ++part) {
          if (part % 2 == 0) step();
          for (int i = 0; i < T; ++i) {
            const char* r = tok(V, b, t0 + row[i]) + h * HEAD + 128 * part;
            load(r);
            load(r + 64);
          }
        }
      };
      if (s.kv_by_head) {
        k_head(0);
        for (int h = 1; h < HKV; ++h) k_head(h), v_head(h - 1);
        v_head(HKV - 1);
      } else {
        if (s.k_groups_outer) {
          for (int g = 0; g < T; g += 4)
            for (int h = 0; h < HKV; ++h) k_group(h, g);
        } else {
          for (int h = 0; h < HKV; ++h) k_head(h);
        }
        for (int h = 0; h < HKV; ++h) v_head(h);
      }
      issue(lines);
      acc = _mm512_add_ps(acc, _mm512_castps256_ps512(acc256));
    }
    total += _mm512_reduce_add_ps(acc);
  }
  sinkf = total;
  return now() - t0;
}
double probe(char* buf, size_t bytes) {
  double t0 = now();
  float total = 0;
#pragma omp parallel for reduction(+ : total)
  for (size_t i = 0; i < bytes; i += 256) {
    __m512 a = _mm512_load_ps((float*)(buf + i));
    a = _mm512_add_ps(a, _mm512_load_ps((float*)(buf + i + 64)));
    a = _mm512_add_ps(a, _mm512_load_ps((float*)(buf + i + 128)));
    a = _mm512_add_ps(a, _mm512_load_ps((float*)(buf + i + 192)));
    total += _mm512_reduce_add_ps(a);
  }
  sinkf = total;
  return now() - t0;
}
int main(int argc, char** argv) {
  std::vector<int> ids(NBLK);
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), std::mt19937(1));
  for (int b = 0; b < B; ++b) for (int i = 0; i < CTX / BS; ++i) table[b][i] = ids[b * (CTX / BS) + i];
  const size_t cache = (size_t)NBLK * BS * ROW;
  K = huge(cache); V = huge(cache);
  const size_t pb = size_t(1) << 30;
  char* P = huge(pb);
  const double bytes = 2.0 * cache;
  std::vector<Scheme> schemes;
  auto add = [&](Scheme s) { schemes.push_back(s); };
  const std::string set = argc > 2 ? argv[2] : "a";
  add({.name = "paged yardstick", .paged = true});
  if (set == "a") {
    add({.name = "kernel (32/step)"});
    add({.name = "no prefetch", .prefetch = false});
    add({.name = "1 per line", .per_step = 0, .per_line = 1});
    add({.name = "2 per line", .per_step = 0, .per_line = 2});
    add({.name = "8 per step", .per_step = 8});
    add({.name = "2 tiles ahead", .lookahead = 2});
    add({.name = "K then V pf list", .kv_interleaved_pf = false});
    add({.name = "locality 3 (t0)", .locality = 3});
    add({.name = "locality 1 (t2)", .locality = 1});
    add({.name = "tile 16", .tile = 16, .per_step = 64});
  } else if (set == "d") {
    add({.name = "kernel (32/step)"});
    add({.name = "K groups outer", .k_groups_outer = true});
    add({.name = "K groups outer, in order", .scrambled = false, .k_groups_outer = true});
    add({.name = "K and V by head", .kv_by_head = true});
    add({.name = "256-bit loads", .loads256 = true});
  } else if (set == "c") {
    add({.name = "kernel (32/step)"});
    add({.name = "paged, kernel pf steps", .paged = true, .paged_kernel_pf = true});
    add({.name = "paged K then V", .paged = true, .paged_k_then_v = true});
    add({.name = "paged K then V, kernel pf", .paged = true, .paged_k_then_v = true, .paged_kernel_pf = true});
  } else {
    add({.name = "kernel (32/step)"});
    add({.name = "in order", .scrambled = false});
    add({.name = "tile 16 in order", .tile = 16, .per_step = 64, .scrambled = false});
    add({.name = "1 per line, 2 ahead", .lookahead = 2, .per_step = 0, .per_line = 1});
    add({.name = "nta", .locality = 0});
  }
  const int reps = argc > 1 ? atoi(argv[1]) : 9;
  std::vector<std::vector<double>> pct(schemes.size()), bws;
  std::vector<double> bw_all;
  for (int r = 0; r < reps; ++r) {
    const double bw = pb / probe(P, pb);
    bw_all.push_back(bw / 1e9);
    for (size_t m = 0; m < schemes.size(); ++m) pct[m].push_back(100 * bytes / run(schemes[m]) / bw);
  }
  for (size_t m = 0; m < schemes.size(); ++m) {
    std::sort(pct[m].begin(), pct[m].end());
    std::printf("%-24s %% of probe: median %.1f (quartiles %.1f-%.1f)\n", schemes[m].name.c_str(), pct[m][reps / 2], pct[m][reps / 4], pct[m][3 * reps / 4]);
  }
  std::sort(bw_all.begin(), bw_all.end());
  std::printf("probe GB/s median %.1f\n", bw_all[reps / 2]);
}
