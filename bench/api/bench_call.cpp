// Times one tiny decode call (B=1, ctx=16, Hq=4, Hkv=1, D=64, f32) through the C++ API, so that
// bench/api/python_overhead.py can subtract it from the same call made from Python.
// Prints the median time per call in microseconds.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "pagedattn/attention.h"

using namespace pagedattn;

int main() {
  Tensor q = Tensor::zeros({1, 4, 64}, DType::f32), out = Tensor::zeros({1, 4, 64}, DType::f32);
  Tensor kc = Tensor::zeros({1, 16, 1, 64}, DType::f32), vc = Tensor::zeros({1, 16, 1, 64}, DType::f32);
  Tensor table = Tensor::zeros({1, 1}, DType::i32), lens = Tensor::empty({1}, DType::i32);
  lens.data_as<int32_t>()[0] = 16;
  for (int64_t i = 0; i < kc.numel(); ++i) kc.data_as<float>()[i] = 0.01f * static_cast<float>(i % 97);
  const PagedAttentionArgs args{out, q, kc, vc, table, lens};
  constexpr int kCalls = 2000, kRounds = 21;
  std::vector<double> per_call;
  for (int r = 0; r < kRounds; ++r) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kCalls; ++i) paged_attention(args);
    per_call.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() /
                       kCalls);
  }
  std::sort(per_call.begin(), per_call.end());
  std::printf("%.3f\n", per_call[kRounds / 2]);
}
