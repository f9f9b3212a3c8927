// Makes a device current for a scope and restores the caller's afterwards (host only).
#pragma once

#include <cuda_runtime_api.h>

#include "core/cuda_check.h"

namespace pagedattn::cuda {

class ScopedDevice {
 public:
  explicit ScopedDevice(int device) {
    PA_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device) PA_CUDA_CHECK(cudaSetDevice(device));
  }
  ~ScopedDevice() {
    int current = previous_;
    if (cudaGetDevice(&current) == cudaSuccess && current != previous_) cudaSetDevice(previous_);
  }
  ScopedDevice(const ScopedDevice&) = delete;
  ScopedDevice& operator=(const ScopedDevice&) = delete;

 private:
  int previous_ = 0;
};

}  // namespace pagedattn::cuda
