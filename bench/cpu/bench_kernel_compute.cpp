// bench_kernel_compute (CPU): the compute side of the decode kernel alone. One thread, one sequence whose
// K/V (a few MB) stay in the last-level cache, so DRAM plays no part: the time per (position, KV head)
// against the multiply-adds it needs (2 x group x D: scores and values) says how close the inner loops
// come to the core's FMA peak, measured first in the same run (fma_peak.h). bench_decode measures the same
// kernel against memory.
// Each figure is the fastest of many batches of calls: a shared machine only ever makes a batch slower.
//
//   bench_kernel_compute [--context N] [--batches N] [--dtype f32|bf16|f16|all]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/paged_problem.h"
#include "fma_peak.h"
#include "pagedattn/attention.h"

using namespace pagedattn;
using namespace pagedattn::testing;

namespace {

constexpr const char* kUsage = "usage: bench_kernel_compute [--context N] [--batches N] [--dtype f32|bf16|f16|all]\n";

int usage() {
  std::fputs(kUsage, stderr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int32_t context = 512;
  int batches = 200;
  std::vector<DType> dtypes = {DType::f32, DType::bf16, DType::f16};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--context" && has_value) {
      context = std::atoi(argv[++i]);
    } else if (a == "--batches" && has_value) {
      batches = std::atoi(argv[++i]);
    } else if (a == "--dtype" && has_value) {
      const std::string d = argv[++i];
      if (d == "f32") dtypes = {DType::f32};
      else if (d == "bf16") dtypes = {DType::bf16};
      else if (d == "f16") dtypes = {DType::f16};
      else if (d != "all") return usage();
    } else {
      return usage();
    }
  }
  if (context < 1 || batches < 1) return usage();
  omp_set_num_threads(1);
  const double peak = bench::fma_peak_multiply_adds_per_second();

  constexpr int64_t kQHeads = 32, kKvHeads = 8, kHeadDim = 128, kCallsPerBatch = 20;
  std::printf("bench_kernel_compute: 1 thread, B=1 ctx=%d Hq=%lld Hkv=%lld D=%lld, fastest of %d batches of %lld calls\n\n",
              context, static_cast<long long>(kQHeads), static_cast<long long>(kKvHeads),
              static_cast<long long>(kHeadDim), batches, static_cast<long long>(kCallsPerBatch));
  std::printf("FMA peak of this core: %.1f G f32 multiply-adds/s\n\n", peak / 1e9);
  std::printf("| dtype | K/V MB | us per call | ns per (position, KV head) | G multiply-adds/s | %% of FMA peak |\n"
              "|---|---|---|---|---|---|\n");
  for (DType dtype : dtypes) {
    ProblemSpec spec;
    spec.context_lens = {context};
    spec.num_q_heads = kQHeads;
    spec.num_kv_heads = kKvHeads;
    spec.head_dim = kHeadDim;
    spec.dtype = dtype;
    spec.poison_unused = false;
    const Problem p = make_problem(spec);
    const PagedAttentionArgs args = p.args();
    for (int i = 0; i < 3 * kCallsPerBatch; ++i) paged_attention(args);  // warm the caches and the scratch
    double best = 1e30;
    for (int b = 0; b < batches; ++b) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < kCallsPerBatch; ++i) paged_attention(args);
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / kCallsPerBatch);
    }
    const double pairs = static_cast<double>(context) * kKvHeads;
    const double madds = 2.0 * context * kQHeads * kHeadDim;  // q.k and p.v for every query head
    const double kv_mb = 2.0 * pairs * kHeadDim * static_cast<double>(dtype_size(dtype)) / 1e6;
    std::printf("| %s | %.1f | %.1f | %.1f | %.2f | %.0f%% |\n", std::string(dtype_name(dtype)).c_str(), kv_mb, best * 1e6,
                best * 1e9 / pairs, madds / best / 1e9, 100.0 * madds / best / peak);
  }
  return 0;
}
