// Template definitions behind prefill_launch.h: each prefill_kernels_<dtype>.cu instantiates them.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "attention/cuda/kernel_launch.cuh"
#include "attention/cuda/prefill_kernel.cuh"
#include "attention/cuda/prefill_launch.h"
#include "attention/cuda/prefill_simple_kernel.cuh"
#include "attention/cuda/prefill_wgmma_kernel.cuh"

namespace pagedattn::cuda {

// The kernel, block size, shared memory and tile of one (dtype, head dim, simple or tensor-core kernel).
template <class T, int D, bool kSimple>
struct PrefillKernelOf {
  using Cfg = std::conditional_t<kSimple, PrefillSimpleConfig, PrefillConfig<T, D>>;
  static constexpr auto kernel() {
    if constexpr (kSimple) return prefill_simple_kernel<T, D>;
    else return prefill_kernel<T, D>;
  }
};

// Launches a persistent prefill grid: one CTA per resident slot of the device, at most max_units.
template <auto kKernel, int kThreads, int kSmem>
void launch_resident(const PrefillParams& params, int64_t max_units, cudaStream_t stream, bool pdl) {
  // Resident CTAs per SM, per device (the first launch on a device asks the occupancy calculator).
  static std::array<std::atomic<int>, 64> resident{};
  int device = 0;
  PA_CUDA_CHECK(cudaGetDevice(&device));
  PA_CUDA_CHECK(cudaFuncSetAttribute(kKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem));
  int per_sm = device < 64 ? resident[device].load(std::memory_order_relaxed) : 0;
  if (per_sm == 0) {
    PA_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kKernel, kThreads, kSmem));
    per_sm = std::max(per_sm, 1);
    if (device < 64) resident[device].store(per_sm, std::memory_order_relaxed);
  }
  int sms = 0;
  PA_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const int64_t grid = std::max<int64_t>(1, std::min<int64_t>(max_units, int64_t{per_sm} * sms));
  launch_with_pdl(kKernel, dim3(static_cast<unsigned>(grid)), dim3(kThreads), kSmem, stream, pdl, params);
}

// Which prefill_wgmma_kernel variant the current device runs, 0 for none: an sm_90 device, a build with
// sm_90a code (PAGEDATTN_CUDA_SM90A: the kernel body exists only there) that the device loads. The
// environment variable PAGEDATTN_PREFILL_WGMMA picks the variant for benchmarks (0: prefill_kernel;
// bf16 only: 2 N = 128, 3 N = 128 with the deferred P V wait, 4 N = 128 ping-pong, 5 N = 128 deferred and
// ping-pong); default 1 (N = 64). N = 64 with the deferred
// wait does not fit its 128 registers (ptxas serializes the wgmmas).
// Cached per device.
template <class T>
int wgmma_prefill_variant(int device) {
#if defined(PAGEDATTN_CUDA_SM90A)
  static std::array<std::atomic<int>, 64> known{};  // variant + 1, 0 unknown
  const int cached = device < 64 ? known[device].load(std::memory_order_relaxed) : 0;
  if (cached != 0) return cached - 1;
  int variant = 0;
  int major = 0, minor = 0;
  PA_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  PA_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  if (major == 9 && minor == 0) {
    cudaFuncAttributes attributes{};
    PA_CUDA_CHECK(cudaFuncGetAttributes(&attributes, prefill_wgmma_kernel<T>));
    if (attributes.binaryVersion == 90) {
      variant = 1;
      if (const char* env = std::getenv("PAGEDATTN_PREFILL_WGMMA"); env != nullptr && env[0] >= '0' && env[0] <= '5')
        variant = env[0] - '0';
      if (!std::is_same_v<T, __nv_bfloat16> && variant > 1) variant = 1;
    }
  }
  if (device < 64) known[device].store(variant + 1, std::memory_order_relaxed);
  return variant;
#else
  return 0;
#endif
}

template <class T, int D, bool kSimple>
void launch_prefill(const PrefillParams& params, int64_t max_units, cudaStream_t stream, bool pdl) {
  if constexpr (!kSimple && D == 128) {
    int device = 0;
    PA_CUDA_CHECK(cudaGetDevice(&device));
    const int variant = wgmma_prefill_variant<T>(device);
    const auto launch = [&](auto keys, auto defer, auto ping_pong) {
      using W = PrefillWgmmaConfig<T, keys.value>;
      launch_resident<prefill_wgmma_kernel<T, keys.value, defer.value, ping_pong.value>, W::kThreads, W::kSmemBytes>(
          params, max_units, stream, pdl);
    };
    using K64 = std::integral_constant<int, 64>;
    using K128 = std::integral_constant<int, 128>;
    using F = std::false_type;
    using U = std::true_type;
    if (variant == 1) return launch(K64{}, F{}, F{});
    if constexpr (std::is_same_v<T, __nv_bfloat16>) {
      if (variant == 2) return launch(K128{}, F{}, F{});
      if (variant == 3) return launch(K128{}, U{}, F{});
      if (variant == 4) return launch(K128{}, F{}, U{});
      if (variant == 5) return launch(K128{}, U{}, U{});
    }
  }
  using K = PrefillKernelOf<T, D, kSimple>;
  launch_resident<K::kernel(), K::Cfg::kThreads, K::Cfg::kSmemBytes>(params, max_units, stream, pdl);
}

template <class Tag, bool kSimple, int... Ds>
PrefillLauncher prefill_launcher_from(int64_t head_dim, std::integer_sequence<int, Ds...>) {
  using T = cuda_type_t<Tag>;
  PrefillLauncher found;
  ((head_dim == Ds ? (found = {&launch_prefill<T, Ds, kSimple>, PrefillKernelOf<T, Ds, kSimple>::Cfg::kTileRows}, 0)
                   : 0),
   ...);
  return found;
}

template <class Tag>
PrefillLauncher prefill_launcher(int64_t head_dim, float scale) {
  if constexpr (sizeof(cuda_type_t<Tag>) == 2) {
    if (scale > 0.0f) return prefill_launcher_from<Tag, false>(head_dim, DecodeHeadDims{});
  }
  return prefill_launcher_from<Tag, true>(head_dim, DecodeHeadDims{});
}

}  // namespace pagedattn::cuda
