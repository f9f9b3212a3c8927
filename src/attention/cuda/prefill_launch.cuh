// Template definitions behind prefill_launch.h: each prefill_kernels_<dtype>.cu instantiates them.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <type_traits>

#include "attention/cuda/forced_choice.h"
#include "attention/cuda/kernel_launch.cuh"
#include "attention/cuda/prefill_kernel.cuh"
#include "attention/cuda/prefill_launch.h"
#include "attention/cuda/prefill_simple_kernel.cuh"
#include "attention/cuda/prefill_wgmma_kernel.cuh"
#include "attention/cuda/prefill_wgmma_ws_kernel.cuh"

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

// Whether the current device runs prefill_wgmma_kernel: an sm_90 device and a build with sm_90a code
// (PAGEDATTN_CUDA_SM90A: the kernel body exists only there) that the device loads. Cached per device.
template <class T>
bool wgmma_prefill_available(int device) {
#if defined(PAGEDATTN_CUDA_SM90A)
  static std::array<std::atomic<int>, 64> known{};  // 0 unknown, 1 yes, 2 no
  const int cached = device < 64 ? known[device].load(std::memory_order_relaxed) : 0;
  if (cached != 0) return cached == 1;
  bool available = false;
  int major = 0, minor = 0;
  PA_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  PA_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  if (major == 9 && minor == 0) {
    cudaFuncAttributes attributes{};
    PA_CUDA_CHECK(cudaFuncGetAttributes(&attributes, prefill_wgmma_kernel<T>));
    available = attributes.binaryVersion == 90;
  }
  if (device < 64) known[device].store(available ? 1 : 2, std::memory_order_relaxed);
  return available;
#else
  return false;
#endif
}

// The environment variable PAGEDATTN_PREFILL_WGMMA forces a choice for benchmarks and tests: 0 prefill_kernel
// (mma.sync), 1 prefill_wgmma_kernel (N = 64), 2 prefill_wgmma_ws_kernel (warp-specialized, N = 128);
// otherwise -1 (the launcher chooses). Another value is reported on stderr once and ignored.
inline int wgmma_prefill_forced() {
  static const int forced = forced_choice("PAGEDATTN_PREFILL_WGMMA", 0, 2);
  return forced;
}

template <class T, int D, bool kSimple>
void launch_prefill(const PrefillParams& params, int64_t max_units, cudaStream_t stream, bool pdl) {
  if constexpr (!kSimple && D == 128) {
    int device = 0;
    PA_CUDA_CHECK(cudaGetDevice(&device));
    if (wgmma_prefill_available<T>(device)) {
      // Long units: the warp-specialized kernel (N = 128, one CTA per SM); short ones: prefill_wgmma_kernel
      // (N = 64, two CTAs per SM). prefill_units_are_long says which and why.
      int choice = wgmma_prefill_forced();
      if (choice < 0) choice = params.long_units ? 2 : 1;
      if (choice == 1) {
        using W = PrefillWgmmaConfig<T>;
        launch_resident<prefill_wgmma_kernel<T>, W::kThreads, W::kSmemBytes>(params, max_units, stream, pdl);
        return;
      }
      if (choice == 2) {
        using W = PrefillWsConfig<T>;
        launch_resident<prefill_wgmma_ws_kernel<T>, W::kThreads, W::kSmemBytes>(params, max_units, stream, pdl);
        return;
      }
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
