// Turns CUDA runtime errors into pagedattn::Error (private to the library). Free of fmt so that .cu
// files can use it: nvcc cannot compile fmt's compile-time format checks.
#pragma once

#include <cuda_runtime_api.h>

namespace pagedattn::detail {
[[noreturn]] void throw_cuda_error(cudaError_t status, const char* expression, const char* file, int line);
}  // namespace pagedattn::detail

#define PA_CUDA_CHECK(call)                                                               \
  do {                                                                                    \
    const cudaError_t pa_status_ = (call);                                                \
    if (pa_status_ != cudaSuccess) [[unlikely]]                                           \
      ::pagedattn::detail::throw_cuda_error(pa_status_, #call, __FILE__, __LINE__);       \
  } while (0)
