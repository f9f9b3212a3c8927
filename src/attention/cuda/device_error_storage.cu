// The error record itself: one per device (a __device__ variable lives once in each device's context).
#include <array>
#include <atomic>

#include "attention/cuda/device_error_storage.h"
#include "core/cuda_check.h"

namespace pagedattn::cuda {
namespace {

__device__ DeviceErrorRecord g_device_error;

constexpr int kMaxDevices = 64;
std::array<std::atomic<DeviceErrorRecord*>, kMaxDevices> g_record_address{};

}  // namespace

DeviceErrorRecord* device_error_record(int device) {
  if (device >= 0 && device < kMaxDevices) {
    if (DeviceErrorRecord* cached = g_record_address[device].load(std::memory_order_acquire)) return cached;
  }
  void* address = nullptr;
  PA_CUDA_CHECK(cudaGetSymbolAddress(&address, g_device_error));
  auto* record = static_cast<DeviceErrorRecord*>(address);
  if (device >= 0 && device < kMaxDevices) g_record_address[device].store(record, std::memory_order_release);
  return record;
}

DeviceErrorRecord take_device_error() {
  DeviceErrorRecord record{};
  PA_CUDA_CHECK(cudaMemcpyFromSymbol(&record, g_device_error, sizeof(record)));
  if (record.code != 0) {
    const DeviceErrorRecord cleared{};
    PA_CUDA_CHECK(cudaMemcpyToSymbol(g_device_error, &cleared, sizeof(cleared)));
  }
  return record;
}

}  // namespace pagedattn::cuda
